// The network-namespace lab itself (test/netns.ts): two hosts reach each other's daemon on their
// own addresses; a partition cuts the link and healing restores it. Skips, saying why, where
// namespaces cannot be made.
import { afterAll, expect, test } from "bun:test";
import { waitFor } from "./harness";
import { NetLab } from "./netns";

const why = NetLab.unavailable();
const lab = why ? null : new NetLab();
afterAll(() => lab?.destroy());

test.skipIf(why !== null)(`two hosts, a daemon each, a partition and a heal${why ? ` (skipped: ${why})` : ""}`, async () => {
  const a = lab!.host("a");
  const b = lab!.host("b");
  for (const h of [a, b]) {
    expect((await h.spl(["init"])).code).toBe(0);
    const r = await h.spl(["serve", "--daemon", "--host", h.ip, "--port", "9100"]);
    expect(r.code).toBe(0);
  }
  const health = async (from: typeof a, to: typeof b) => (await from.exec(["curl", "-fsS", "--max-time", "3", `${to.url()}/health`])).code;
  expect(await health(a, b)).toBe(0);
  expect(await health(b, a)).toBe(0);
  lab!.partition(b);
  expect(await health(a, b)).not.toBe(0);
  lab!.heal(b);
  // The link comes back at once, but the bridge may take a moment to forward again.
  expect(await waitFor("the healed host to answer again (health exit code)", () => health(a, b), { stepMs: 200, until: (code) => code === 0 })).toBe(0);
  for (const h of [a, b]) expect((await h.spl(["serve", "--stop"])).code).toBe(0);
}, 120_000);

// Progress on long work (issue 16, item 4), on the compiled binary: the daemon logs one line per
// startup phase with its duration; `spl backup` and `spl restore` show percent and rate on a
// terminal (util-linux `script` gives them one) and stay plain when piped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Instance, SPL, waitFor } from "./harness";

const inst = new Instance();

/** Runs spl with a terminal as stdin/stdout/stderr; answers everything it printed. */
function onTerminal(args: string[]): { code: number; text: string } {
  const cmd = [SPL, ...args].map((a) => `'${a}'`).join(" ");
  const r = Bun.spawnSync(["script", "-qefc", cmd, "/dev/null"], { env: inst.env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, text: r.stdout.toString() };
}

const FINISHED = (phase: string) => new RegExp(`${phase.replace(/[()]/g, "\\$&")}  100%  [\\d.]+ (B|KiB|MiB) in \\d+\\.\\d\\d s \\([\\d.]+ (B|KiB|MiB|GiB)/s\\)`);

beforeAll(async () => {
  await inst.spl(["init"]);
  await inst.start();
  for (let b = 0; b < 3; b++) {
    const records = Array.from({ length: 1000 }, (_, i) => ({ thread: `th_p${i % 20}`, actor: "did:sync:user:tester", act: "KNOW", body: { i, b, text: "progress" } }));
    const r = await inst.http("POST", "/v1/records/batch", { records });
    expect({ status: r.status, created: r.json.data.filter((d: any) => d.status === "created").length }).toEqual({ status: 200, created: 1000 });
  }
  await inst.stop();
  await inst.start(); // an existing store: integrity check, startup backup (in a worker), rebuild
});
afterAll(async () => {
  await inst.stop();
});

describe("daemon startup phases", () => {
  test("one log line per phase, in startup order, each with its duration", async () => {
    const stored = JSON.parse((await inst.spl(["status", "-o", "json"])).stdout).records;
    expect(stored).toBeGreaterThanOrEqual(3000);
    const read = () => readFileSync(inst.path("logs", "spl.log"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    // Log lines reach the file in batches: wait for the second start's "ready".
    const lines = await waitFor("the second start's 'ready' log line", read, { show: (all) => all.filter((l) => l.msg === "ready").length + " 'ready' lines", until: (all) => all.filter((l) => l.msg === "ready").length >= 2 });
    const lastStart = lines.findLastIndex((l) => l.msg === "starting spl serve");
    const phases = lines.slice(lastStart).filter((l) => l.msg === "phase finished");
    // The startup backup is no phase of its own: a worker writes it while the daemon serves.
    expect(phases.map((p) => p.phase)).toEqual(["integrity check (files)", "integrity check (quick_check)", "rebuild_from_store"]);
    for (const p of phases) expect(Number.isInteger(p.ms) && p.ms >= 0).toBe(true);
    expect(phases[1].bytes).toBeGreaterThan(0);
    expect(phases[2].records).toBe(stored); // what rebuild_from_store went through
  });
});

describe("spl backup and spl restore", () => {
  const skip = !Bun.which("script");
  if (skip) console.log("skipped the terminal checks: util-linux `script` is not installed");

  test.skipIf(skip)("backup on a terminal ends its phase with percent, size, duration and rate", () => {
    const r = onTerminal(["backup", "--out", join(inst.root, "tty.bak")]);
    expect(r.code).toBe(0);
    expect(r.text).toMatch(FINISHED("snapshot"));
    expect(r.text).toContain("Backup written:");
  });

  test("piped, backup prints exactly its report: no progress, nothing on stderr", async () => {
    const r = await inst.spl(["backup", "--out", join(inst.root, "piped.bak")]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).not.toContain("%");
    expect(r.stdout).not.toContain("\r");
    expect(r.stdout).toStartWith("Backup written:");
  });

  test.skipIf(skip)("restore on a terminal shows the check and the copy", async () => {
    await inst.stop();
    const r = onTerminal(["restore", join(inst.root, "piped.bak")]);
    expect(r.code).toBe(0);
    expect(r.text).toMatch(FINISHED("check backup"));
    expect(r.text).toMatch(FINISHED("copy"));
    const piped = await inst.spl(["restore", join(inst.root, "tty.bak")]);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe("");
    expect(piped.stdout).not.toContain("%");
    await inst.start();
  });
});

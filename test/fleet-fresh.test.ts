// A fresh local fleet as a new operator starts it (issue 24): nothing set up by hand on the workers.
// The README's fan-out example works as written; `spl kill` / `spl unkill` from each member's home
// land on the coordinator and every member enforces what `fleet status` says; `spl fleet start`
// says when it restarts a daemon, and `spl fleet stop --all` says how to leave the fleet.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { localFleet, until } from "./fleet-harness";

const { coord, workerPort, homeOf, asMember, ok, startArgs, trackSpawned, onMember, teardown } = localFleet(2);
const MEMBERS = ["coordinator", "worker-a", "worker-b"] as const;

let seq = 0;
/** What a member does with new work now: 201, or the refusal's code. */
async function accepts(name: string): Promise<string> {
  const r = await onMember(name, "POST", "/v1/records", { act: "DO", actor: "did:sync:user:tester", thread: `th_fresh_${++seq}`, body: { text: "work" } });
  return r.status === 201 ? "accepts" : String(r.json?.code);
}
const everyone = async () => Object.fromEntries(await Promise.all(MEMBERS.map(async (m) => [m, await accepts(m)] as const)));
const fleetStatus = async (name: string) => JSON.parse(await ok(["fleet", "status", "-o", "json"], asMember(name)));

let startOut = "";
beforeAll(async () => {
  const r = await coord.spl(startArgs, { timeoutMs: 90_000 });
  trackSpawned(r.stdout);
  startOut = r.stdout;
  if (r.code !== 0) throw new Error(`fleet start exited ${r.code}: ${r.stderr}${r.stdout}`);
}, 120_000);

afterAll(() => teardown(MEMBERS), 60_000);

describe("a fresh spl fleet start", () => {
  test("each worker's config.toml names the port it serves on; the README fan-out example runs to its join as written", async () => {
    expect(startOut).not.toContain("restarting");
    for (const [i, name] of ["worker-a", "worker-b"].entries()) {
      expect(readFileSync(join(homeOf(name), "config.toml"), "utf8")).toMatch(new RegExp(`\\[server\\][^[]*\\nport = ${workerPort + i}\\n`));
      expect(JSON.parse(await ok(["config", "list-rules", "-o", "json"], asMember(name)))).toContainEqual(expect.objectContaining({ name: "fanout-children", expression: "has(record.body.fanout)" }));
    }
    const task = JSON.parse(await ok(["task", "add", "Write the Loki integration guide", "--alias", "TSK-0007", "-o", "json"]));
    // README "Fan-out", as written
    await ok([
      "task",
      "fan-out",
      "TSK-0007",
      "--subtask",
      "goal=Write section A,target=worker-a,timeout=600",
      "--subtask",
      "goal=Write section B,target=least-loaded-worker,budget=0.50",
      "--subtask",
      "goal=Summarise A and B,target=round-robin,depends=0+1",
      "--join",
      "all",
    ]);
    const status = async () => JSON.parse(await ok(["task", "join-status", "TSK-0007", "-o", "json"]));
    const done = await until("the README example's join", async () => ((await status()).complete ? status() : null), 60_000, status);
    expect(done.complete.verdict).toBe("accept");
    expect(done.children.map((c: any) => c.result.summary)).toEqual(["echo: Write section A", "echo: Write section B", "echo: Summarise A and B"]);
    const text = await ok(["task", "join-status", "TSK-0007"]);
    expect(text).toContain("  Join complete:   yes (accept)\n");
    // The parent INTEND is fulfilled once, by the join; the task's thread stays open until the task is approved.
    const recs = JSON.parse(await ok(["thread", "records", task.thread, "-o", "json"])) as any[];
    expect(recs.filter((r) => r.body.fulfills).map((r) => r.body.topic)).toEqual(["fanout_join_complete"]);
    expect(JSON.parse(await ok(["thread", "state", task.thread, "-o", "json"])).status).toBe("open");
  }, 90_000);

  test("spl kill / unkill from each member's home land on the coordinator, and every member enforces what fleet status says", async () => {
    // worker-b's config.toml as `spl init` left it before spl fleet start wrote ports: the
    // coordinator's port. The CLI asks the daemon what it is instead of trusting that.
    const cfg = join(homeOf("worker-b"), "config.toml");
    writeFileSync(cfg, readFileSync(cfg, "utf8").replace(/\nport = \d+\n/, `\nport = ${coord.port}\n`));
    for (const from of MEMBERS) {
      const killed = await coord.spl(["kill", "--emergency", "--reason", `from ${from}`], { env: asMember(from) });
      // On a worker it is applied there at once and forwarded to the coordinator (README "Fleet": kill switch).
      const forwarded = from === "coordinator" ? "" : `  applied here and forwarded to the coordinator http://127.0.0.1:${coord.port}\n`;
      expect([from, killed.code, killed.stdout]).toEqual([from, 0, `✓ emergency stop recorded\n${forwarded}`]);
      for (const view of MEMBERS) expect((await fleetStatus(view)).emergency).toMatchObject({ active: true, reason: `from ${from}` });
      await until(`every member refusing new work after a kill from ${from}`, async () => Object.values(await everyone()).every((v) => v === "EMERGENCY_STOP"), 30_000, everyone);
      const unkilled = await coord.spl(["unkill", "--emergency"], { env: asMember(from) });
      expect([from, unkilled.code, unkilled.stdout, unkilled.stderr]).toEqual([from, 0, `✓ emergency clear recorded\n${forwarded}`, ""]);
      for (const view of MEMBERS) expect((await fleetStatus(view)).emergency.active).toBe(false);
      await until(`every member taking work after an unkill from ${from}`, async () => Object.values(await everyone()).every((v) => v === "accepts"), 30_000, everyone);
    }
  }, 180_000);

  test("spl fleet start says which running daemon it restarts, and why; spl fleet stop --all says how to leave the fleet", async () => {
    const again = await coord.spl([...startArgs.slice(0, -1), "2"], { timeoutMs: 90_000 }); // --heartbeat 2: [fleet] changes
    trackSpawned(again.stdout);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/ {2}\[coordinator\] restarting PID \d+ \(\[fleet\] in its config.toml changed\)\n {2}\[coordinator\] spawned PID \d+ on :\d+/);
    expect(again.stdout).toMatch(/ {2}\[worker-a\] {2}restarting PID \d+ \(\[fleet\] in its config.toml changed\)\n {2}\[worker-a\] {2}spawned PID \d+ on :\d+/);
    const stop = await coord.spl(["fleet", "stop", "--all"]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain(
      `\nThe homes are still fleet members ([fleet] in their config.toml): 'spl serve' in ${coord.splHome.replace(coord.home, "~")} starts the coordinator again.\nTo leave the fleet, delete the [fleet] table from ${coord.splHome.replace(coord.home, "~")}/config.toml (and from each ${coord.splHome.replace(coord.home, "~")}-worker-*/config.toml).\n`,
    );
  }, 120_000);
});

// Fan-out across a real fleet (issue 12, SPEC 15): a coordinator and two workers on free ports with
// a short heartbeat (fleet-harness.ts HEARTBEAT_SECS); a test whose premise is a live worker first
// waits until the coordinator reports it live. worker-a runs subtasks with the exec adapter, each
// held until the test creates its release file; worker-b runs them with the echo adapter. Children
// are spawned on their workers, dispatched there, reported back, and the join writes the
// fulfilling KNOW.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { localFleet } from "./fleet-harness";
import { isAlive, track, waitFor } from "./harness";

const { coord, homeOf, asMember, pidOf, ok, startArgs, trackSpawned, whenLive } = localFleet(2);
const WORKERS = ["worker-a", "worker-b"];
const release = join(coord.root, "release");
const dids: Record<string, string> = {};
const WORKER = "did:sync:agent:fanout-worker";

async function newTask(goal: string): Promise<{ alias: string; thread: string }> {
  return JSON.parse(await ok(["task", "add", goal, "-o", "json"]));
}
const status = async (alias: string) => JSON.parse(await ok(["task", "join-status", alias, "-o", "json"]));
const records = async (thread: string, env?: Record<string, string>) => JSON.parse(await ok(["thread", "records", thread, "-o", "json"], env)) as any[];
const sha = (s: string) => createHash("sha256").update(s).digest("hex");
const letGo = (goal: string) => writeFileSync(join(release, goal), "");
/** The join status once the fan-out on `alias` has joined. */
const joined = (alias: string) => waitFor(`the fan-out on ${alias} to join (task join-status)`, () => status(alias), { stepMs: 100, until: (s) => !!s.complete });

beforeAll(async () => {
  mkdirSync(release);
  await ok(["init"]);
  const adapters: Record<string, string> = {
    "worker-a": `adapter = "exec"\ncommand = ${JSON.stringify(["sh", "-c", 'while [ ! -e "$1/$SPL_GOAL" ] && [ -d "$1" ]; do sleep 0.05; done; echo "ran $SPL_GOAL"', "sh", release])}\ntimeout_secs = 120\n`,
    "worker-b": `adapter = "echo"\n`,
  };
  for (const [name, adapter] of Object.entries(adapters)) {
    await ok(["init"], asMember(name));
    writeFileSync(join(homeOf(name), "config.toml"), `${readFileSync(join(homeOf(name), "config.toml"), "utf8")}\n[dispatch.targets.${JSON.stringify(WORKER)}]\n${adapter}`);
  }
  const r = await coord.spl(startArgs, { timeoutMs: 90_000 });
  trackSpawned(r.stdout);
  if (r.code !== 0) throw new Error(`fleet start exited ${r.code}: ${r.stderr}${r.stdout}`);
  for (const m of (await coord.http("GET", "/v1/fleet/status")).json.instances) dids[m.name] = m.did;
  // Each worker routes the child INTENDs it is sent to its adapter.
  for (const name of ["worker-a", "worker-b"]) await ok(["config", "add-rule", "--name", "fanout-children", "--expression", "has(record.body.fanout)", "--target", WORKER], asMember(name));
}, 120_000);

afterAll(async () => {
  await coord.spl(["fleet", "stop", "--all"]);
  for (const name of ["coordinator", "worker-a", "worker-b"]) {
    try {
      const pid = pidOf(name);
      if (isAlive(pid)) process.kill(pid, "SIGKILL");
    } catch {}
  }
}, 60_000);

describe("bad input writes nothing", () => {
  test("unknown alias, bad --subtask, a depends= cycle, an unknown target, a join that does not type-check: one line each", async () => {
    await whenLive(WORKERS); // a stale worker-a would be refused before worker-z is named
    const t = await newTask("refused fan-outs");
    const before = (await records(t.thread)).length;
    const cases: [string[], number, RegExp][] = [
      [["task", "fan-out", "NOPE-404", "--subtask", "goal=x,target=worker-a"], 1, /^error: no task "NOPE-404" — 'spl task list --all' shows the aliases \[TASK_NOT_FOUND\]\n$/],
      [["task", "fan-out", t.alias, "--subtask", "goal=x,tagret=worker-a"], 2, /^error: --subtask 0 'goal=x,tagret=worker-a': 'tagret=worker-a' is not one of goal\|target\|budget\|timeout\|depends=value — e\.g\. --subtask '.*'\n$/],
      [["task", "fan-out", t.alias, "--subtask", "goal=x"], 2, /^error: --subtask 0 has no target — use worker-<name>, specific:<did>, least-loaded-worker or round-robin\n$/],
      [["task", "fan-out", t.alias, "--subtask", "goal=x,target=worker-a,timeout=soon"], 2, /^error: --subtask 0: timeout=soon is not a positive whole number — e\.g\. timeout=600\n$/],
      [["task", "fan-out", t.alias, "--subtask", "goal=x,target=worker-a,depends=1", "--subtask", "goal=y,target=worker-b,depends=0"], 2, /^error: --subtask depends= form a cycle: 0 → 1 → 0 — a subtask may only depend on subtasks that do not depend on it\n$/],
      [["task", "fan-out", t.alias, "--subtask", "goal=x,target=worker-a", "--subtask", "goal=y,target=worker-z"], 1, /^error: --subtask 1: unknown target 'worker-z' — use a worker name \(worker-a, worker-b\), specific:<did>, least-loaded-worker or round-robin\n$/],
      [["task", "fan-out", t.alias, "--subtask", "goal=x,target=coordinator"], 1, /^error: --subtask 0: unknown target 'coordinator' — /],
      [["task", "fan-out", t.alias, "--subtask", "goal=x,target=worker-a", "--join", "children.size() + 'x'"], 2, /^error: --join 'children.size\(\) \+ 'x'' does not type-check: no such overload: int \+ string \(column 1\) — use all, any, k_of_n:K, or a bool CEL expression over children and parent, e\.g\. .*\n$/],
      [["task", "fan-out", t.alias, "--subtask", "goal=x,target=worker-a", "--join", "k_of_n:0"], 2, /^error: --join 'k_of_n:0' needs a positive K — e\.g\. --join k_of_n:2\n$/],
    ];
    for (const [args, code, message] of cases) {
      const r = await coord.spl(args);
      expect({ args, code: r.code, stderr: r.stderr, stdout: r.stdout }).toMatchObject({ code, stdout: "" });
      expect(r.stderr).toMatch(message);
    }
    expect((await records(t.thread)).length).toBe(before);
    const none = await coord.spl(["task", "join-status", t.alias]);
    expect(none.code).toBe(1);
    expect(none.stderr).toBe(`error: task ${t.alias} has no fan-out — start one: spl task fan-out ${t.alias} --subtask 'goal=...,target=least-loaded-worker'\n`);
  });
});

describe("fan-out, join, report", () => {
  test("join all: children spawn on their workers (content-addressed threads), depends= waits, the join waits for the held child, then the fulfilling KNOW", async () => {
    await whenLive(WORKERS); // named targets must be live when the fan-out is written and spawned
    const t = await newTask("write the docs");
    letGo("all-after"); // round-robin may pick either worker; on worker-a it runs at once
    const out = await ok(["task", "fan-out", t.alias, "--subtask", "goal=all-echo,target=worker-b", "--subtask", "goal=all-held,target=worker-a,budget=0.5,timeout=300", "--subtask", "goal=all-after,target=round-robin,depends=0", "--join", "all"]);
    const record = /record: +(\S+)/.exec(out)![1]!;
    expect(out).toBe(
      `◇ Fan-out parent INTEND created\n  thread:   ${t.thread}\n  record:   ${record}\n  subtasks: 3\n  join:     all\n\n  The engine spawns a child INTEND per subtask on its worker and\n  writes the fulfilling KNOW when the join holds.\n\nWatch progress: spl task join-status ${t.alias}\n`,
    );
    // 0 (echo) and 2 (after 0) finish; 1 is held on worker-a: the join waits.
    const mid = await waitFor("children 0 and 2 accepted and 1 spawned (task join-status)", () => status(t.alias), {
      stepMs: 100,
      until: (s) => s.children[0].result?.verdict === "accept" && s.children[2].result?.verdict === "accept" && !!s.children[1].spawned,
    });
    expect(mid.complete).toBeNull();
    expect(mid.children[1].result).toBeNull();
    // index 2 spawned only after 0 accepted
    const parentRecs = await records(t.thread);
    const order = parentRecs.filter((r) => r.body.parent_record_id === record).map((r) => `${r.body.topic}:${r.body.index}`);
    expect(order.indexOf("fanout_spawned:2")).toBeGreaterThan(order.indexOf("fanout_child_done:0"));
    const text = await ok(["task", "join-status", t.alias]);
    expect(text).toBe(
      [
        `Fan-out join status: ${t.thread.slice(0, 11)}…`,
        "  Subtasks:        3",
        "  Spawned:         3 / 3",
        "  Completed:       2 / 3",
        "  Join predicate:  all",
        "  Join complete:   no",
        "",
        "  Per-subtask:",
        `    [0] all-echo → specific:${dids["worker-b"]}`,
        `        accept ($0.00, ${mid.children[0].result.wall_time_secs}s)`,
        `    [1] all-held → specific:${dids["worker-a"]}`,
        "        in progress",
        `    [2] all-after → specific:${mid.children[2].result.worker}`,
        `        accept ($0.00, ${mid.children[2].result.wall_time_secs}s)`,
        "",
      ].join("\n"),
    );
    const fanoutStatus = async (thread: string) => JSON.parse(await ok(["expr", "eval", `fanout_status("${thread}")`, "--context", "routing", "-o", "json"]));
    expect(await fanoutStatus(t.thread)).toMatchObject({ value: "in_progress" });
    expect(await fanoutStatus("th_nothing_here")).toMatchObject({ value: "none" });
    expect(JSON.parse(await ok(["fleet", "status", "-o", "json"])).pending_fanouts).toContainEqual({ thread: t.thread, record, join: "all", subtasks: 3, spawned: 3, completed: 2 });
    // The child lives on worker-a at th_ + sha256(<parent record>:<index>:<goal>), dispatched by exec.
    const child = `th_${sha(`${record}:1:all-held`)}`;
    expect(mid.children[1].thread).toBe(child);
    const onA = await records(child, asMember("worker-a"));
    expect(onA[0]).toMatchObject({ act: "INTEND", body: { goal: "all-held", timeout_secs: 300, budget_usd: 0.5, fanout: { parent_thread: t.thread, parent_record: record, index: 1 } } });
    letGo("all-held");
    const done = await joined(t.alias);
    expect(done.complete.verdict).toBe("accept");
    expect(done.children[1].result).toMatchObject({ verdict: "accept", worker: dids["worker-a"], summary: "ran all-held\n" });
    const know = (await records(t.thread)).filter((r) => r.act === "KNOW" && r.body.topic === "fanout_join_complete");
    expect(know).toHaveLength(1);
    expect(know[0]).toMatchObject({ actor: "did:sync:system:engine", body: { fulfills: record, verdict: "accept" } });
    expect(await ok(["task", "join-status", t.alias])).toContain("  Join complete:   yes (accept)\n");
    expect(await fanoutStatus(t.thread)).toMatchObject({ value: "done" });
    expect(JSON.parse(await ok(["fleet", "status", "-o", "json"])).pending_fanouts.map((p: any) => p.record)).not.toContain(record);
  }, 120_000);

  test("join any closes on the first accept while another child still runs; k_of_n and CEL over children/parent", async () => {
    await whenLive(WORKERS);
    const t = await newTask("any will do");
    await ok(["task", "fan-out", t.alias, "--subtask", "goal=any-held,target=worker-a", "--subtask", "goal=any-echo,target=worker-b", "--join", "any"]);
    const s = await joined(t.alias);
    expect(s.complete.verdict).toBe("accept");
    expect(s.children[0].result).toBeNull(); // still held on worker-a
    letGo("any-held");

    const k = await newTask("two of three, by CEL");
    letGo("cel-1");
    const cel = 'children.filter(c, c.verdict == "accept").size() >= 2 && parent.body.subtasks.size() == 3';
    await ok(["task", "fan-out", k.alias, "--subtask", "goal=cel-1,target=least-loaded-worker", "--subtask", "goal=cel-2,target=worker-b", "--subtask", "goal=cel-3,target=worker-b", "--join", cel]);
    const c = await joined(k.alias);
    expect(c).toMatchObject({ join: cel, complete: { verdict: "accept" } });
    expect(c.children.every((x: any) => x.result?.verdict === "accept")).toBe(true); // CEL waits for every child
  }, 120_000);

  test("a coordinator restart resumes the fan-out without a second child; a retry onto the same worker reuses its record", async () => {
    await whenLive(WORKERS);
    const t = await newTask("survive a restart");
    await ok(["task", "fan-out", t.alias, "--subtask", "goal=restart-echo,target=worker-b", "--subtask", "goal=restart-held,target=worker-a"]);
    await waitFor("child 0 reported and child 1 spawned (task join-status)", () => status(t.alias), { stepMs: 100, until: (s) => !!(s.children[0].result && s.children[1].spawned) });
    expect((await coord.spl(["serve", "--restart"])).code).toBe(0);
    track(pidOf("coordinator"));
    await whenLive(["coordinator", ...WORKERS]);
    // worker-a is busy with the held child, so the retried echo child goes back to worker-b,
    // which already holds it: the same record, no second dispatch, the earlier result reported.
    const r = await ok(["task", "retry", t.alias, "--subtask", "0", "--hint", "once more"]);
    expect(r).toBe(`◇ Retry requested for subtask 0 on ${t.thread.slice(0, 11)}…\nWatch progress: spl task join-status ${t.alias}\n`);
    const again = await waitFor("the retried child 0 reported (task join-status)", () => status(t.alias), { stepMs: 100, until: (s) => s.children[0].retries === 1 && !!s.children[0].result });
    expect(again.children[0]).toMatchObject({ hint: "once more", result: { verdict: "accept", worker: dids["worker-b"] } });
    const onB = await records(again.children[0].thread, asMember("worker-b"));
    expect(onB.filter((x) => x.act === "INTEND")).toHaveLength(1);
    expect(onB.filter((x) => x.act === "KNOW")).toHaveLength(1);
    letGo("restart-held");
    const s = await joined(t.alias);
    expect(s.complete.verdict).toBe("accept");
    const spawns = (await records(t.thread)).filter((x) => x.body.topic === "fanout_spawned");
    expect(spawns.map((x) => x.body.index).sort()).toEqual([0, 0, 1]); // 1 was not spawned again after the restart
    expect((await records(s.children[1].thread, asMember("worker-a"))).filter((x) => x.act === "INTEND")).toHaveLength(1);
  }, 120_000);

  test("a worker killed mid-subtask: the child resolves timeout after its deadline, retry sends it to the live worker, the join completes", async () => {
    await whenLive(WORKERS);
    const t = await newTask("lose a worker");
    await ok(["task", "fan-out", t.alias, "--subtask", "goal=killed-held,target=worker-a,timeout=1", "--subtask", "goal=killed-echo,target=worker-b"]);
    await waitFor("child 0 spawned on worker-a (task join-status)", async () => (await status(t.alias)).children[0], { stepMs: 100, until: (c) => !!c.spawned });
    process.kill(pidOf("worker-a"), "SIGKILL");
    // The coordinator resolves child 0 `timeout` once its deadline and the report grace (30 s) pass.
    const timedOut = await waitFor("child 0 resolved (timeout) and child 1 reported (task join-status)", () => status(t.alias), {
      timeoutMs: 90_000,
      stepMs: 250,
      until: (s) => !!(s.children[0].result && s.children[1].result),
    });
    expect(timedOut.children[0].result).toMatchObject({ verdict: "timeout", worker: dids["worker-a"] });
    expect(timedOut.complete).toBeNull(); // all has not held: the fan-out stays open for a retry
    expect(await ok(["task", "join-status", t.alias])).toContain(`    [0] killed-held → specific:${dids["worker-a"]}\n        timeout ($0.00, `);
    await ok(["task", "retry", t.alias, "--subtask", "0"]);
    const s = await joined(t.alias);
    expect(s.complete.verdict).toBe("accept");
    expect(s.children[0].result).toMatchObject({ verdict: "accept", worker: dids["worker-b"], summary: "echo: killed-held" });
    const late = await coord.spl(["task", "retry", t.alias, "--subtask", "0"]);
    expect(late.code).toBe(1);
    expect(late.stderr).toBe(`error: the fan-out on ${t.alias} is already joined (accept) — start a new one with spl task fan-out\n`);
  }, 180_000);
});

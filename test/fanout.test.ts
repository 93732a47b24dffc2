// Fan-out across a real fleet (issue 12, SPEC 15): a coordinator and two workers on free ports with
// a short heartbeat (fleet-harness.ts HEARTBEAT_SECS); a test whose premise is a live worker first
// waits until the coordinator reports it live. worker-a runs subtasks with the exec adapter, each
// held until the test creates its release file; worker-b runs them with the echo adapter. Children
// are spawned on their workers, dispatched there, reported back, and the join writes the
// fulfilling KNOW.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { localFleet, until } from "./fleet-harness";
import { isAlive, track, waitFor } from "./harness";

const { coord, workerPort, homeOf, asMember, pidOf, ok, startArgs, trackSpawned, teardown, whenLive } = localFleet(2);
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
const joined = (alias: string) => until(`the join of ${alias}`, async () => ((await status(alias)).complete ? status(alias) : null), 60_000, () => status(alias));
/** A member's records on a thread (over its own socket, as that home's operator). */
/** Waits until subtask `index` of a fan-out runs on worker-a (its dispatch is handled there); returns the child. */
const runningOnA = (alias: string, index = 0): Promise<any> =>
  until(`subtask ${index} of ${alias} running on worker-a`, async () => {
    const c = (await status(alias)).children[index];
    return c.spawned && (await onMember("worker-a", c.thread)).some((r) => r.body.dispatch_handled) ? c : null;
  }, 30_000, () => status(alias));

async function onMember(name: string, thread: string): Promise<any[]> {
  const r = await coord.spl(["thread", "records", thread, "-o", "json"], { env: asMember(name) });
  return r.code === 0 ? JSON.parse(r.stdout) : [];
}
/** A member's own credential (README "Fleet": identity). */
const memberCredential = (name: string) => readFileSync(join(homeOf(name), "secrets", "fleet_member"), "utf8").trim();

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

afterAll(() => teardown(), 60_000);

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

  test("a coordinator restart resumes the fan-out without a second child; a retry onto the same worker runs it again as attempt 2", async () => {
    await whenLive(WORKERS);
    const t = await newTask("survive a restart");
    await ok(["task", "fan-out", t.alias, "--subtask", "goal=restart-echo,target=worker-b", "--subtask", "goal=restart-held,target=worker-a"]);
    await waitFor("child 0 reported and child 1 spawned (task join-status)", () => status(t.alias), { stepMs: 100, until: (s) => !!(s.children[0].result && s.children[1].spawned) });
    expect((await coord.spl(["serve", "--restart"])).code).toBe(0);
    track(pidOf("coordinator"));
    await whenLive(["coordinator", ...WORKERS]);
    // worker-a is busy with the held child, so the retried echo child goes back to worker-b: a new
    // child record (attempt 2), dispatched again, its own result reported.
    const r = await ok(["task", "retry", t.alias, "--subtask", "0", "--hint", "once more"]);
    expect(r).toBe(`◇ Retry requested for subtask 0 on ${t.thread.slice(0, 11)}…\nWatch progress: spl task join-status ${t.alias}\n`);
    const again = await waitFor("the retried child 0 reported (task join-status)", () => status(t.alias), { stepMs: 100, until: (s) => s.children[0].retries === 1 && !!s.children[0].result });
    expect(again.children[0]).toMatchObject({ hint: "once more", result: { verdict: "accept", worker: dids["worker-b"], attempt: 2 } });
    expect(again.children[0].attempts.map((a: any) => [a.n, a.worker, a.superseded, a.result?.verdict])).toEqual([
      [1, dids["worker-b"], true, "accept"],
      [2, dids["worker-b"], false, "accept"],
    ]);
    const onB = await records(again.children[0].thread, asMember("worker-b"));
    const intends = onB.filter((x) => x.act === "INTEND");
    expect(intends.map((x) => [x.clock, x.body.fanout.attempt, x.body.hint ?? null])).toEqual([
      [1, 1, null],
      [2, 2, "once more"],
    ]);
    expect(onB.filter((x) => x.act === "KNOW" && x.body.fulfills).map((x) => x.body.fulfills)).toEqual(intends.map((x) => x.id));
    letGo("restart-held");
    const s = await joined(t.alias);
    expect(s.complete.verdict).toBe("accept");
    const spawns = (await records(t.thread)).filter((x) => x.body.topic === "fanout_spawned");
    expect(spawns.map((x) => `${x.body.index}.${x.body.attempt}`).sort()).toEqual(["0.1", "0.2", "1.1"]); // 1 was not spawned again after the restart
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

describe("attempts, reports and who may write them", () => {
  const MALLORY = "did:sync:user:mallory";
  let malloryToken = "";

  beforeAll(async () => {
    // The test above killed worker-a: its config.toml names its port, so a plain start serves there again.
    if (!isAlive(pidOf("worker-a"))) {
      const r = await coord.spl(["serve", "--daemon"], { env: asMember("worker-a") });
      if (r.code !== 0) throw new Error(`worker-a did not start again: ${r.stderr}${r.stdout}`);
      track(pidOf("worker-a"));
      expect(r.stdout).toContain(`:${workerPort}`);
    }
    await until("3 live members", async () => (await coord.http("GET", "/v1/fleet/status")).json?.counts?.live === 3, 30_000, async () => (await coord.http("GET", "/v1/fleet/status")).json?.counts);
    const created = await ok(["token", "create", "--name", "mallory", "--actor", MALLORY, "--scopes", "records:read,records:write"]);
    malloryToken = /spl_[a-z0-9]+_[a-z0-9]+_[A-Za-z0-9]+/.exec(created)![0];
  }, 60_000);

  // Tests here pause, restart and partition workers; a fan-out names its targets, which must be
  // live when it is written: each test starts once both are (on a loaded machine a restarted
  // worker can still read stale when the next test begins).
  beforeEach(() => whenLive(WORKERS), 90_000);

  test("forged reports, spawns, joins, retries and cancels are refused with 403 and change nothing; the real reports settle the join", async () => {
    const t = await newTask("guarded fan-out");
    await ok(["task", "fan-out", t.alias, "--subtask", "goal=guard-0,target=worker-a", "--subtask", "goal=guard-1,target=worker-a"]);
    const s = await until("both children spawned", async () => {
      const x = await status(t.alias);
      return x.children.every((c: any) => c.spawned) ? x : null;
    }, 30_000, () => status(t.alias));
    const record = s.record;
    const before = (await records(t.thread)).length;
    const asMallory = (act: string, thread: string, body: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      coord.http("POST", "/v1/records", { act, actor: MALLORY, thread, body, ...extra }, { authorization: `Bearer ${malloryToken}` });
    const refused: Array<[string, Awaited<ReturnType<typeof asMallory>>]> = [];
    for (const index of [0, 1]) {
      const report = { topic: "fanout_child_done", parent_record_id: record, index, verdict: "accept" };
      refused.push([`report ${index} on the parent thread`, await asMallory("DO", t.thread, report)]);
      refused.push([`report ${index} on another thread`, await asMallory("DO", "th_unrelated_mallory", report)]);
      refused.push([`report ${index} naming the worker and attempt`, await asMallory("DO", t.thread, { ...report, attempt: 1, worker: dids["worker-a"] })]);
    }
    refused.push(["retry", await asMallory("LEARN", t.thread, { topic: "fanout_retry_subtask", parent_record_id: record, index: 0 })]);
    refused.push(["cancel", await asMallory("LEARN", t.thread, { topic: "fanout_cancel", parent_record_id: record })]);
    refused.push(["spawn", await asMallory("DO", t.thread, { topic: "fanout_spawned", parent_record_id: record, index: 0, attempt: 2, worker: dids["worker-b"] })]);
    refused.push(["join", await asMallory("KNOW", t.thread, { topic: "fanout_join_complete", parent_record_id: record, fulfills: record, verdict: "accept" })]);
    refused.push(["a comment naming the fan-out", await asMallory("DO", t.thread, { parent_record_id: record, text: "hi" })]);
    for (const [what, r] of refused) expect({ what, status: r.status, code: r.json?.code }).toEqual({ what, status: 403, code: "FANOUT_FORBIDDEN" });
    // With a member credential, a report still has to come from the attempt's own worker, and name an attempt that exists.
    const as = (name: string) => ({ authorization: `Bearer ${memberCredential(name)}` });
    const report = (worker: string, attempt: number) => ({ act: "DO", actor: worker, thread: t.thread, body: { topic: "fanout_child_done", parent_record_id: record, index: 0, attempt, worker, verdict: "accept" } });
    const wrongWorker = await coord.http("POST", "/v1/records", report(dids["worker-b"]!, 1), as("worker-b"));
    expect([wrongWorker.status, wrongWorker.json.code, wrongWorker.json.message]).toEqual([403, "FANOUT_FORBIDDEN", `attempt 1 of subtask 0 was sent to ${dids["worker-a"]}; a report for it must name that worker as actor and worker`]);
    // worker-b cannot speak for worker-a: its credential is its own DID.
    const impersonated = await coord.http("POST", "/v1/records", report(dids["worker-a"]!, 1), as("worker-b"));
    expect([impersonated.status, impersonated.json.code]).toEqual([403, "DID_CLAIM_DENIED"]);
    const noAttempt = await coord.http("POST", "/v1/records", report(dids["worker-a"]!, 2), as("worker-a"));
    expect([noAttempt.status, noAttempt.json.code]).toEqual([403, "FANOUT_FORBIDDEN"]);
    expect((await records(t.thread)).length).toBe(before);
    const mid = await status(t.alias);
    expect(mid.complete).toBeNull();
    expect(mid.children.map((c: any) => c.result)).toEqual([null, null]);
    letGo("guard-0");
    letGo("guard-1");
    const done = await joined(t.alias);
    expect(done.complete.verdict).toBe("accept");
    expect(done.children.map((c: any) => [c.result.worker, c.result.attempt, c.result.summary])).toEqual([
      [dids["worker-a"], 1, "ran guard-0\n"],
      [dids["worker-a"], 1, "ran guard-1\n"],
    ]);
  }, 90_000);

  test("a worker partitioned mid-child (SIGSTOP), retried on the other, healed: attempt 1's late report is recorded, one result settles the join, the parent is fulfilled once", async () => {
    const t = await newTask("partition");
    await ok(["task", "fan-out", t.alias, "--subtask", "goal=part-held,target=worker-a"]);
    const child = await runningOnA(t.alias);
    const pid = pidOf("worker-a");
    process.kill(pid, "SIGSTOP");
    try {
      await until("worker-a stale", async () => (await coord.http("GET", "/v1/fleet/status")).json.instances.find((m: any) => m.did === dids["worker-a"])?.status !== "live", 30_000);
      await ok(["task", "retry", t.alias, "--subtask", "0"]);
      const s = await joined(t.alias);
      expect(s.complete.verdict).toBe("accept");
      expect(s.children[0].result).toMatchObject({ worker: dids["worker-b"], attempt: 2, verdict: "accept" });
    } finally {
      process.kill(pid, "SIGCONT");
    }
    // After the heal worker-a gets the coordinator's cancel of attempt 1 (sent when the retry
    // superseded it) or finishes it first: either way it reports attempt 1, late.
    letGo("part-held");
    const late = await until("attempt 1's report from worker-a", async () => (await records(t.thread)).find((r) => r.body.topic === "fanout_child_done" && r.body.attempt === 1), 60_000, async () => (await records(t.thread)).map((r) => r.body.topic));
    expect(late).toMatchObject({ actor: dids["worker-a"], body: { index: 0, worker: dids["worker-a"], intend: child.attempts[0].intend } });
    expect(late.body.verdict === "accept" || (late.body.verdict === "cancelled" && late.body.reason === "attempt 1 was superseded by a retry")).toBe(true);
    const parentRecs = await records(t.thread);
    expect(parentRecs.filter((r) => r.body.fulfills === parentRecs.find((r) => r.act === "INTEND" && r.body.subtasks).id)).toHaveLength(1);
    expect(parentRecs.filter((r) => r.body.topic === "fanout_join_complete")).toHaveLength(1);
    expect(parentRecs.filter((r) => r.body.dispatch_handled)).toHaveLength(0); // the reconciler left the parent to its join
    const s = await status(t.alias);
    expect(s.children[0].result).toMatchObject({ worker: dids["worker-b"], attempt: 2 });
    // No child ran twice for one attempt: worker-a ran attempt 1 once, worker-b attempt 2 once.
    expect((await onMember("worker-a", child.thread)).filter((r) => r.act === "KNOW" && r.body.fulfills)).toHaveLength(1);
    expect((await onMember("worker-b", child.thread)).filter((r) => r.act === "KNOW" && r.body.fulfills).map((r) => r.body.fulfills)).toEqual([s.children[0].attempts[1].intend]);
  }, 120_000);

  test("reports are durable: a child that ends while the coordinator is down is reported once after it is back, across a worker restart", async () => {
    const t = await newTask("outbox");
    await ok(["task", "fan-out", t.alias, "--subtask", "goal=outbox-held,target=worker-a"]);
    const c = await runningOnA(t.alias);
    expect((await coord.spl(["serve", "--stop"])).code).toBe(0);
    letGo("outbox-held");
    await until("the report queued in worker-a's outbox", async () => (await onMember("worker-a", c.thread)).some((r) => r.body.fanout_outbox === "queued"), 30_000, () => onMember("worker-a", c.thread));
    const restarted = await coord.spl(["serve", "--restart"], { env: asMember("worker-a") });
    expect(restarted.code).toBe(0);
    track(pidOf("worker-a"));
    const back = await coord.spl(["serve", "--daemon", "--port", String(coord.port)]);
    expect(back.code).toBe(0);
    track(pidOf("coordinator"));
    const s = await joined(t.alias);
    expect(s.children[0].result).toMatchObject({ verdict: "accept", worker: dids["worker-a"], attempt: 1, summary: "ran outbox-held\n" });
    const reports = (await records(t.thread)).filter((r) => r.body.topic === "fanout_child_done");
    expect(reports).toHaveLength(1);
    const outbox = (await onMember("worker-a", c.thread)).filter((r) => r.body.fanout_outbox).map((r) => r.body.fanout_outbox);
    expect(outbox).toEqual(["queued", "acked"]);
  }, 120_000);

  test("goal and payload limits: 400 naming the limit, nothing written", async () => {
    const t = await newTask("too big");
    const before = (await records(t.thread)).length;
    const post = (body: Record<string, unknown>) => coord.http("POST", "/v1/records", { act: "INTEND", actor: "did:sync:user:tester", thread: t.thread, body });
    const big = await post({ subtasks: [{ goal: "x".repeat(300_000), target: "worker-a", timeout_secs: 600, depends_on: [], budget_usd: null }], join: "all" });
    expect([big.status, big.json.code, big.json.message]).toEqual([400, "INVALID_FANOUT", 'subtask 0: goal is 300000 bytes, more than the limit of 262144 — see README "Fan-out" for the limits']);
    const many = await post({ subtasks: Array.from({ length: 1001 }, () => ({ goal: "x", target: "worker-a", timeout_secs: 600, depends_on: [] })) });
    expect([many.status, many.json.message]).toEqual([400, '1001 subtasks, more than the limit of 1000 — see README "Fan-out" for the limits']);
    const loop = await post({ subtasks: [{ goal: "a", target: "worker-a", timeout_secs: 600, depends_on: [1] }, { goal: "b", target: "worker-a", timeout_secs: 600, depends_on: [0] }] });
    expect([loop.status, loop.json.message]).toEqual([400, 'depends_on form a cycle: 0 → 1 → 0 — see README "Fan-out" for the limits']);
    const cli = await coord.spl(["task", "fan-out", t.alias, "--subtask", "goal=x,target=worker-a,timeout=999999"]);
    expect([cli.code, cli.stderr]).toEqual([2, "error: --subtask 0: timeout=999999 is more than the limit of 604800 s (7 days) — e.g. timeout=600\n"]);
    expect((await records(t.thread)).length).toBe(before);
  });

  test("a child its worker cannot route is reported unrouted at once with the rule to add; after adding it, a retry runs", async () => {
    await ok(["config", "remove-rule", "--name", "fanout-children"], asMember("worker-b"));
    const t = await newTask("nowhere to go");
    try {
      await ok(["task", "fan-out", t.alias, "--subtask", "goal=unrouted-echo,target=worker-b"]);
      const s = await until("an unrouted report", async () => {
        const x = await status(t.alias);
        return x.children[0].result ? x : null;
      }, 30_000, () => status(t.alias));
      expect(s.children[0].result).toMatchObject({ verdict: "unrouted", worker: dids["worker-b"], attempt: 1 });
      expect(s.children[0].result.reason).toBe("no routing rule on worker-b matches it, and no actor with a dispatch target is trusted in its domain");
      const fix = `add a rule on worker-b: SYNCROPEL_HOME=${homeOf("worker-b")} spl config add-rule --name fanout-children --expression 'has(record.body.fanout)' --target did:sync:agent:echo — then spl task retry <alias> --subtask 0`;
      expect(s.children[0].result.fix).toBe(fix);
      expect(s.complete).toBeNull();
      const text = await ok(["task", "join-status", t.alias]);
      expect(text).toContain(`    [0] unrouted-echo → specific:${dids["worker-b"]}\n        unrouted on worker-b: no routing rule on worker-b matches it, and no actor with a dispatch target is trusted in its domain\n        fix: ${fix}\n`);
    } finally {
      await ok(["config", "add-rule", "--name", "fanout-children", "--expression", "has(record.body.fanout)", "--target", WORKER], asMember("worker-b"));
    }
    // The retry goes to the least-loaded live worker, which may be worker-a (its adapter waits for
    // a release file named by the goal): release it, so it runs wherever it lands.
    letGo("unrouted-echo");
    await ok(["task", "retry", t.alias, "--subtask", "0"]);
    const done = await joined(t.alias);
    expect(done.children[0].result).toMatchObject({ verdict: "accept", attempt: 2 });
    expect(["echo: unrouted-echo", "ran unrouted-echo\n"]).toContain(done.children[0].result.summary);
  }, 60_000);

  test("fan-out cancel ends the running child and the pending spawn; the join closes cancelled, fulfilling the parent once", async () => {
    const t = await newTask("cancel me");
    await ok(["task", "fan-out", t.alias, "--subtask", "goal=cancel-held,target=worker-a", "--subtask", "goal=cancel-after,target=worker-b,depends=0"]);
    const c = await runningOnA(t.alias);
    const out = await ok(["task", "fan-out", "cancel", t.alias, "--reason", "not needed"]);
    expect(out).toBe(`◇ Cancel requested for the fan-out on ${t.thread.slice(0, 11)}…\nWatch progress: spl task join-status ${t.alias}\n`);
    const s = await joined(t.alias);
    expect(s.complete.verdict).toBe("cancelled");
    expect(s.cancel).toMatchObject({ by: "did:sync:user:tester", reason: "not needed" });
    expect(s.children[1].attempts).toEqual([]); // never spawned
    const stopped = await until("worker-a stopping the child", async () => (await onMember("worker-a", c.thread)).find((r) => r.act === "KNOW" && r.body.fulfills), 30_000, () => onMember("worker-a", c.thread));
    expect(stopped.body).toMatchObject({ verdict: "cancelled" });
    await until("worker-a's cancelled report", async () => (await records(t.thread)).some((r) => r.body.topic === "fanout_child_done" && r.body.verdict === "cancelled"), 30_000);
    const parentRecs = await records(t.thread);
    expect(parentRecs.filter((r) => r.body.fulfills)).toHaveLength(1);
    expect(parentRecs.filter((r) => r.body.dispatch_handled)).toHaveLength(0);
    expect(await ok(["task", "join-status", t.alias])).toContain("  Join complete:   yes (cancelled)\n");
    const again = await coord.spl(["task", "fan-out", "cancel", t.alias]);
    expect([again.code, again.stderr]).toEqual([1, `error: the fan-out on ${t.alias} is already joined (cancelled) — nothing to cancel\n`]);
  }, 60_000);

  test("an emergency stop cancels pending fan-outs and stops their children; the report lands after unkill", async () => {
    const t = await newTask("stop everything");
    await ok(["task", "fan-out", t.alias, "--subtask", "goal=emergency-held,target=worker-a"]);
    const c = await runningOnA(t.alias);
    await ok(["kill", "--emergency", "--reason", "drill"]);
    try {
      const s = await joined(t.alias);
      expect(s.complete.verdict).toBe("cancelled");
      const stopped = await until("worker-a stopping the child", async () => (await onMember("worker-a", c.thread)).find((r) => r.act === "KNOW" && r.body.fulfills), 30_000, () => onMember("worker-a", c.thread));
      expect(stopped.body.verdict).toBe("cancelled");
    } finally {
      await ok(["unkill", "--emergency"]);
    }
    await until("worker-a's report after the unkill", async () => (await records(t.thread)).some((r) => r.body.topic === "fanout_child_done" && r.body.verdict === "cancelled"), 90_000);
  }, 150_000);
});

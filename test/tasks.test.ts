// Tasks end to end on the compiled binary (issue 10 points 1, 3 and the task half of 6): aliases,
// the status machine refused at write time (also inside one group commit), reasons, -o json,
// --actor, one-line errors, the evaluation gate as trust evidence, and the same answers after a
// restart and after kill -9. The completion gate with real git is in task-gate.test.ts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Instance, isAlive, processGone } from "./harness";

const OP = "did:sync:user:tester"; // harness USER=tester → [identity] actor
const WORKER = "did:sync:agent:worker";
const REVIEWER = "did:sync:user:reviewer";

const inst = new Instance();
let pid = 0;

async function ok(args: string[]) {
  const r = await inst.spl(args);
  if (r.code !== 0) throw new Error(`spl ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}
const json = async (args: string[]) => JSON.parse(await ok([...args, "-o", "json"]));
const show = (ref: string) => json(["task", "show", ref]);

/** A refused command: its exit code and its one stderr line (no stack trace). */
async function refused(args: string[], code = 1) {
  const r = await inst.spl(args);
  expect(r.code).toBe(code);
  expect(r.stdout).toBe("");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines.length).toBe(1);
  expect(lines[0]!.startsWith("error: ")).toBe(true);
  expect(lines[0]).toContain(" — ");
  return lines[0]!;
}

const post = (rec: Record<string, unknown>) => inst.socket("POST", "/v1/records", rec);
const recordCount = async () => (await inst.socket("GET", "/v1/status")).json.records as number;
const threadRecords = async (thread: string) => JSON.parse(await ok(["thread", "records", thread, "-o", "json"])) as any[];

/** What an operator sees, as text and JSON, to compare across restarts. */
async function snapshot() {
  const list = await ok(["task", "list", "--all"]);
  const tasks = await json(["task", "list", "--all"]);
  const shown = await Promise.all(tasks.map((t: any) => ok(["task", "show", t.alias, "-o", "json"])));
  const trust = await ok(["trust"]);
  return { list, shown, trust };
}

beforeAll(async () => {
  await ok(["init"]);
  pid = await inst.start();
});
afterAll(async () => {
  await inst.stop();
});

describe("spl task: aliases, status machine, errors", () => {
  test("add prints the created task; aliases are minted TSK-0001.. or given, and a taken alias is refused", async () => {
    const out = await ok(["task", "add", "Add input validation", "--priority", "high", "--label", "api", "--label", "backend"]);
    expect(out).toMatch(/^◇ Task created: Add input validation\n  thread: th_[0-9a-f]{64}\n  alias:  TSK-0001\n$/);
    expect((await ok(["task", "add", "Write the docs", "--alias", "SKL-0001"])).trimEnd().split("\n")[2]).toBe("  alias:  SKL-0001");
    expect(await ok(["task", "add", "Third"])).toContain("alias:  TSK-0002");

    const before = await recordCount();
    const line = await refused(["task", "add", "Clash", "--alias", "skl-0001"]);
    expect(line).toContain("alias skl-0001 is taken");
    expect(line).toContain("[ALIAS_TAKEN]");
    expect(await recordCount()).toBe(before);

    const list = (await ok(["task", "list"])).trimEnd().split("\n");
    expect(list[0]).toMatch(/^ID\s+STATUS\s+PRI\s+GOAL\s+ASSIGN$/);
    expect(list.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
      ["TSK-0001", "inbox", "high", "Add input validation", "—"],
      ["SKL-0001", "inbox", "medium", "Write the docs", "—"],
      ["TSK-0002", "inbox", "medium", "Third", "—"],
    ]);
    const rows = await json(["task", "list"]);
    expect(rows.map((t: any) => [t.alias, t.status, t.priority])).toEqual([
      ["TSK-0001", "inbox", "high"],
      ["SKL-0001", "inbox", "medium"],
      ["TSK-0002", "inbox", "medium"],
    ]);
    // Alias lookups ignore case; the thread id works too.
    const t = await show("tsk-0001");
    expect(t).toMatchObject({ alias: "TSK-0001", status: "inbox", goal: "Add input validation", priority: "high", labels: ["api", "backend"] });
    expect((await show(t.thread)).alias).toBe("TSK-0001");
  });

  test("an invalid transition is refused with 409 naming the current status and what is allowed; nothing is written", async () => {
    const t = await show("TSK-0001");
    const before = await threadRecords(t.thread);
    const line = await refused(["task", "done", "TSK-0001", "--force"]);
    expect(line).toContain("task TSK-0001 is inbox; 'done' is not allowed from inbox");
    expect(line).toContain("allowed now: start, block, defer, cancel");
    expect(line).toContain("[INVALID_TRANSITION]");
    const http = await post({ act: "DO", actor: OP, thread: t.thread, body: { task_event: "approve" } });
    expect(http.status).toBe(400);
    const raw = await post({ act: "KNOW", actor: REVIEWER, thread: t.thread, body: { task_event: "approve", verdict: "accept" } });
    expect(raw.status).toBe(409);
    expect(raw.json).toMatchObject({ object: "error", code: "INVALID_TRANSITION" });
    expect(raw.json.message).toContain("is inbox");
    expect((await threadRecords(t.thread)).length).toBe(before.length);
  });

  test("reasons are required for block, defer, reject, fail, cancel and reopen", async () => {
    const t = await show("TSK-0002");
    for (const verb of ["block", "defer", "cancel"]) {
      expect(await refused(["task", verb, "TSK-0002"], 2)).toContain(`'task ${verb}' needs a reason`);
      const r = await post({ act: "DO", actor: OP, thread: t.thread, body: { task_event: verb } });
      expect([r.status, r.json.code]).toEqual([400, "REASON_REQUIRED"]);
    }
    await ok(["task", "start", "TSK-0002"]);
    const fail = await post({ act: "DO", actor: OP, thread: t.thread, body: { task_event: "fail" } });
    expect([fail.status, fail.json.code]).toEqual([400, "REASON_REQUIRED"]);
    await ok(["task", "fail", "TSK-0002", "--reason", "flaky upstream"]);
    const reopen = await post({ act: "DO", actor: OP, thread: t.thread, body: { task_event: "reopen" } });
    expect([reopen.status, reopen.json.code]).toEqual([400, "REASON_REQUIRED"]);
    await ok(["task", "reopen", "TSK-0002", "--reason", "upstream fixed"]);
    await ok(["task", "done", "TSK-0002", "--summary", "retried", "--force"]);
    const reject = await post({ act: "KNOW", actor: REVIEWER, thread: t.thread, body: { task_event: "reject", verdict: "reject" } });
    expect([reject.status, reject.json.code]).toEqual([400, "REASON_REQUIRED"]);
    expect(await refused(["task", "reject", "TSK-0002", "--actor", REVIEWER], 2)).toContain("needs a reason");
    expect((await show("TSK-0002")).status).toBe("review");
    await ok(["task", "cancel", "SKL-0001", "--reason", "duplicate of TSK-0001"]);
    const shown = await show("SKL-0001");
    expect(shown.status).toBe("cancelled");
    expect(shown.history.at(-1)).toMatchObject({ event: "cancel", from: "inbox", to: "cancelled", note: "duplicate of TSK-0001" });
    // Closed tasks leave the default list.
    expect((await json(["task", "list"])).map((x: any) => x.alias)).not.toContain("SKL-0001");
    expect((await json(["task", "list", "--all"])).map((x: any) => x.alias)).toContain("SKL-0001");
  });

  test("--actor names who wrote each event; comment and edit leave the status alone", async () => {
    const start = JSON.parse(await ok(["task", "start", "TSK-0001", "--actor", WORKER, "-o", "json"]));
    expect(start.status).toBe("active");
    await ok(["task", "comment", "TSK-0001", "halfway there", "--actor", WORKER]);
    await ok(["task", "edit", "TSK-0001", "--set", "priority=critical", "--set", "labels=api,security", "--set", "assignee=@" + WORKER]);
    const t = await show("TSK-0001");
    expect(t).toMatchObject({ status: "active", priority: "critical", labels: ["api", "security"], assignee: WORKER });
    expect(t.history.map((h: any) => [h.event, h.actor])).toEqual([
      ["add", OP],
      ["start", WORKER],
      ["comment", WORKER],
      ["edit", OP],
    ]);
    const row = (await ok(["task", "list"])).split("\n").find((l) => l.startsWith("TSK-0001"))!;
    expect(row.split(/\s{2,}/)).toEqual(["TSK-0001", "active", "critical", "Add input validation", WORKER]);
    await ok(["task", "handoff", "TSK-0002", "--to", "@" + REVIEWER]);
    expect(await show("TSK-0002")).toMatchObject({ status: "review", assignee: REVIEWER });
  });

  test("tree shows a task with the tasks it depends on", async () => {
    await ok(["task", "add", "Release", "--alias", "REL-1", "--depends-on", "TSK-0001,NOPE-0042"]);
    expect(await ok(["task", "tree", "rel-1"])).toBe("REL-1  inbox  Release\n├─ TSK-0001  active  Add input validation\n└─ NOPE-0042  (no such task)\n");
    const tree = await json(["task", "tree", "REL-1"]);
    expect(tree.depends_on.map((d: any) => [d.alias, d.status ?? null, d.missing ?? false])).toEqual([
      ["TSK-0001", "active", false],
      ["NOPE-0042", null, true],
    ]);
    expect(await refused(["task", "tree", "NOPE-0042"])).toContain("[TASK_NOT_FOUND]");
  });

  test("bad input is a one-line error with the fix, nothing is written, and the daemon keeps serving", async () => {
    const before = await recordCount();
    expect(await refused(["task", "show", "NOPE-0009"])).toMatch(/no task "NOPE-0009" — 'spl task list --all'.*\[TASK_NOT_FOUND\]$/);
    expect(await refused(["task", "start", "nope-0009"])).toContain("[TASK_NOT_FOUND]");
    expect(await refused(["task", "edit", "TSK-0001", "--set", "priority"], 2)).toContain("--set 'priority' is not key=value — e.g. --set priority=high");
    expect(await refused(["task", "edit", "TSK-0001", "--set", "colour=red"], 2)).toContain("--set cannot change 'colour'");
    expect(await refused(["task", "edit", "TSK-0001", "--set", "priority=urgent"], 2)).toContain("invalid priority 'urgent' — use one of critical, high, medium, low");
    expect(await refused(["task", "add", "x", "--priority", "urgent"], 2)).toContain("invalid priority 'urgent'");
    // The same refusals at the daemon, for clients that write records directly.
    const t = await show("TSK-0001");
    const cases: [Record<string, unknown>, number, string][] = [
      [{ act: "INTEND", actor: OP, thread: "th_bad_priority", body: { task: true, goal: "g", priority: "urgent" } }, 400, "INVALID_PRIORITY"],
      [{ act: "INTEND", actor: OP, thread: "th_bad_alias", body: { task: true, goal: "g", alias: "tsk-0001" } }, 409, "ALIAS_TAKEN"],
      [{ act: "INTEND", actor: OP, thread: t.thread, body: { task: true, goal: "again" } }, 409, "TASK_EXISTS"],
      [{ act: "DO", actor: OP, thread: t.thread, body: { task_event: "edit", set: { priority: "urgent" } } }, 400, "INVALID_PRIORITY"],
      [{ act: "DO", actor: OP, thread: t.thread, body: { task_event: "explode" } }, 400, "INVALID_TASK_EVENT"],
      [{ act: "DO", actor: OP, thread: "th_not_a_task", body: { task_event: "start" } }, 404, "TASK_NOT_FOUND"],
    ];
    for (const [rec, status, code] of cases) {
      const r = await post(rec);
      expect([r.status, r.json.object, r.json.code]).toEqual([status, "error", code]);
      expect(r.json.message).toContain(" — ");
    }
    const http = await inst.http("GET", "/v1/tasks/NOPE-0009");
    expect([http.status, http.json.code]).toEqual([404, "TASK_NOT_FOUND"]);
    expect(http.json.message).toContain("spl task list");
    expect((await inst.http("GET", "/v1/tasks?all=maybe")).status).toBe(400);
    const undecodable = await inst.http("GET", "/v1/tasks/%ZZ");
    expect([undecodable.status, undecodable.json.code]).toEqual([400, "INVALID_TASK_REF"]);
    expect(await recordCount()).toBe(before);
    expect((await inst.http("GET", "/health")).status).toBe(200);
    expect(isAlive(pid)).toBe(true);
  });

  test("an INTEND whose body.task is not exactly true opens no task", async () => {
    for (const task of ["true", 1, { yes: true }]) {
      const r = await post({ act: "INTEND", actor: OP, thread: `th_not_task_${JSON.stringify(task).length}`, body: { task, goal: "looks like a task" } });
      expect(r.status).toBe(201);
    }
    expect((await json(["task", "list", "--all"])).map((t: any) => t.goal)).not.toContain("looks like a task");
  });
});

describe("write-time checks under concurrency (same-transaction staging: task-commit.test.ts)", () => {
  test("concurrent clients starting one task: exactly one start is written, the others get 409", async () => {
    await ok(["task", "add", "Race me", "--alias", "RACE-1"]);
    const t = await show("RACE-1");
    // Distinct bodies, so none is a duplicate of another; submitted together they share commits.
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) => post({ act: "DO", actor: `did:sync:agent:w${i}`, thread: t.thread, body: { task_event: "start", attempt: i } })),
    );
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 201).length).toBe(1);
    expect(statuses.filter((s) => s === 409).length).toBe(11);
    for (const a of answers.filter((x) => x.status === 409)) expect(a.json.code).toBe("INVALID_TRANSITION");
    const records = await threadRecords(t.thread);
    expect(records.filter((r) => r.body.task_event === "start").length).toBe(1);
    expect((await show("RACE-1")).history.map((h: any) => h.event)).toEqual(["add", "start"]);
  });

  test("a batch sees its own earlier records; a refused batch writes nothing and unstages what it accepted", async () => {
    await ok(["task", "add", "Batch me", "--alias", "RACE-2"]);
    const t = await show("RACE-2");
    const ev = (verb: string, extra: Record<string, unknown> = {}) => ({ act: "DO", actor: OP, thread: t.thread, body: { task_event: verb, ...extra } });
    const refusedBatch = await inst.socket("POST", "/v1/records/batch", { records: [ev("start"), ev("start", { again: true })] });
    expect(refusedBatch.status).toBe(409);
    expect(refusedBatch.json.code).toBe("INVALID_TRANSITION");
    // Sent in the same turn as the refused batch: its start must not count.
    const [a, b] = await Promise.all([
      inst.socket("POST", "/v1/records/batch", { records: [ev("start", { n: 1 }), ev("comment", { text: "x" }), ev("start", { n: 2 })] }),
      inst.socket("POST", "/v1/records/batch", { records: [ev("start", { n: 3 }), ev("done", { summary: "quick", forced: true })] }),
    ]);
    expect(a.status).toBe(409);
    expect(b.status).toBe(200);
    expect(b.json.data.map((d: any) => d.status)).toEqual(["created", "created"]);
    const shown = await show("RACE-2");
    expect(shown.status).toBe("review");
    expect(shown.history.map((h: any) => h.event)).toEqual(["add", "start", "done"]);
    expect((await threadRecords(t.thread)).length).toBe(3);
  });
});

describe("the evaluation gate", () => {
  test("only another actor approves or rejects; the verdict is trust evidence about the actor who ran done", async () => {
    await ok(["task", "add", "Ship the parser", "--alias", "EVAL-1", "--domain", "code"]);
    await ok(["task", "start", "EVAL-1", "--actor", WORKER]);
    await ok(["task", "done", "EVAL-1", "--summary", "parser shipped", "--force", "--actor", WORKER]);
    const before = await recordCount();
    const self = await refused(["task", "approve", "EVAL-1", "--actor", WORKER]);
    expect(self).toContain(`${WORKER} ran 'done' on EVAL-1 and may not approve it`);
    expect(self).toContain("[SELF_APPROVAL]");
    expect(await refused(["task", "reject", "EVAL-1", "--actor", WORKER, "--reason", "meh"])).toContain("[SELF_APPROVAL]");
    const t = await show("EVAL-1");
    const raw = await post({ act: "KNOW", actor: WORKER, thread: t.thread, body: { task_event: "approve", verdict: "accept", domain: "code", subject: WORKER } });
    expect([raw.status, raw.json.code]).toEqual([403, "SELF_APPROVAL"]);
    expect(await recordCount()).toBe(before);

    // CEL task(): in-process rules (a health check) and ad-hoc evaluation both see the fold.
    await ok(["config", "add-health", "--name", "eval-1-approved", "--severity", "warn", "--description", "EVAL-1 reviewed", "--expression", 'task("eval-1").status == "approved" && tasks.exists(t, t.status == "approved")']);
    expect((await inst.spl(["health", "check"])).code).toBe(1);

    expect(await ok(["task", "approve", "EVAL-1", "--actor", REVIEWER, "--notes", "clean"])).toBe("EVAL-1: review → approved\n");
    expect((await inst.spl(["health", "check"])).code).toBe(0);
    const facts = JSON.parse(await ok(["expr", "eval", 'task("EVAL-1")', "--context", "routing"]));
    expect(facts).toMatchObject({ status: "approved", priority: "medium", assigned_to: "", exists: true });
    expect(Number.isInteger(facts.age_secs)).toBe(true);
    expect((await ok(["expr", "eval", '!task("NOPE-1").exists && task("NOPE-1").status == "" && task("EVAL-1").age_secs >= 0', "--context", "permission"])).trim()).toBe("true");
    const verdict = (await threadRecords(t.thread)).at(-1);
    expect(verdict).toMatchObject({ act: "KNOW", actor: REVIEWER, body: { task_event: "approve", verdict: "accept", domain: "code", subject: WORKER, notes: "clean" } });
    const done = t.history.find((h: any) => h.event === "done");
    expect(verdict.judged_by).toBe(done.record);

    // A second task, rejected by the reviewer: the worker now has 1 success in 2 trials in code.
    await ok(["task", "add", "Ship the lexer", "--alias", "EVAL-2"]);
    await ok(["task", "start", "EVAL-2", "--actor", WORKER]);
    await ok(["task", "done", "EVAL-2", "--force", "--actor", WORKER, "--domain", "code"]); // the work's domain, given at done
    await ok(["task", "reject", "EVAL-2", "--actor", REVIEWER, "--reason", "no tests"]);
    expect((await show("EVAL-2")).status).toBe("rejected");
    const rows = await json(["trust"]);
    expect(rows.find((r: any) => r.actor === WORKER && r.domain === "code")).toMatchObject({ success: 1, total: 2 });
    expect(rows.find((r: any) => r.actor === REVIEWER)).toBeUndefined();
    const table = (await ok(["trust"])).split("\n").find((l) => l.startsWith(WORKER))!;
    expect(table.split(/\s{2,}/).slice(0, 4)).toEqual([WORKER, "code", "1", "2"]);
  });
});

describe("state is rebuilt from the log", () => {
  test("task list, task show -o json and trust are identical after a restart and after kill -9", async () => {
    const before = await snapshot();
    expect(before.shown.length).toBeGreaterThan(5);

    expect((await inst.stop()).code).toBe(0);
    pid = await inst.start();
    expect(await snapshot()).toEqual(before);

    process.kill(pid, "SIGKILL");
    await processGone(pid);
    pid = await inst.start();
    expect(await snapshot()).toEqual(before);

    // The minted sequence continues where the log left it.
    expect(await ok(["task", "add", "After the crash"])).toContain("alias:  TSK-0003");
  });
});

// The task check inside one group commit, on an in-process daemon (real store, ingest queue and
// gate): folds apply only after COMMIT, so submissions queued in the same turn share a
// transaction, and each must be checked against the records accepted before it in that
// transaction, not against the status at the last commit.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Caller } from "../lib/api/caller";
import { ApiError } from "../lib/api/http";
import { TASKS } from "../lib/tasks/capability";
import { matchesFilter } from "../lib/records/filter";
import { prepareRecord } from "../lib/records/envelope";
import { inProcessDaemon, type InProcessDaemon } from "./app-harness";

const OP = "did:sync:user:tester";
let d: InProcessDaemon;
const caller: Caller = { actor: OP, via: "socket", token: null, scopes: null, actsForOthers: true };
const route = { cls: "record_write" as const, label: "POST /v1/records", rulesPerRecord: true };

beforeAll(async () => {
  d = await inProcessDaemon();
});
afterAll(() => d?.close());

let n = 0;
async function newTask(): Promise<string> {
  const thread = `th_commit_${++n}`;
  const r = await d.request("POST", "/v1/records", { act: "INTEND", actor: OP, thread, body: { task: true, goal: `task ${n}` } }, { socket: true });
  expect(r.status).toBe(201);
  return thread;
}
const ev = (thread: string, verb: string, extra: Record<string, unknown> = {}) =>
  prepareRecord({ act: "DO", actor: OP, thread, body: { task_event: verb, ...extra } });
/** One submission, queued now; all submissions queued in one turn share a transaction. */
const submit = (...records: ReturnType<typeof ev>[]) => d.state.ingest.submit(records, { caller, route });
const tasks = () => d.state.use(TASKS);
const outcome = (r: PromiseSettledResult<unknown>) => (r.status === "fulfilled" ? "ok" : r.reason instanceof ApiError ? r.reason.code : String(r.reason));

describe("task checks within one transaction", () => {
  test("two starts in one group commit: the second is refused against the staged status", async () => {
    const thread = await newTask();
    const commitsBefore = d.state.store.counts.records;
    const settled = await Promise.allSettled([submit(ev(thread, "start", { by: 1 })), submit(ev(thread, "start", { by: 2 })), submit(ev(thread, "done", { forced: true }))]);
    expect(settled.map(outcome)).toEqual(["ok", "INVALID_TRANSITION", "ok"]);
    expect(d.state.store.counts.records).toBe(commitsBefore + 2);
    expect(tasks().get(thread)!.history.map((h) => h.event)).toEqual(["add", "start", "done"]);
  });

  test("a refused submission's accepted records are unstaged: later submissions in the transaction do not see them", async () => {
    const thread = await newTask();
    const settled = await Promise.allSettled([
      submit(ev(thread, "start", { by: 1 }), ev(thread, "start", { by: 2 })), // refused as a whole
      submit(ev(thread, "done", { forced: true })), // the first start was rolled back: still inbox
      submit(ev(thread, "start", { by: 3 })),
    ]);
    expect(settled.map(outcome)).toEqual(["INVALID_TRANSITION", "INVALID_TRANSITION", "ok"]);
    expect(tasks().get(thread)!.history.map((h) => [h.event, h.to])).toEqual([
      ["add", "inbox"],
      ["start", "active"],
    ]);
  });

  test("a transaction that fails (the store is full) discards what it staged", async () => {
    const thread = await newTask();
    const { db } = d.state.store;
    const pages = (db.query("PRAGMA page_count").get() as { page_count: number }).page_count;
    db.run(`PRAGMA max_page_count = ${pages}`);
    let full: unknown;
    try {
      // Checked and staged, then its insert needs pages the store may not grow to: SQLITE_FULL.
      await submit(ev(thread, "start", { pad: "x".repeat(256 * 1024) }));
    } catch (err) {
      full = err;
    } finally {
      db.run("PRAGMA max_page_count = 4294967294");
    }
    expect(String(full)).toMatch(/full/i);
    expect(tasks().get(thread)!.status).toBe("inbox");
    const [done] = await Promise.allSettled([submit(ev(thread, "done", { forced: true }))]);
    expect(outcome(done!)).toBe("INVALID_TRANSITION");
    expect((await Promise.allSettled([submit(ev(thread, "start"))])).map(outcome)).toEqual(["ok"]);
  });

  test("alias uniqueness counts INTENDs staged in the same transaction", async () => {
    const open = (thread: string, alias: string) =>
      d.state.ingest.submit([prepareRecord({ act: "INTEND", actor: OP, thread, body: { task: true, goal: thread, alias } })], { caller, route });
    const settled = await Promise.allSettled([open("th_alias_a", "SAME-1"), open("th_alias_b", "same-1"), open("th_alias_a", "OTHER-1")]);
    expect(settled.map(outcome)).toEqual(["ok", "ALIAS_TAKEN", "TASK_EXISTS"]);
    expect(tasks().get("SAME-1")!.thread).toBe("th_alias_a");
  });
});

describe("task folds", () => {
  test("each task filter selects the same records as SQL (rebuild) and as a predicate (commit)", async () => {
    const from = d.state.store.counts.records;
    const recs = [
      { act: "INTEND", thread: "th_f_1", body: { task: true, goal: "g" } },
      { act: "INTEND", thread: "th_f_2", body: { task: "true", goal: "g" } },
      { act: "INTEND", thread: "th_f_3", body: { goal: "g", text: '"task"' } },
      { act: "DO", thread: "th_f_1", body: { task_event: "start" } },
      { act: "KNOW", thread: "th_f_4", body: { nested: { task_event: "x" } } },
      { act: "LEARN", thread: "th_f_5", body: { task_event: null } },
    ];
    for (const r of recs) expect((await d.request("POST", "/v1/records", { actor: OP, ...r }, { socket: true })).status).toBe(201);
    const stored = d.state.store.list({ limit: 100, after: from }).data;
    expect(stored.length).toBe(recs.length);
    const folds = d.state.engine.folds.filter((f) => f.name === "tasks" || f.name === "task_events");
    expect(folds.map((f) => f.name)).toEqual(["tasks", "task_events"]);
    for (const fold of folds) {
      const bySql = [...d.state.store.scanMatching([fold.consumes])].filter((r) => r.sequence > from).map((r) => r.id);
      expect(bySql).toEqual(stored.filter((r) => matchesFilter(r, fold.consumes)).map((r) => r.id));
    }
    // Only the INTEND with task === true opened a task, and only the DO moved it.
    expect(tasks().get("th_f_1")!.status).toBe("active");
    expect(tasks().get("th_f_2")).toBeUndefined();
    expect(tasks().get("th_f_3")).toBeUndefined();
  });
});

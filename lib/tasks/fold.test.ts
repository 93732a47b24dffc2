import { describe, expect, test } from "bun:test";
import type { Act, JsonObject, StoredRecord } from "../records/types";
import { TaskTable } from "./fold";
import { allowedVerbs, nextStatus, STATUS_VERBS, TASK_STATUSES } from "./lifecycle";

const ALICE = "did:sync:user:alice";
const BOB = "did:sync:user:bob";
let seq = 0;
function rec(thread: string, act: Act, body: JsonObject, actor = ALICE): StoredRecord {
  seq++;
  return { id: `r${seq}`, sequence: seq, created_at: 1_700_000_000 + seq, parents: [], thread, actor, act, body, clock: seq, data_type: "VOID", judged_by: null };
}
/** Checks then applies, as the write path does; returns the refusal code or "ok". */
function write(t: TaskTable, r: StoredRecord): string {
  const refusal = t.check(r);
  if (refusal) return refusal.code;
  t.apply(r);
  return "ok";
}
const ev = (thread: string, verb: string, extra: JsonObject = {}, actor = ALICE) =>
  rec(thread, verb === "approve" || verb === "reject" ? "KNOW" : "DO", { task_event: verb, ...extra }, actor);

describe("task lifecycle", () => {
  test("every status allows the note verbs and its own status verbs only", () => {
    for (const s of TASK_STATUSES) {
      const allowed = allowedVerbs(s);
      expect(allowed).toContain("comment");
      for (const v of STATUS_VERBS) expect(allowed.includes(v)).toBe(nextStatus(s, v) !== null);
    }
  });
  test("the happy path: inbox → active → review → approved, and reopen", () => {
    expect(nextStatus("inbox", "start")).toBe("active");
    expect(nextStatus("active", "done")).toBe("review");
    expect(nextStatus("review", "approve")).toBe("approved");
    expect(nextStatus("approved", "reopen")).toBe("active");
    expect(nextStatus("inbox", "done")).toBeNull();
    expect(nextStatus("cancelled", "start")).toBeNull();
  });
});

describe("task fold", () => {
  test("mints aliases in store order and refuses a taken alias", () => {
    const t = new TaskTable();
    expect(write(t, rec("th_a", "INTEND", { task: true, goal: "one" }))).toBe("ok");
    expect(write(t, rec("th_b", "INTEND", { task: true, goal: "two", alias: "TSK-0002" }))).toBe("ok");
    expect(write(t, rec("th_c", "INTEND", { task: true, goal: "three" }))).toBe("ok");
    expect(t.list().map((x) => x.alias)).toEqual(["TSK-0001", "TSK-0002", "TSK-0003"]);
    expect(write(t, rec("th_d", "INTEND", { task: true, goal: "dup", alias: "tsk-0001" }))).toBe("ALIAS_TAKEN");
    expect(write(t, rec("th_a", "INTEND", { task: true, goal: "again" }))).toBe("TASK_EXISTS");
    expect(write(t, rec("th_e", "INTEND", { task: true, goal: "x", priority: "urgent" }))).toBe("INVALID_PRIORITY");
    expect(write(t, rec("th_e", "INTEND", { task: true, goal: "" }))).toBe("INVALID_TASK");
    expect(t.size).toBe(3);
  });

  test("transitions, reasons, and the evaluation gate", () => {
    const t = new TaskTable();
    write(t, rec("th_t", "INTEND", { task: true, goal: "g", priority: "high" }));
    expect(write(t, ev("th_t", "done"))).toBe("INVALID_TRANSITION");
    expect(t.check(ev("th_t", "done"))!.message).toContain("is inbox");
    expect(write(t, ev("th_t", "block"))).toBe("REASON_REQUIRED");
    expect(write(t, ev("th_t", "start"))).toBe("ok");
    expect(write(t, ev("th_t", "done", { summary: "did it", commit: "abc", repo: "/r" }))).toBe("ok");
    expect(t.get("TSK-0001")!.status).toBe("review");
    expect(write(t, ev("th_t", "approve", { verdict: "accept" }))).toBe("SELF_APPROVAL");
    expect(write(t, ev("th_t", "reject", { verdict: "reject" }, BOB))).toBe("REASON_REQUIRED");
    expect(write(t, ev("th_t", "approve", { verdict: "accept" }, BOB))).toBe("ok");
    const task = t.get("tsk-0001")!;
    expect(task.status).toBe("approved");
    expect(task.commit).toBe("abc");
    expect(task.history.map((h) => h.to)).toEqual(["inbox", "active", "review", "approved"]);
    expect(t.list().length).toBe(0);
    expect(t.list(true).length).toBe(1);
    expect(write(t, ev("th_none", "start"))).toBe("TASK_NOT_FOUND");
    expect(write(t, rec("th_t", "DO", { task_event: "approve" }))).toBe("INVALID_TASK_EVENT");
  });

  test("edit changes fields and a replay of the same records gives the same table", () => {
    const records = [
      rec("th_x", "INTEND", { task: true, goal: "old" }),
      ev("th_x", "edit", { set: { goal: "new", priority: "low", labels: ["a"] } }),
      ev("th_x", "handoff", { to: BOB }),
      ev("th_x", "cancel", { reason: "dup" }),
    ];
    const a = new TaskTable();
    for (const r of records) expect(write(a, r)).toBe("ok");
    const b = new TaskTable();
    for (const r of records) b.apply(r);
    expect(b.list(true)).toEqual(a.list(true));
    expect(a.get("TSK-0001")).toMatchObject({ goal: "new", priority: "low", labels: ["a"], assignee: BOB, status: "cancelled" });
  });

  test("staged records count in checks until settled, and never in reads", () => {
    const t = new TaskTable();
    const open = rec("th_s", "INTEND", { task: true, goal: "g" });
    write(t, open);
    const start = ev("th_s", "start");
    expect(t.check(start)).toBeNull();
    expect(t.stage(start)).toBe(true);
    expect(t.check(ev("th_s", "start"))!.code).toBe("INVALID_TRANSITION");
    expect(t.check(ev("th_s", "done"))).toBeNull();
    expect(t.get("TSK-0001")!.status).toBe("inbox");
    t.unstage([start]);
    expect(t.check(ev("th_s", "start"))).toBeNull();
    t.stage(start);
    t.settle(); // the transaction failed: nothing of it was written
    expect(t.check(ev("th_s", "done"))!.code).toBe("INVALID_TRANSITION");
  });
});

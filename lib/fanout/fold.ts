// Fan-outs as a fold of their parent threads (README "Fan-out"), so a coordinator restart resumes them:
// the parent INTEND (body.subtasks) opens one; DO fanout_spawned (an attempt), DO fanout_child_done
// (a report naming its attempt), LEARN fanout_retry_subtask, LEARN fanout_cancel and KNOW
// fanout_join_complete (all naming parent_record_id) move it.
//
// Attempts: each send of a child is an attempt (1, 2, ...) with its own child INTEND on its worker.
// A retry supersedes the current attempt; a report of a superseded attempt is kept on that attempt
// but never settles the child, so a late report after a partition cannot close a join twice.
import type { Fold } from "../engine/folds";
import { ENGINE_ACTOR } from "../instance";
import type { StoredRecord } from "../records/types";
import { childThread, parentProblem, type Subtask } from "./spec";

export const SPAWNED = "fanout_spawned";
export const CHILD_DONE = "fanout_child_done";
export const RETRY = "fanout_retry_subtask";
export const CANCEL = "fanout_cancel";
export const JOIN_COMPLETE = "fanout_join_complete";
/** What a report's verdict may be: the adapter's outcome, or why it never ran. */
export const VERDICTS = ["accept", "reject", "failed", "timeout", "cancelled", "unrouted"] as const;

export interface ChildResult {
  index: number;
  thread: string;
  worker: string;
  attempt: number;
  verdict: string;
  cost_usd: number;
  wall_time_secs: number;
  summary: string;
  /** Why it did not run or failed (unrouted, cancelled, failed), and what to do about it. */
  reason: string | null;
  fix: string | null;
}

export interface Attempt {
  /** 1, 2, ... in the order they were sent. */
  n: number;
  /** The child INTEND this attempt sent (its record id on the worker). */
  intend: string;
  worker: string;
  name: string;
  /** When its fanout_spawned was written (unix secs): the child's timeout runs from here. */
  at: number;
  /** Its report, when one came (kept even when the attempt was superseded). */
  result: ChildResult | null;
  /** A retry or a cancel replaced it: its report never settles the child. */
  superseded: boolean;
  /** The coordinator its child INTEND names (the one that claimed it; absent in records of earlier versions). */
  coordinatorUrl: string | null;
}

export interface Child extends Subtask {
  index: number;
  thread: string;
  attempts: Attempt[];
  /** The current attempt's worker, and when it was sent; null until spawned or after a retry. */
  spawned: { worker: string; name: string; at: number; attempt: number } | null;
  /** What settles the child: the current attempt's report. */
  result: ChildResult | null;
  hint: string | null;
  retries: number;
}

export interface Fanout {
  parent: StoredRecord;
  join: string;
  namespace: string;
  children: Child[];
  /** `spl task fan-out cancel`, or the engine's own (the emergency stop): the join closes cancelled. */
  cancel: { by: string; reason: string; at: number } | null;
  complete: { verdict: string; at: number } | null;
}

export type FanoutState = "none" | "spawning" | "in_progress" | "ready_to_join" | "done";

const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const str = (v: unknown) => (typeof v === "string" ? v : "");

/** The attempt whose report settles the child, if one is out. */
export const currentAttempt = (c: Child): Attempt | null => {
  const last = c.attempts[c.attempts.length - 1];
  return last && !last.superseded ? last : null;
};

/** The attempt a report names (`attempt: n`; a report without one, from an older worker, names the current). */
export const attemptOf = (c: Child, n: unknown): Attempt | null => (n === undefined ? currentAttempt(c) : Number.isInteger(n) ? (c.attempts[(n as number) - 1] ?? null) : null);

export class FanoutTable {
  private readonly byRecord = new Map<string, Fanout>();
  private readonly byThread = new Map<string, Fanout>();
  /** The fan-outs not joined yet (the service's passes walk these, not every fan-out ever held). */
  private readonly open = new Map<string, Fanout>();
  /** Counts the records apply() took: what is derived from the table is good while it stays. */
  version = 0;

  /** A fan-out by its parent record id or parent thread. */
  get(ref: string): Fanout | undefined {
    return this.byRecord.get(ref) ?? this.byThread.get(ref);
  }

  /** A fan-out by its parent record id only (what records name it by). */
  byParent(record: string): Fanout | undefined {
    return this.byRecord.get(record);
  }

  pending(): Fanout[] {
    return [...this.open.values()];
  }

  /** Every fan-out, joined or not (a start re-sends the cancels a stop cut short). */
  all(): IterableIterator<Fanout> {
    return this.byRecord.values();
  }

  status(thread: string): FanoutState {
    const f = this.byThread.get(thread);
    if (!f) return "none";
    if (f.complete) return "done";
    if (f.children.every((c) => c.result)) return "ready_to_join";
    return f.children.some((c) => !c.spawned && !c.result) ? "spawning" : "in_progress";
  }

  /** [parent thread, state] of every fan-out (fanout_status() in an ad-hoc evaluation). */
  statuses(): Array<[string, FanoutState]> {
    return [...this.byThread.keys()].map((t) => [t, this.status(t)]);
  }

  apply(rec: StoredRecord): boolean {
    const applied = this.take(rec);
    if (applied) this.version++;
    return applied;
  }

  /** Every change to the table happens here, and only when it answers true. */
  private take(rec: StoredRecord): boolean {
    const b = rec.body;
    if (rec.act === "INTEND" && b.subtasks !== undefined) {
      if (this.byRecord.has(rec.id) || parentProblem(b) !== null) return false;
      const f: Fanout = {
        parent: rec,
        join: str(b.join) || "all",
        namespace: str(b.namespace) || "default",
        children: (b.subtasks as unknown as Subtask[]).map((s, index) => ({
          goal: s.goal,
          target: s.target,
          budget_usd: s.budget_usd ?? null,
          timeout_secs: s.timeout_secs,
          depends_on: s.depends_on,
          index,
          thread: childThread(rec.id, index, s.goal),
          attempts: [],
          spawned: null,
          result: null,
          hint: null,
          retries: 0,
        })),
        cancel: null,
        complete: null,
      };
      this.byRecord.set(rec.id, f);
      this.byThread.set(rec.thread, f);
      this.open.set(rec.id, f);
      return true;
    }
    const f = this.byRecord.get(str(b.parent_record_id));
    if (!f || f.complete) return false;
    // Only the engine spawns and joins; reports come from the workers, retries and cancels from people.
    const byEngine = rec.actor === ENGINE_ACTOR;
    if (rec.act === "KNOW" && b.topic === JOIN_COMPLETE && byEngine) {
      f.complete = { verdict: str(b.verdict), at: rec.created_at };
      this.open.delete(f.parent.id);
      return true;
    }
    if (rec.act === "LEARN" && b.topic === CANCEL) {
      f.cancel ??= { by: rec.actor, reason: str(b.reason) || "cancelled", at: rec.created_at };
      return true;
    }
    const child = f.children[num(b.index)];
    if (!child || !Number.isInteger(b.index)) return false;
    if (rec.act === "DO" && b.topic === SPAWNED && byEngine) return spawned(child, rec);
    if (rec.act === "DO" && b.topic === CHILD_DONE) return reported(child, rec);
    if (rec.act === "LEARN" && b.topic === RETRY) {
      const current = currentAttempt(child);
      if (current) current.superseded = true;
      child.spawned = null;
      child.result = null;
      child.hint = str(b.hint) || null;
      child.retries++;
      return true;
    }
    return false;
  }
}

function spawned(child: Child, rec: StoredRecord): boolean {
  const b = rec.body;
  const n = b.attempt === undefined ? child.attempts.length + 1 : num(b.attempt); // older coordinators wrote no attempt
  if (n !== child.attempts.length + 1) return false;
  const previous = currentAttempt(child);
  if (previous) previous.superseded = true;
  child.attempts.push({ n, intend: str(b.intend), worker: str(b.worker), name: str(b.worker_name), at: rec.created_at, result: null, superseded: false, coordinatorUrl: str(b.coordinator_url) || null });
  child.spawned = { worker: str(b.worker), name: str(b.worker_name), at: rec.created_at, attempt: n };
  child.result = null;
  return true;
}

function reported(child: Child, rec: StoredRecord): boolean {
  const b = rec.body;
  const attempt = attemptOf(child, b.attempt);
  // The first report of an attempt counts, and only from the worker it was sent to.
  if (!attempt || attempt.result || str(b.worker) !== attempt.worker) return false;
  attempt.result = {
    index: child.index,
    thread: child.thread,
    worker: attempt.worker,
    attempt: attempt.n,
    verdict: str(b.verdict) || "failed",
    cost_usd: num(b.cost_usd),
    wall_time_secs: num(b.wall_time_secs),
    summary: str(b.summary),
    reason: str(b.reason) || null,
    fix: str(b.fix) || null,
  };
  if (!attempt.superseded) child.result = attempt.result;
  return true;
}

/** Two folds over one table: parents are INTENDs with body.subtasks, events name their parent. */
export const fanoutFolds = (table: FanoutTable): Fold[] => [
  { name: "fanout_parents", consumes: { act: "INTEND", bodyField: "subtasks" }, apply: (rec) => table.apply(rec) },
  { name: "fanout_events", consumes: { bodyField: "parent_record_id" }, apply: (rec) => table.apply(rec) },
];

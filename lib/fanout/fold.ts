// Fan-outs as a fold of their parent threads (README "Fan-out"), so a coordinator restart resumes them:
// the parent INTEND (body.subtasks) opens one; DO fanout_spawned, DO fanout_child_done,
// LEARN fanout_retry_subtask and KNOW fanout_join_complete (all naming parent_record_id) move it.
import type { Fold } from "../engine/folds";
import { ENGINE_ACTOR } from "../instance";
import type { StoredRecord } from "../records/types";
import { childThread, type Subtask } from "./spec";

export const SPAWNED = "fanout_spawned";
export const CHILD_DONE = "fanout_child_done";
export const RETRY = "fanout_retry_subtask";
export const JOIN_COMPLETE = "fanout_join_complete";

export interface ChildResult {
  index: number;
  thread: string;
  worker: string;
  verdict: string;
  cost_usd: number;
  wall_time_secs: number;
  summary: string;
}

export interface Child extends Subtask {
  index: number;
  thread: string;
  /** The worker it was last sent to, and when (unix secs); null until spawned or after a retry. */
  spawned: { worker: string; name: string; at: number } | null;
  result: ChildResult | null;
  hint: string | null;
  retries: number;
}

export interface Fanout {
  parent: StoredRecord;
  join: string;
  namespace: string;
  children: Child[];
  complete: { verdict: string; at: number } | null;
}

export type FanoutState = "none" | "spawning" | "in_progress" | "ready_to_join" | "done";

const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
const str = (v: unknown) => (typeof v === "string" ? v : "");

export class FanoutTable {
  private readonly byRecord = new Map<string, Fanout>();
  private readonly byThread = new Map<string, Fanout>();

  get(ref: string): Fanout | undefined {
    return this.byRecord.get(ref) ?? this.byThread.get(ref);
  }

  pending(): Fanout[] {
    return [...this.byRecord.values()].filter((f) => !f.complete);
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
    const b = rec.body;
    if (rec.act === "INTEND" && Array.isArray(b.subtasks)) {
      if (this.byRecord.has(rec.id)) return false;
      const f: Fanout = {
        parent: rec,
        join: str(b.join) || "all",
        namespace: str(b.namespace) || "default",
        children: (b.subtasks as unknown as Subtask[]).map((s, index) => ({ ...s, index, thread: childThread(rec.id, index, s.goal), spawned: null, result: null, hint: null, retries: 0 })),
        complete: null,
      };
      this.byRecord.set(rec.id, f);
      this.byThread.set(rec.thread, f);
      return true;
    }
    const f = this.byRecord.get(str(b.parent_record_id));
    if (!f) return false;
    // Only the engine spawns and joins; reports come from the workers (relayed by the fleet token).
    const byEngine = rec.actor === ENGINE_ACTOR;
    if (rec.act === "KNOW" && b.topic === JOIN_COMPLETE && byEngine) {
      f.complete ??= { verdict: str(b.verdict), at: rec.created_at };
      return true;
    }
    const child = f.children[num(b.index)];
    if (!child || f.complete) return false;
    if (rec.act === "DO" && b.topic === SPAWNED && byEngine) {
      child.spawned = { worker: str(b.worker), name: str(b.worker_name), at: rec.created_at };
    } else if (rec.act === "DO" && b.topic === CHILD_DONE) {
      if (child.result) return false; // the first report of an attempt counts
      child.result = { index: child.index, thread: child.thread, worker: str(b.worker), verdict: str(b.verdict) || "failed", cost_usd: num(b.cost_usd), wall_time_secs: num(b.wall_time_secs), summary: str(b.summary) };
    } else if (rec.act === "LEARN" && b.topic === RETRY) {
      child.spawned = null;
      child.result = null;
      child.hint = str(b.hint) || null;
      child.retries++;
    } else return false;
    return true;
  }
}

/** Two folds over one table: parents are INTENDs with body.subtasks, events name their parent. */
export const fanoutFolds = (table: FanoutTable): Fold[] => [
  { name: "fanout_parents", consumes: { act: "INTEND", bodyField: "subtasks" }, apply: (rec) => table.apply(rec) },
  { name: "fanout_events", consumes: { bodyField: "parent_record_id" }, apply: (rec) => table.apply(rec) },
];

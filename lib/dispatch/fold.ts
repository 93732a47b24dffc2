// Dispatches as a fold: a DO {dispatch_handled} opens one, the completion KNOW on the
// `<thread>/dispatch` sub-thread closes it. `spl dispatch list` and exactly-once dispatch across
// restarts both read this table, so neither needs state outside the log.
import type { Envelope, StoredRecord } from "../records/types";

export const DISPATCH_COMPLETE_TOPIC = "syncropel.dispatch.complete.v1";
export const dispatchThread = (thread: string) => `${thread}/dispatch`;

export interface Dispatch {
  intend: string;
  thread: string;
  target: string;
  rule: string;
  domain: string;
  started_at: number;
  finished_at: number | null;
  success: boolean | null;
  latency_ms: number | null;
  completion_codepath: string | null;
  failure_reason: string | null;
}

/** Records this fold reads, as SQL (rebuild) and as a predicate (commit). */
export const DISPATCH_RECORDS_SQL = `((act = 'DO' AND instr(body, '"dispatch_handled":true') > 0) OR (act = 'KNOW' AND instr(body, '"${DISPATCH_COMPLETE_TOPIC}"') > 0))`;

export function isDispatchRecord(rec: Envelope): boolean {
  return (rec.act === "DO" && rec.body.dispatch_handled === true) || (rec.act === "KNOW" && rec.body.topic === DISPATCH_COMPLETE_TOPIC);
}

const s = (v: unknown, dflt = "") => (typeof v === "string" ? v : dflt);

export class DispatchTable {
  private readonly byIntend = new Map<string, Dispatch>();

  handled(intend: string): boolean {
    return this.byIntend.has(intend);
  }

  apply(rec: StoredRecord): void {
    const b = rec.body;
    const intend = s(b.intend);
    if (!intend) return;
    if (rec.act === "DO") {
      if (this.byIntend.has(intend)) return;
      this.byIntend.set(intend, {
        intend,
        thread: rec.thread,
        target: s(b.target),
        rule: s(b.rule),
        domain: s(b.domain, "general"),
        started_at: rec.created_at,
        finished_at: null,
        success: null,
        latency_ms: null,
        completion_codepath: null,
        failure_reason: null,
      });
      return;
    }
    const d = this.byIntend.get(intend);
    if (!d || d.finished_at !== null) return;
    d.finished_at = rec.created_at;
    d.success = b.success === true;
    d.latency_ms = typeof b.latency_ms === "number" ? b.latency_ms : null;
    d.completion_codepath = s(b.completion_codepath) || null;
    d.failure_reason = s(b.failure_reason) || null;
  }

  /** Handled but not finished: running now, or interrupted by a stop. */
  unfinished(): Dispatch[] {
    return [...this.byIntend.values()].filter((d) => d.finished_at === null);
  }

  /** Most recent first. */
  list(activeOnly = false): Dispatch[] {
    const all = [...this.byIntend.values()].reverse();
    return activeOnly ? all.filter((d) => d.finished_at === null) : all;
  }
}

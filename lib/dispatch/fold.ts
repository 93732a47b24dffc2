// Dispatches as a fold: the engine's DO {dispatch_handled} opens one, its completion KNOW on the
// `<thread>/dispatch` sub-thread closes it. `spl dispatch list` and exactly-once dispatch across
// restarts both read this table, so neither needs state outside the log.
import { ENGINE_ACTOR } from "../instance";
import type { RecordFilter } from "../records/filter";
import type { StoredRecord } from "../records/types";

export const DISPATCH_COMPLETE_TOPIC = "syncropel.dispatch.complete.v1";
export const dispatchThread = (thread: string) => `${thread}/dispatch`;

/** Both records name the INTEND in body.intend; apply() keeps only the engine's own. */
export const DISPATCH_RECORDS: RecordFilter = { bodyField: "intend" };

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

const str = (v: unknown, dflt = "") => (typeof v === "string" ? v : dflt);

export class DispatchTable {
  private readonly byIntend = new Map<string, Dispatch>();
  /** The same dispatches in the order they were opened (list() walks it from the end). */
  private readonly opened: Dispatch[] = [];
  private running = 0;

  handled(intend: string): boolean {
    return this.byIntend.has(intend);
  }

  get size(): number {
    return this.byIntend.size;
  }

  /** Handled and not yet closed: running, waiting for a slot, or interrupted by a stop. */
  get active(): number {
    return this.running;
  }

  /** Folds one record; only the engine's dispatch records count (anyone may write a body.intend). */
  apply(rec: StoredRecord): boolean {
    if (rec.actor !== ENGINE_ACTOR) return false;
    const b = rec.body;
    const intend = str(b.intend);
    if (rec.act === "DO" && b.dispatch_handled === true) {
      if (this.byIntend.has(intend)) return false;
      const d: Dispatch = {
        intend,
        thread: rec.thread,
        target: str(b.target),
        rule: str(b.rule),
        domain: str(b.domain, "general"),
        started_at: rec.created_at,
        finished_at: null,
        success: null,
        latency_ms: null,
        completion_codepath: null,
        failure_reason: null,
      };
      this.byIntend.set(intend, d);
      this.opened.push(d);
      this.running++;
      return true;
    }
    if (rec.act !== "KNOW" || b.topic !== DISPATCH_COMPLETE_TOPIC) return false;
    const d = this.byIntend.get(intend);
    if (!d || d.finished_at !== null) return false;
    d.finished_at = rec.created_at;
    d.success = b.success === true;
    d.latency_ms = typeof b.latency_ms === "number" ? b.latency_ms : null;
    d.completion_codepath = str(b.completion_codepath) || null;
    d.failure_reason = str(b.failure_reason) || null;
    this.running--;
    return true;
  }

  /** Handled but not closed, oldest first. */
  unfinished(): Dispatch[] {
    return this.opened.filter((d) => d.finished_at === null);
  }

  /** Most recent first, at most `limit`. */
  list(activeOnly = false, limit = Infinity): Dispatch[] {
    const out: Dispatch[] = [];
    for (let i = this.opened.length - 1; i >= 0 && out.length < limit; i--) {
      const d = this.opened[i]!;
      if (!activeOnly || d.finished_at === null) out.push(d);
    }
    return out;
  }
}

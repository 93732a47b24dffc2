// Group commit: records submitted during one turn of the event loop are written in a single
// transaction, and nobody is answered before that transaction has committed. With one writer
// this keeps per-request cost near the batched insert rate without weakening durability.
import type { Logger } from "../log";
import type { Envelope, StoredRecord } from "../records/types";
import { type PreparedRecord, RecordError } from "../records/envelope";
import type { InsertResult, RecordStore } from "./records";

export type ItemResult = InsertResult | { status: "error"; error: RecordError };

/** Runs after each commit with the records it created, in store order (engine folds, services). */
export type CommitHook = (created: StoredRecord[]) => void;

/**
 * The phases write checks run in, in this order: who may write where (reserved threads, actor
 * binding), what the fleet's control state refuses (freezes), the operator's permission rules,
 * and the state machines records move (tasks).
 */
export const WRITE_PHASES = ["scope", "control", "rules", "state"] as const;
export type WritePhase = (typeof WRITE_PHASES)[number];

/**
 * One check of a record written on someone's behalf (`As`: who, and through which route), run
 * inside the write transaction with the clock the record will be stored at, before its insert.
 * Throwing refuses the whole submission (nothing of it is written; the submitter gets the error);
 * other submissions in the same transaction are unaffected.
 */
export interface WriteCheck<As> {
  readonly name: string;
  readonly phase: WritePhase;
  check(rec: Envelope, as: As): void;
  /** Counts an accepted record in later checks of the same transaction. */
  stage?(rec: Envelope): void;
  /** Forgets the staged records of a refused submission (the others in the transaction stay). */
  unstage?(recs: readonly Envelope[]): void;
  /** The transaction ended, committed or not: forget everything staged. */
  settle?(): void;
}

/** The checks in phase order (list order within a phase). */
export function orderChecks<As>(checks: readonly WriteCheck<As>[]): WriteCheck<As>[] {
  return WRITE_PHASES.flatMap((phase) => checks.filter((c) => c.phase === phase));
}

/** An authorizer's refusal, kept apart from store errors while unwinding one submission. */
class Refused {
  constructor(readonly error: unknown) {}
}

interface Pending<As> {
  items: PreparedRecord[];
  as?: As;
  resolve(results: ItemResult[]): void;
  reject(err: Error): void;
}

export class IngestQueue<As = unknown> {
  private queue: Pending<As>[] = [];
  private scheduled = false;
  private checks: WriteCheck<As>[] = [];

  constructor(
    private readonly store: RecordStore,
    private readonly onCommitted: CommitHook,
    private readonly log: Logger,
    /** A transaction failed (disk full, I/O error); every submitter in it is rejected. */
    private readonly onFailed: (err: Error) => void = () => {},
  ) {}

  /** The write checks every submission made on someone's behalf passes (the daemon's and its capabilities'). */
  useChecks(checks: readonly WriteCheck<As>[]): void {
    this.checks = orderChecks(checks);
  }

  /**
   * Writes the records (one submission = same transaction) and answers per record. With `as`,
   * every write check runs for each record first; without it they are the daemon's own writes.
   */
  submit(items: PreparedRecord[], as?: As): Promise<ItemResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ items, as, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  get idle(): boolean {
    return this.queue.length === 0;
  }

  flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (!batch.length) return;
    const now = Math.floor(Date.now() / 1000);
    const results: (ItemResult[] | Refused)[] = [];
    const created: StoredRecord[] = [];
    const { tx } = this.store;
    try {
      tx.begin();
      for (const p of batch) {
        const out: ItemResult[] = [];
        const mine: StoredRecord[] = [];
        const staged: Envelope[] = [];
        const check = p.as === undefined ? undefined : this.checker(p.as, staged);
        // A refusal comes before its record's insert, so only a submission of several can need undoing.
        const undoable = check && p.items.length > 1;
        if (undoable) tx.savepoint();
        try {
          for (const item of p.items) {
            try {
              const r = this.store.insert(item, now, check);
              if (r.status === "created") mine.push(r.record);
              out.push(r);
            } catch (err) {
              if (!(err instanceof RecordError)) throw err;
              out.push({ status: "error", error: err });
            }
          }
        } catch (err) {
          if (!(err instanceof Refused)) throw err;
          for (const c of this.checks) c.unstage?.(staged);
          if (undoable) {
            tx.rollbackToSavepoint();
            tx.releaseSavepoint();
          }
          if (mine.length) this.store.resync();
          results.push(err);
          continue;
        }
        if (undoable) tx.releaseSavepoint();
        created.push(...mine);
        results.push(out);
      }
      tx.commit();
      this.settle();
    } catch (err) {
      try {
        tx.rollback();
      } catch {}
      this.settle();
      this.store.resync();
      this.onFailed(err as Error);
      for (const p of batch) p.reject(err as Error);
      return;
    }
    // Committed: answer everyone now. Their continuations run after this turn, so the hook has
    // applied the records by then (a config change holds for the writer's next request).
    batch.forEach((p, i) => {
      const r = results[i]!;
      if (r instanceof Refused) p.reject(r.error as Error);
      else p.resolve(r);
    });
    try {
      this.onCommitted(created);
    } catch (err) {
      this.log.error("commit hook failed; the records are stored", { records: created.length, error: (err as Error)?.message ?? String(err) });
    }
  }

  /** Runs every check on one record without writing or staging it (bench/profile.ts times this stage). */
  check(env: Envelope, as: As): void {
    for (const c of this.checks) c.check(env, as);
  }

  /** Every check for one record, then staging it; a refusal is wrapped so it unwinds only its submission. */
  private checker(as: As, staged: Envelope[]): (env: Envelope) => void {
    return (env) => {
      try {
        for (const c of this.checks) c.check(env, as);
      } catch (err) {
        throw new Refused(err);
      }
      for (const c of this.checks) c.stage?.(env);
      staged.push(env);
    };
  }

  private settle(): void {
    for (const c of this.checks) c.settle?.();
  }
}

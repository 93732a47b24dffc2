// Group commit: records submitted during one turn of the event loop are written in a single
// transaction, and nobody is answered before that transaction has committed. With one writer
// this keeps per-request cost near the batched insert rate without weakening durability.
import type { Logger } from "../log";
import type { Envelope, StoredRecord } from "../records/types";
import { type PreparedRecord, RecordError } from "../records/envelope";
import type { InsertResult, RecordStore } from "../store/records";
import { writeFailure } from "./write-failure";

export type ItemResult = InsertResult | { status: "error"; error: RecordError };

/** Runs after each commit with the records it created, in store order (engine folds, services). */
export type CommitHook = (created: StoredRecord[]) => void;

/**
 * Checks one record, with the clock it will be stored at, inside the write transaction and before
 * its insert. Throwing refuses the whole submission (nothing of it is written); the submitter gets
 * the thrown error. Other submissions in the same transaction are unaffected.
 */
export type Authorize = (env: Envelope) => void;

/** An authorizer's refusal, kept apart from store errors while unwinding one submission. */
class Refused {
  constructor(readonly error: unknown) {}
}

interface Pending {
  items: PreparedRecord[];
  authorize?: Authorize;
  resolve(results: ItemResult[]): void;
  reject(err: Error): void;
}

function wrapRefusal(authorize: Authorize): Authorize {
  return (env) => {
    try {
      authorize(env);
    } catch (err) {
      throw new Refused(err);
    }
  };
}

export class IngestQueue {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly store: RecordStore,
    private readonly onCommitted: CommitHook,
    private readonly log: Logger,
    /** A transaction failed (disk full, I/O error); every submitter in it is rejected. */
    private readonly onFailed: (err: Error) => void = () => {},
  ) {}

  /** Writes the records (one submission = same transaction) and answers per record. */
  submit(items: PreparedRecord[], authorize?: Authorize): Promise<ItemResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ items, authorize, resolve, reject });
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
        const check = p.authorize && wrapRefusal(p.authorize);
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
    } catch (err) {
      try {
        tx.rollback();
      } catch {}
      this.store.resync();
      this.onFailed(err as Error);
      // Said as what it is (507 STORAGE_FULL on a full disk), never a bare 500.
      const answer = writeFailure(err, this.store.db.filename);
      for (const p of batch) p.reject(answer);
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
}

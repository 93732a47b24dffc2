// Group commit: records submitted during one turn of the event loop are written in a single
// transaction, and nobody is answered before that transaction has committed. With one writer
// this keeps per-request cost near the batched insert rate without weakening durability.
import type { Database } from "bun:sqlite";
import type { Envelope, StoredRecord } from "../records/types";
import { type PreparedRecord, RecordError } from "../records/envelope";
import type { InsertResult, RecordStore } from "../store/records";

export type ItemResult = InsertResult | { status: "error"; error: RecordError };

const IDLE_CHECKPOINT_MS = 1000;

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
  private begin;
  private commit;
  private rollback;
  private savepoint;
  private rollbackToSavepoint;
  private releaseSavepoint;
  /** Called after each commit with the records it created, in store order. */
  onCommitted: (created: StoredRecord[]) => void = () => {};
  private idleCheckpoint: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private db: Database,
    private store: RecordStore,
  ) {
    this.begin = db.prepare("BEGIN IMMEDIATE");
    this.commit = db.prepare("COMMIT");
    this.rollback = db.prepare("ROLLBACK");
    this.savepoint = db.prepare("SAVEPOINT submission");
    this.rollbackToSavepoint = db.prepare("ROLLBACK TO submission");
    this.releaseSavepoint = db.prepare("RELEASE submission");
  }

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
    try {
      this.begin.run();
      for (const p of batch) {
        const out: ItemResult[] = [];
        const mine: StoredRecord[] = [];
        const check = p.authorize && wrapRefusal(p.authorize);
        // A refusal comes before its record's insert, so only a submission of several can need undoing.
        const undoable = check && p.items.length > 1;
        if (undoable) this.savepoint.run();
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
            this.rollbackToSavepoint.run();
            this.releaseSavepoint.run();
          }
          if (mine.length) this.store.resync();
          results.push(err);
          continue;
        }
        if (undoable) this.releaseSavepoint.run();
        created.push(...mine);
        results.push(out);
      }
      this.commit.run();
    } catch (err) {
      try {
        this.rollback.run();
      } catch {}
      this.store.resync();
      for (const p of batch) p.reject(err as Error);
      return;
    }
    this.onCommitted(created);
    batch.forEach((p, i) => {
      const r = results[i]!;
      if (r instanceof Refused) p.reject(r.error as Error);
      else p.resolve(r);
    });
    this.scheduleIdleCheckpoint();
  }

  /**
   * A second after the last write, copy the WAL into hub.db. Then a plain `cp hub.db` of a quiet
   * running instance (the runbook's pre-upgrade snapshot) holds every acknowledged record.
   */
  private scheduleIdleCheckpoint(): void {
    if (this.idleCheckpoint) clearTimeout(this.idleCheckpoint);
    this.idleCheckpoint = setTimeout(() => {
      this.idleCheckpoint = null;
      try {
        this.db.exec("PRAGMA wal_checkpoint(PASSIVE)");
      } catch {}
    }, IDLE_CHECKPOINT_MS);
    this.idleCheckpoint.unref?.();
  }
}

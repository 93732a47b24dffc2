// Group commit: records submitted during one turn of the event loop are written in a single
// transaction, and nobody is answered before that transaction has committed. With one writer
// this keeps per-request cost near the batched insert rate without weakening durability.
import type { Database } from "bun:sqlite";
import type { Logger } from "../log";
import type { StoredRecord } from "../records/types";
import { type PreparedRecord, RecordError } from "../records/envelope";
import type { InsertResult, RecordStore } from "../store/records";

export type ItemResult = InsertResult | { status: "error"; error: RecordError };

/** Runs after each commit with the records it created, in store order (engine folds, services). */
export type CommitHook = (created: StoredRecord[]) => void;

interface Pending {
  items: PreparedRecord[];
  resolve(results: ItemResult[]): void;
  reject(err: Error): void;
}

export class IngestQueue {
  private queue: Pending[] = [];
  private scheduled = false;
  private begin;
  private commit;
  private rollback;

  constructor(
    db: Database,
    private readonly store: RecordStore,
    private readonly onCommitted: CommitHook,
    private readonly log: Logger,
  ) {
    this.begin = db.prepare("BEGIN IMMEDIATE");
    this.commit = db.prepare("COMMIT");
    this.rollback = db.prepare("ROLLBACK");
  }

  /** Writes the records (one submission = same transaction) and answers per record. */
  submit(items: PreparedRecord[]): Promise<ItemResult[]> {
    return new Promise((resolve, reject) => {
      this.queue.push({ items, resolve, reject });
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
    const results: ItemResult[][] = [];
    const created: StoredRecord[] = [];
    try {
      this.begin.run();
      for (const p of batch) {
        const out: ItemResult[] = [];
        for (const item of p.items) {
          try {
            const r = this.store.insert(item, now);
            if (r.status === "created") created.push(r.record);
            out.push(r);
          } catch (err) {
            if (!(err instanceof RecordError)) throw err;
            out.push({ status: "error", error: err });
          }
        }
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
    // Committed: answer everyone now. Their continuations run after this turn, so the hook has
    // applied the records by then (a config change holds for the writer's next request).
    batch.forEach((p, i) => p.resolve(results[i]!));
    try {
      this.onCommitted(created);
    } catch (err) {
      this.log.error("commit hook failed; the records are stored", { records: created.length, error: (err as Error)?.message ?? String(err) });
    }
  }
}

// Group commit: records submitted during one turn of the event loop are written in a single
// transaction, and nobody is answered before that transaction has committed. With one writer
// this keeps per-request cost near the batched insert rate without weakening durability.
import type { Database } from "bun:sqlite";
import type { StoredRecord } from "../records/types";
import { type PreparedRecord, RecordError } from "../records/envelope";
import type { InsertResult, RecordStore } from "../store/records";

export type ItemResult = InsertResult | { status: "error"; error: RecordError };

const IDLE_CHECKPOINT_MS = 1000;

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
  /** Called after each commit with the records it created, in store order. */
  onCommitted: (created: StoredRecord[]) => void = () => {};
  /** Called when a transaction fails (disk full, I/O error); every submitter is rejected. */
  onFailed: (err: Error) => void = () => {};
  /** The idle checkpoint (the daemon reports its outcome in its storage status). */
  checkpoint: () => void = () => this.db.exec("PRAGMA wal_checkpoint(PASSIVE)");
  private idleCheckpoint: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private db: Database,
    private store: RecordStore,
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
      this.onFailed(err as Error);
      for (const p of batch) p.reject(err as Error);
      return;
    }
    this.onCommitted(created);
    batch.forEach((p, i) => p.resolve(results[i]!));
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
        this.checkpoint();
      } catch {}
    }, IDLE_CHECKPOINT_MS);
    this.idleCheckpoint.unref?.();
  }
}

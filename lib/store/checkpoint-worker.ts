// The WAL checkpointer's thread (checkpointer.ts): its own connection to hub.db. It runs a
// PASSIVE checkpoint after every CHECKPOINT_EVERY commits the daemon counted into the shared
// counter, or once writes pause. PASSIVE copies committed frames into hub.db without waiting for
// (or blocking) the daemon's writer; the fsyncs it needs happen on this thread, not in COMMIT.
import { Database } from "bun:sqlite";

export interface CheckpointRequest {
  path: string;
  /** Int32Array over a SharedArrayBuffer: [0] = commits since the daemon started counting. */
  commits: Int32Array;
}

export type CheckpointReport = { ok: boolean; log: number; checkpointed: number } | { error: string } | { closed: true };

/** Commits between two checkpoints under load (SQLite's own default is every ~1000 pages). */
export const CHECKPOINT_EVERY = 32;
const POLL_MS = 10;
/** After the last commit, how soon hub.db catches up (a quiet instance's hub.db is complete). */
const QUIET_MS = 200;

declare const self: Worker;

let close = () => self.postMessage({ closed: true } satisfies CheckpointReport);

self.onmessage = (event: MessageEvent<CheckpointRequest | "close">) => {
  if (event.data === "close") return close();
  const { path, commits } = event.data;
  let db: Database;
  try {
    db = new Database(path, { create: false });
  } catch (err) {
    self.postMessage({ error: (err as Error).message } satisfies CheckpointReport);
    return;
  }
  const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
  let done = 0;
  let seen = 0;
  let changedAt = performance.now();
  let heldBackAt = -Infinity;
  // Closed from here, between checkpoints: a thread ended mid-checkpoint would keep its locks.
  close = () => {
    clearInterval(timer);
    checkpoint.finalize();
    db.close(true);
    self.postMessage({ closed: true } satisfies CheckpointReport);
  };
  const timer = setInterval(() => {
    const now = performance.now();
    const count = Atomics.load(commits, 0);
    if (count !== seen) (seen = count), (changedAt = now);
    if (count === done || (count - done < CHECKPOINT_EVERY && now - changedAt < QUIET_MS)) return;
    // Held back (a reader's snapshot, a backup): try again in a while, not at every poll.
    if (now - heldBackAt < QUIET_MS) return;
    let report: CheckpointReport;
    try {
      // all(), not get(): the statement runs to its end, so it holds nothing between checkpoints.
      const r = checkpoint.all()[0] as { busy: number; log: number; checkpointed: number };
      report = { ok: r.busy === 0 && r.checkpointed >= r.log, log: r.log, checkpointed: r.checkpointed };
      // A full checkpoint waits for new commits; one a reader held back is retried shortly.
      if (report.ok) done = count;
      else heldBackAt = now;
    } catch (err) {
      report = { error: (err as Error).message };
    }
    self.postMessage(report);
  }, POLL_MS);
};

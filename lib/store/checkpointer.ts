// WAL checkpoints off the commit path. SQLite's automatic checkpoint runs inside the COMMIT that
// crosses 1000 WAL pages, on the daemon's only thread: it copies pages into hub.db and fsyncs,
// and every request waits meanwhile (measured: about half the store's cost per record at 32 per
// transaction). The daemon turns it off and a worker thread with its own connection runs PASSIVE
// checkpoints every few dozen commits instead (the way Litestream manages its WAL). Durability is
// unchanged: a commit is as durable as before; only where hub.db catches up with the WAL moved.
// If the worker cannot run, the automatic checkpoint is turned back on.
//
// The WAL file only starts over when a write transaction begins with every frame copied, which a
// checkpoint on another thread, racing the next commit, almost never achieves under load. So once
// the thread reports a long WAL, the writer itself runs one PASSIVE checkpoint between two
// commits: the thread has copied nearly everything, the rest is small, and the next transaction
// restarts the WAL. journal_size_limit then trims a file a burst made large.
import type { Database } from "bun:sqlite";
import type { CheckpointReport, CheckpointRequest } from "./checkpoint-worker";
import { checkpointPassive } from "./open";
import { workerEntry } from "../worker-entry";

const SQLITE_DEFAULT_AUTOCHECKPOINT = 1000;
/** WAL frames (pages) after which the writer catches up itself so the WAL restarts (~16 MiB). */
const CATCH_UP_FRAMES = 4096;
const WAL_SIZE_LIMIT = 32 * 1024 * 1024;
/** A checkpoint in progress finishes first; one stuck on the disk is not waited for forever. */
const CLOSE_WAIT_MS = 5000;

export class Checkpointer {
  private worker: Worker | null = null;
  private readonly commits = new Int32Array(new SharedArrayBuffer(4));
  private closed: (() => void) | null = null;
  /** Frames in the WAL at the thread's last checkpoint. */
  private walFrames = 0;

  constructor(
    private readonly db: Database,
    private readonly path: string,
    /** Each checkpoint that did something: whether it copied the whole WAL, or why it failed. */
    private readonly report: (r: Exclude<CheckpointReport, { closed: true }>) => void,
  ) {}

  start(): void {
    const worker = new Worker(workerEntry("lib/store/checkpoint-worker.ts"));
    worker.onmessage = (e: MessageEvent<CheckpointReport>) => {
      if ("closed" in e.data) return this.closed?.();
      if ("log" in e.data) this.walFrames = e.data.log;
      this.report(e.data);
    };
    worker.onerror = (e) => {
      this.report({ error: `checkpoint thread failed: ${e.message}` });
      void this.stop();
    };
    worker.postMessage({ path: this.path, commits: this.commits } satisfies CheckpointRequest);
    this.db.exec("PRAGMA wal_autocheckpoint = 0");
    this.db.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT}`);
    this.worker = worker;
  }

  /** One more transaction committed (the thread decides when to checkpoint; see above for the writer). */
  committed(): void {
    Atomics.add(this.commits, 0, 1);
    if (this.walFrames > CATCH_UP_FRAMES) {
      this.walFrames = 0;
      try {
        this.report({ ok: checkpointPassive(this.db), log: 0, checkpointed: 0 });
      } catch (err) {
        this.report({ error: (err as Error).message });
      }
    }
  }

  /** Asks the thread to close its connection between checkpoints, then ends it. */
  async stop(): Promise<void> {
    const worker = this.worker;
    this.worker = null;
    this.db.exec(`PRAGMA wal_autocheckpoint = ${SQLITE_DEFAULT_AUTOCHECKPOINT}`);
    if (!worker) return;
    await Promise.race([new Promise<void>((resolve) => ((this.closed = resolve), worker.postMessage("close"))), Bun.sleep(CLOSE_WAIT_MS)]);
    this.closed = null;
    worker.terminate();
  }
}

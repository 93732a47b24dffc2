// What the daemon knows about its storage, for GET /v1/status and `spl doctor`: the last write
// error, whether the WAL is being copied back into hub.db, and whether log lines reach the log
// file. All fail silently otherwise: SQLite ignores a failed automatic checkpoint (the WAL just
// grows), and when the disk is full the log line about it fails as well.
import type { Database } from "bun:sqlite";
import { statSync } from "node:fs";
import type { Logger, LogWriteStatus } from "../log";
import { checkpointPassive } from "../store/open";

export interface StorageStatus {
  wal_bytes: number;
  /** When a checkpoint last copied the whole WAL into hub.db. */
  last_checkpoint_at: string | null;
  /** false while checkpoints cannot finish; null before the first one. */
  checkpoint_ok: boolean | null;
  last_error: { at: string; during: string; message: string } | null;
  /** Log lines that could not be written (lib/log.ts): a full disk shows here first. */
  log: LogWriteStatus;
}

/** How often a checkpoint that could not finish is retried (and a large WAL is checked). */
const RETRY_MS = 5000;
/** A WAL this large gets a checkpoint attempt even when nobody wrote lately. */
const LARGE_WAL_BYTES = 16 * 1024 * 1024;
/**
 * How long checkpoints may stay unfinished before the log says so: a backup's read snapshot holds
 * them back for its length (seconds), which is normal; a reader that never lets go is not.
 */
const WARN_AFTER_MS = 30_000;

/** A background service: retries unfinished checkpoints while the daemon runs. */
export class StorageHealth {
  readonly name = "storage-health";
  private lastError: StorageStatus["last_error"] = null;
  /** Failed writes and checkpoints since start (spl_storage_errors_total). */
  errors = 0;
  private lastCheckpointAt: string | null = null;
  private checkpointOk: boolean | null = null;
  /** When checkpoints stopped finishing (null while they finish); whether that was logged. */
  private unfinishedSince: number | null = null;
  private warned = false;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    private db: Database,
    private storePath: string,
    private log: Logger,
  ) {}

  /** A write (or checkpoint) failed: remember it for status and log it (stderr if the log file fails too). */
  failed(during: string, err: unknown): void {
    const message = err instanceof Error ? err.message : String(err);
    this.errors++;
    this.lastError = { at: new Date().toISOString(), during, message };
    this.log.error(`storage error during ${during}: ${message}`, { store: this.storePath, during, error: message });
  }

  /** PASSIVE checkpoint: copies what no reader still needs, never waits for anyone. */
  checkpoint(): void {
    let ok: boolean;
    try {
      ok = checkpointPassive(this.db);
    } catch (err) {
      this.checkpointOk = false;
      this.failed("checkpoint", err);
      return;
    }
    this.noteCheckpoint(ok);
  }

  /** A checkpoint ran (here or on the checkpoint thread): whether it copied the whole WAL. */
  noteCheckpoint(ok: boolean): void {
    if (ok) {
      if (this.warned) this.log.info("WAL checkpoints finish again", { wal_bytes: this.walBytes() });
      this.unfinishedSince = null;
      this.warned = false;
      this.lastCheckpointAt = new Date().toISOString();
    } else if ((this.unfinishedSince ??= Date.now()) <= Date.now() - WARN_AFTER_MS && !this.warned) {
      this.warned = true;
      this.log.warn(
        `the WAL is not being checkpointed into ${this.storePath} (${this.walBytes()} bytes): a long-lived reader holds an old snapshot, or hub.db cannot be written`,
        { wal_bytes: this.walBytes(), last_checkpoint_at: this.lastCheckpointAt },
      );
    }
    this.checkpointOk = ok;
  }

  walBytes(): number {
    try {
      return statSync(`${this.storePath}-wal`).size;
    } catch {
      return 0;
    }
  }

  status(): StorageStatus {
    return { wal_bytes: this.walBytes(), last_checkpoint_at: this.lastCheckpointAt, checkpoint_ok: this.checkpointOk, last_error: this.lastError, log: this.log.writeStatus() };
  }

  /** Retries unfinished checkpoints so the status clears (or the warning comes) on its own. */
  start(): void {
    this.timer = setInterval(() => {
      if (this.checkpointOk === false || this.walBytes() > LARGE_WAL_BYTES) this.checkpoint();
    }, RETRY_MS);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

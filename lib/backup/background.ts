// The startup backup off the ready path: the daemon pins a read snapshot of the store as found
// (milliseconds), then carries on with migrations, identity and rebuild while a worker
// (startup-worker.ts) copies, verifies and rotates the snapshot. /v1/status and the banner show
// it "in progress" until it is written (or FAILED). If the snapshot cannot be pinned (another
// process holds a reader, so the WAL cannot be emptied), the backup is taken before serving,
// as it always was: never a copy that might mix two states of the store.
import { checkpointTruncate } from "../store/open";
import { failedInfo, startupBackupNow, startupJob, type BackupInfo, type BackupLog, type StartupBackupContext, type StartupBackupJob } from "./startup";
import { workerEntry } from "../worker-entry";

export const PINNED = 1;
export const NOT_PINNED = 2;
/** How long the main thread waits for the worker to start and pin (it takes milliseconds). */
const PIN_TIMEOUT_MS = 10_000;

export interface StartupWorkerRequest {
  job: StartupBackupJob;
  /** Int32 flag the worker sets to PINNED once its read transaction holds the snapshot, or NOT_PINNED. */
  flag: SharedArrayBuffer;
}

export type StartupWorkerReply =
  | { type: "log"; level: keyof BackupLog; msg: string; fields?: Record<string, unknown> }
  | { type: "done"; info: BackupInfo };

export interface StartupBackup {
  /** What /v1/status and the banner show now. */
  info(): BackupInfo;
  /** Settles once the backup is written or has failed (never rejects). */
  done: Promise<BackupInfo>;
  /** Whether it is still being written. */
  pending(): boolean;
  /** The record count of the snapshot (the store as found), for the "in progress" outcome. */
  startedWith(records: number): void;
}

function settled(info: BackupInfo): StartupBackup {
  return { info: () => info, done: Promise.resolve(info), pending: () => false, startedWith() {} };
}

/** Pins the snapshot and starts the worker. Call before anything writes the store. */
export function startStartupBackup(ctx: StartupBackupContext): StartupBackup {
  const log = ctx.log.child("spl::backup");
  const job = startupJob(ctx);
  const emptied = checkpointTruncate(ctx.db);
  if (!emptied) {
    log.warn("another process holds a read transaction on the store, so its write-ahead log cannot be emptied and the startup backup is taken before serving", { store: ctx.paths.store });
    return settled(startupBackupNow(ctx, job));
  }
  const t0 = performance.now();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(workerEntry("lib/backup/startup-worker.ts"));
  worker.postMessage({ job, flag: flag.buffer as SharedArrayBuffer } satisfies StartupWorkerRequest);
  Atomics.wait(flag, 0, 0, PIN_TIMEOUT_MS);
  if (Atomics.load(flag, 0) !== PINNED) {
    worker.terminate();
    log.warn("the startup backup could not pin a snapshot; it is taken before serving", { store: ctx.paths.store });
    return settled(startupBackupNow(ctx, job));
  }

  log.info("startup backup: snapshot of the store as found pinned; writing it while serving", { path: job.loc.latest, pin_ms: Math.round(performance.now() - t0) });
  let info: BackupInfo = { path: job.loc.latest, outcome: "in progress: snapshot taken at start", written_at: null, records: null };
  let pending = true;
  const done = new Promise<BackupInfo>((resolve) => {
    const finish = (final: BackupInfo) => {
      info = final;
      pending = false;
      worker.terminate();
      resolve(final);
    };
    worker.onmessage = (event: MessageEvent<StartupWorkerReply>) => {
      const m = event.data;
      if (m.type === "log") log[m.level](m.msg, m.fields);
      else if (m.type === "done") finish(m.info);
    };
    worker.onerror = (event) => {
      const reason = `the backup worker failed: ${event.message}`;
      log.error(`startup backup FAILED (existing backups were left untouched; the daemon keeps running): ${reason}`, { path: job.loc.latest });
      finish(failedInfo(job.loc.latest, reason));
    };
  });
  return {
    info: () => info,
    done,
    pending: () => pending,
    startedWith(records) {
      if (pending) info = { ...info, outcome: `in progress: snapshot of ${records} records taken at start`, records };
    },
  };
}


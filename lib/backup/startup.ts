// The startup backup: a snapshot of the store as `spl serve` found it (after the integrity checks,
// before any migration or identity bootstrap), written, verified and rotated. It is pinned before
// anything writes and written by a worker while the daemon serves (background.ts); this module
// is what both the worker and the synchronous fallback run. The listeners are bound by then, so
// a start refused for its port never gets here.
//
// Failure policy: a failed startup backup does NOT stop the daemon. The store itself passed
// its checks (a damaged store never gets here: startup already failed), so refusing to serve
// would turn a problem with the safety net (full disk, unwritable backup dir) into an outage.
// Instead the failure is loud: an ERROR log line, "(FAILED: ...)" on the banner's Backup line,
// /v1/status.backup.outcome, and a ✗-worthy row in `spl doctor`. Existing backups are never
// touched by a failed attempt: the snapshot is written to a temporary that is removed on error,
// and rotation only starts after the new snapshot has been verified.
import type { Database } from "bun:sqlite";
import type { SplConfig } from "../config";
import { isAlive } from "../daemonctl/proc";
import { readInstanceDid } from "../instance";
import type { Logger } from "../log";
import type { HomePaths } from "../paths";
import { bestBackup, type BackupFile } from "./catalog";
import { removeStaleTemps } from "./fsutil";
import { backupLocation, ensureBackupDir, writeOwner, type BackupLocation } from "./instance-key";
import { installStartupSnapshot } from "./rotation";
import { snapshotWith } from "./snapshot";
import { StoreReader } from "../store/reader";

/** What the startup backup did, for the banner and GET /v1/status. */
export interface BackupInfo {
  path: string;
  /** "written", "in progress: ..." while the worker writes it, or why not ("FAILED: ..."). */
  outcome: string;
  written_at: string | null;
  records: number | null;
}

export interface StartupBackupContext {
  db: Database;
  paths: HomePaths;
  config: SplConfig;
  log: Logger;
}

/** The log lines the backup writes (the worker forwards them to the daemon's logger). */
export type BackupLog = Pick<Logger, "info" | "warn" | "error" | "debug">;

/** Everything the backup needs besides the copy itself; plain data, so it can go to a worker. */
export interface StartupBackupJob {
  home: string;
  store: string;
  did: string | null;
  loc: BackupLocation;
  keep: number;
  /** Date.now() when the snapshot was pinned (for the "ms" of the log line). */
  startedAt: number;
}

function safeBest(home: string, dirs: string[], log: BackupLog): BackupFile | null {
  try {
    return bestBackup(home, dirs);
  } catch (err) {
    log.debug("could not survey existing backups", { error: (err as Error).message });
    return null;
  }
}

/** A new store where this home already had backups: the store was probably lost. */
export function warnIfStoreLost(paths: HomePaths, log: Logger): void {
  const best = safeBest(paths.home, [], log);
  if (best && best.records! > 0) {
    log.child("spl::backup").warn(
      `starting with a new, empty store at ${paths.store}, but this home's backups hold ${best.records} records — ` +
        `if hub.db was lost, stop spl and run 'spl restore ${best.path}'`,
      { store: paths.store, best_backup: best.path, best_records: best.records },
    );
  }
}

/** Where this start's backup goes (read from the open store: its instance DID picks the folder). */
export function startupJob(ctx: StartupBackupContext): StartupBackupJob {
  let did: string | null = null;
  try {
    did = readInstanceDid(ctx.db);
  } catch {}
  const { paths } = ctx;
  const loc = backupLocation({ instanceDid: did, home: paths.home });
  return { home: paths.home, store: paths.store, did, loc, keep: ctx.config.backup.keep, startedAt: Date.now() };
}

/** What /v1/status shows once a backup failed. */
export function failedInfo(path: string, reason: string): BackupInfo {
  return { path, outcome: `FAILED: ${reason}`, written_at: null, records: null };
}

/**
 * Writes the startup backup: `write` makes the copy of the store as found into the temporary it
 * is given; it is then verified, fsynced and rotated in (rotation.ts). Never throws: a failure is
 * logged and returned as the outcome.
 */
export function writeStartupBackup(job: StartupBackupJob, write: (tmp: string) => void, log: BackupLog): BackupInfo {
  const { loc } = job;
  const prior = safeBest(job.home, [loc.dir], log);
  try {
    ensureBackupDir(loc);
    const stale = removeStaleTemps(loc.dir, isAlive);
    if (stale.length) log.info("removed temporaries left by an interrupted backup", { dir: loc.dir, files: stale });
    writeOwner(loc, job.home, job.store, job.did);
    let maxRecords = 0;
    const facts = snapshotWith(write, loc.latest, (tmp, f) => {
      maxRecords = installStartupSnapshot(tmp, f, loc.dir, job.keep, log).maxRecords;
    });
    const info: BackupInfo = { path: loc.latest, outcome: "written", written_at: new Date().toISOString(), records: facts.records };
    log.info("startup backup written", {
      path: loc.latest,
      records: facts.records,
      threads: facts.threads,
      bytes: facts.bytes,
      keep: job.keep,
      max_records: maxRecords,
      ms: Date.now() - job.startedAt,
    });
    if (prior && prior.records! > facts.records) {
      // Records are append-only: fewer than a backup holds means records were lost.
      const msg =
        `store shrank: ${job.store} holds ${facts.records} records, but ${prior.path} holds ${prior.records} ` +
        `(records are never deleted, so records were lost) — to get them back: 'spl serve --stop', then 'spl restore ${prior.path}'`;
      log.warn(msg, { store: job.store, records: facts.records, best_backup: prior.path, best_records: prior.records });
      info.outcome = `written; WARNING store shrank from ${prior.records} to ${facts.records} records — restore from ${prior.path}`;
    }
    return info;
  } catch (err) {
    const reason = (err as Error).message;
    log.error(`startup backup FAILED (existing backups were left untouched; the daemon keeps running): ${reason}`, {
      path: loc.latest,
      error: reason,
    });
    return failedInfo(loc.latest, reason);
  }
}

/** The synchronous startup backup (VACUUM INTO on the daemon's connection, before it serves). */
export function startupBackupNow(ctx: StartupBackupContext, job = startupJob(ctx)): BackupInfo {
  return writeStartupBackup(job, (tmp) => new StoreReader(ctx.db).vacuumInto(tmp), ctx.log.child("spl::backup"));
}

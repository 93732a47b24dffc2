// The startup backup: taken by `spl serve` right after the store opened and passed its
// integrity checks, before any migration or identity bootstrap. The listeners are bound by then
// (answering 503), so a start refused for its port never gets here.
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
import { backupLocation, ensureBackupDir, writeOwner } from "./instance-key";
import { installStartupSnapshot } from "./rotation";
import { snapshot } from "./snapshot";

/** What the startup backup did, for the banner and GET /v1/status. */
export interface BackupInfo {
  path: string;
  /** "written", or why not ("no existing store", ...). */
  outcome: string;
  written_at: string | null;
  records: number | null;
}

export interface StartupBackupContext {
  db: Database;
  /** true when hub.db did not exist before this start (nothing to back up). */
  created: boolean;
  paths: HomePaths;
  config: SplConfig;
  log: Logger;
}

function safeBest(home: string, dirs: string[], log: Logger): BackupFile | null {
  try {
    return bestBackup(home, dirs);
  } catch (err) {
    log.debug("could not survey existing backups", { error: (err as Error).message });
    return null;
  }
}

export function startupBackup(ctx: StartupBackupContext): BackupInfo | null {
  const log = ctx.log.child("spl::backup");
  const { paths } = ctx;

  if (ctx.created) {
    // A new store where this home already had backups: the store was probably lost.
    const best = safeBest(paths.home, [], log);
    if (best && best.records! > 0) {
      log.warn(
        `starting with a new, empty store at ${paths.store}, but this home's backups hold ${best.records} records — ` +
          `if hub.db was lost, stop spl and run 'spl restore ${best.path}'`,
        { store: paths.store, best_backup: best.path, best_records: best.records },
      );
    }
    return null;
  }

  let did: string | null = null;
  try {
    did = readInstanceDid(ctx.db);
  } catch {}
  const loc = backupLocation({ instanceDid: did, home: paths.home });
  const started = performance.now();
  const prior = safeBest(paths.home, [loc.dir], log);
  try {
    ensureBackupDir(loc);
    const stale = removeStaleTemps(loc.dir, isAlive);
    if (stale.length) log.info("removed temporaries left by an interrupted backup", { dir: loc.dir, files: stale });
    writeOwner(loc, paths.home, paths.store, did);
    let maxRecords = 0;
    const facts = snapshot(ctx.db, loc.latest, (tmp, f) => {
      maxRecords = installStartupSnapshot(tmp, f, loc.dir, ctx.config.backup.keep, log).maxRecords;
    });
    const info: BackupInfo = { path: loc.latest, outcome: "written", written_at: new Date().toISOString(), records: facts.records };
    log.info("startup backup written", {
      path: loc.latest,
      records: facts.records,
      threads: facts.threads,
      bytes: facts.bytes,
      keep: ctx.config.backup.keep,
      max_records: maxRecords,
      ms: Math.round(performance.now() - started),
    });
    if (prior && prior.records! > facts.records) {
      // Records are append-only: fewer than a backup holds means records were lost.
      const msg =
        `store shrank: ${paths.store} holds ${facts.records} records, but ${prior.path} holds ${prior.records} ` +
        `(records are never deleted, so records were lost) — to get them back: 'spl serve --stop', then 'spl restore ${prior.path}'`;
      log.warn(msg, { store: paths.store, records: facts.records, best_backup: prior.path, best_records: prior.records });
      info.outcome = `written; WARNING store shrank from ${prior.records} to ${facts.records} records — restore from ${prior.path}`;
    }
    return info;
  } catch (err) {
    const reason = (err as Error).message;
    log.error(`startup backup FAILED (existing backups were left untouched; the daemon keeps running): ${reason}`, {
      path: loc.latest,
      error: reason,
    });
    return { path: loc.latest, outcome: `FAILED: ${reason}`, written_at: null, records: null };
  }
}

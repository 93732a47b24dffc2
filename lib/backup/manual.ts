// `spl backup [--out FILE]`: an online snapshot taken by the CLI itself.
//
// Why not ask the daemon to do it: bun:sqlite is synchronous, so a VACUUM INTO on the daemon's
// connection would stall every request for the length of the copy (seconds on a large store).
// A separate connection in this process instead holds one WAL read transaction: it sees a
// consistent snapshot as of its start while the daemon keeps committing to the WAL (checkpoints
// simply cannot pass the reader until it finishes). So the same code path serves a running
// daemon (read-only connection) and a stopped one (after the startup integrity checks).
import { quietPhases, type Phases } from "../progress/phase";
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, realpathSync, renameSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { findDaemon, type RunningDaemon } from "../daemonctl/control";
import { lockUnlessServing, readLockHolder } from "../daemonctl/store-lock";
import { UserError } from "../errors";
import { readInstanceDid } from "../instance";
import { homePaths } from "../paths";
import { checkStoreFiles, StoreDamagedError } from "../store/integrity";
import { freeName, renameNoClobber } from "./fsutil";
import { backupLocation, ensureBackupDir, writeOwner } from "./instance-key";
import { NotAStoreError, snapshot, type StoreFacts } from "./snapshot";
import { offerMax } from "./rotation";

export interface ManualBackup extends StoreFacts {
  path: string;
  written_at: string;
  source: string;
  daemon: RunningDaemon | null;
}

export function timestamp(d = new Date()): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

export async function manualBackup(opts: { out?: string; force?: boolean; phases?: Phases } = {}): Promise<ManualBackup> {
  const paths = homePaths();
  if (!existsSync(paths.store)) {
    throw new UserError(`no store at ${paths.store}: nothing to back up`, "check SYNCROPEL_HOME, or start the daemon once with 'spl serve --daemon'");
  }
  let target: string | null = null;
  if (opts.out !== undefined) {
    target = resolve(opts.out);
    const t = real(target);
    for (const f of [paths.store, `${paths.store}-wal`, `${paths.store}-shm`]) {
      if (t === real(f)) throw new UserError(`--out ${target} is the live store itself`, "write the backup somewhere else");
    }
    if (existsSync(target)) {
      if (statSync(target).isDirectory()) throw new UserError(`--out ${target} is a directory`, `name a file, e.g. --out ${target}/hub.db.${timestamp()}.bak`);
      if (!opts.force) throw new UserError(`${target} already exists`, "pass --force to replace it, or choose another --out");
    }
  }

  let daemon = await findDaemon(paths);
  // Stopped: hold the store lock, since this read-write connection checkpoints the WAL into
  // hub.db when it closes; a daemon starting meanwhile makes it an online snapshot instead.
  const lock = daemon ? null : lockUnlessServing(paths.store, "backup");
  if (!daemon && !lock) daemon = { pid: readLockHolder(paths.store)?.pid ?? 0, via: "store lock" };
  // A stopped store gets the same file checks as a daemon start: a damaged store is never copied.
  let db: Database;
  try {
    if (!daemon) checkStoreFiles(paths.store);
    db = daemon ? new Database(paths.store, { readonly: true }) : new Database(paths.store, { readwrite: true, create: false });
  } catch (err) {
    lock?.release();
    throw err;
  }
  try {
    db.exec("PRAGMA busy_timeout = 10000");
    let did: string | null = null;
    try {
      did = readInstanceDid(db);
    } catch {}
    let inBackupDir: string | null = null;
    if (target === null) {
      const loc = backupLocation({ instanceDid: did, home: paths.home });
      inBackupDir = loc.dir;
      ensureBackupDir(loc);
      writeOwner(loc, paths.home, paths.store, did);
      target = freeName(loc.dir, `hub.db.${timestamp()}`, ".bak");
    } else {
      mkdirSync(dirname(target), { recursive: true, mode: 0o700 });
    }
    const dest = target;
    const install = (tmp: string) => (opts.force ? renameSync(tmp, dest) : renameNoClobber(tmp, dest));
    const bytes = statSync(paths.store).size + (existsSync(`${paths.store}-wal`) ? statSync(`${paths.store}-wal`).size : 0);
    const facts = (opts.phases ?? quietPhases).run("snapshot", bytes, () => snapshot(db, dest, install), 2);
    // In the backup dir it also competes for hub.db.bak.max (so the largest snapshot is always
    // one file away, however many manual backups accumulate).
    if (inBackupDir) {
      try {
        offerMax(inBackupDir, dest, facts.records);
      } catch {}
    }
    return { ...facts, path: dest, written_at: new Date().toISOString(), source: paths.store, daemon };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new UserError(`${target} already exists`, "pass --force to replace it, or choose another --out");
    if (err instanceof NotAStoreError) {
      throw new UserError(`the snapshot of ${paths.store} failed verification (${err.reason}); nothing was written`, "check the store with 'spl doctor'");
    }
    if (!(err instanceof UserError) && /malformed|not a database|disk image/i.test((err as Error).message)) {
      throw new StoreDamagedError(paths.store, "SQLite cannot read it", (err as Error).message);
    }
    throw err;
  } finally {
    db.close();
    lock?.release();
  }
}

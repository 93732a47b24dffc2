// The single-instance lock, kept beside the store rather than in run/: <home>/spl.lock, a tiny
// SQLite database held in exclusive locking mode. SQLite's POSIX lock lasts as long as the
// connection and the kernel drops it when the process dies (kill -9 included), so a lock is never
// stale, and deleting run/ does not release it. `spl serve` holds it for its whole life; the
// commands that rewrite the store while the daemon is stopped (restore, permissions-unlock,
// backup, init) hold it while they work, so none of them can interleave with a starting daemon.
// The holder writes its pid, command and address into the file so others can name it.
// Every holder also takes flock(2) on hub.db itself (store-file-lock.ts), so deleting spl.lock by
// hand does not let a second daemon open the same store.
import { constants, Database } from "bun:sqlite";
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { UserError } from "../errors";
import { cmdline, isAlive, isSplServe } from "./proc";
import { uriPath } from "../store/reader";
import { lockStoreFile, unlockStoreFile, type StoreFileLock } from "./store-file-lock";

export interface LockHolder {
  pid: number;
  /** "serve", "restore", "config permissions-unlock"... */
  command: string;
  host: string | null;
  port: number | null;
  since: string;
}

/** How long an acquirer waits for a short-lived holder (a restore, a backup) to finish. */
const WAIT_MS = 2000;

export function lockFileFor(storePath: string): string {
  return join(dirname(storePath), "spl.lock");
}

function describeHolder(lockFile: string, h: LockHolder | null): [what: string, fix: string] {
  if (h?.command === "serve") {
    const where = h.port ? ` on ${h.host ?? "127.0.0.1"}:${h.port}` : "";
    return [`spl serve is already running (pid ${h.pid})${where}`, "stop it with 'spl serve --stop', or check it with 'spl status'"];
  }
  if (h) return [`'spl ${h.command}' (pid ${h.pid}) is using the store (lock ${lockFile})`, "wait for it to finish, then try again"];
  return [`another spl process holds the store lock ${lockFile}`, "check it with 'spl status' or pgrep -af spl, then try again"];
}

export class StoreBusyError extends UserError {
  readonly holder: LockHolder | null;

  constructor(lockFile: string, holder: LockHolder | null, fix?: string) {
    const [what, defaultFix] = describeHolder(lockFile, holder);
    super(what, fix ?? defaultFix);
    this.holder = holder;
  }
}

/** Who holds (or last held) the lock; read without taking any lock. null when unknown. */
export function readLockHolder(storePath: string): LockHolder | null {
  const file = lockFileFor(storePath);
  if (!existsSync(file)) return null;
  try {
    const db = new Database(`${uriPath(file)}?immutable=1`, constants.SQLITE_OPEN_READONLY | constants.SQLITE_OPEN_URI);
    try {
      return (db.query("SELECT pid, command, host, port, since FROM holder LIMIT 1").get() as LockHolder | null) ?? null;
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
}

// A held lock must not be closed by the garbage collector while its holder still works.
const held = new Set<StoreLock>();

export class StoreLock {
  constructor(
    private db: Database,
    private readonly storePath: string,
    private fileLock: StoreFileLock | null,
  ) {
    held.add(this);
  }

  /**
   * Locks hub.db itself if it was not there to lock when the lock was taken (a new store: call
   * once it is created). Throws StoreBusyError if another process holds it.
   */
  coverStore(): void {
    if (this.fileLock) return;
    const got = lockStoreFile(this.storePath);
    if (got === "busy") throw new StoreBusyError(lockFileFor(this.storePath), storeFileHolder(this.storePath));
    this.fileLock = got;
  }

  /** Gives the lock up (process exit does the same). */
  release(): void {
    if (!held.delete(this)) return;
    if (this.fileLock) unlockStoreFile(this.fileLock);
    this.db.close();
  }
}

/**
 * Who holds the flock on hub.db, from /proc/locks (its inode): named as `spl serve` when it is
 * one, which is how a daemon whose spl.lock was deleted is still found. null when unknown.
 */
export function storeFileHolder(storePath: string): LockHolder | null {
  try {
    const ino = statSync(storePath).ino;
    for (const line of readFileSync("/proc/locks", "utf8").split("\n")) {
      const f = line.trim().split(/\s+/);
      // "1: FLOCK  ADVISORY  WRITE 1234 fe:00:2187313 0 EOF"
      if (f[1] !== "FLOCK" || f[3] !== "WRITE" || Number(f[5]?.split(":")[2]) !== ino) continue;
      const pid = Number(f[4]);
      if (pid === process.pid || !isAlive(pid)) continue;
      const command = isSplServe(pid) ? "serve" : (/\bspl\s+(\S+)/.exec(cmdline(pid) ?? "")?.[1] ?? "(unknown command)");
      return { pid, command, host: null, port: null, since: "" };
    }
  } catch {}
  return null;
}

interface Me {
  command: string;
  host?: string;
  port?: number;
}

/**
 * Takes the lock or throws StoreBusyError naming the holder. A live daemon holds it for its life,
 * so that is refused at once; a restore or backup finishes soon, so that is waited for briefly.
 */
export function acquireStoreLock(storePath: string, me: Me, opts: { fix?: string } = {}): StoreLock {
  try {
    return lockNow(storePath, me, 0, opts.fix);
  } catch (err) {
    if (!(err instanceof StoreBusyError) || (err.holder?.command === "serve" && isAlive(err.holder.pid))) throw err;
  }
  return lockNow(storePath, me, WAIT_MS, opts.fix);
}

function lockNow(storePath: string, me: Me, waitMs: number, fix: string | undefined): StoreLock {
  const lock = lockSplLock(storePath, me, waitMs, fix);
  // Then the store file itself: waited for like spl.lock (a short-lived holder lets go soon).
  for (const deadline = Date.now() + waitMs; ; Bun.sleepSync(50)) {
    const got = lockStoreFile(storePath);
    if (got !== "busy") return new StoreLock(lock, storePath, got);
    if (Date.now() >= deadline) {
      lock.close();
      throw new StoreBusyError(lockFileFor(storePath), storeFileHolder(storePath), fix);
    }
  }
}

function lockSplLock(storePath: string, me: Me, waitMs: number, fix: string | undefined): Database {
  const file = lockFileFor(storePath);
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  let db: Database;
  try {
    db = new Database(file, { create: true });
  } catch (err) {
    throw new UserError(`cannot open the store lock ${file}: ${(err as Error).message}`, `check the permissions of ${dirname(file)}`);
  }
  try {
    db.exec(`PRAGMA busy_timeout = ${waitMs}`);
    db.exec("PRAGMA locking_mode = EXCLUSIVE");
    // No journal file beside it: the only content is the holder row, rewritten by every holder.
    db.exec("PRAGMA journal_mode = MEMORY");
    db.exec("BEGIN EXCLUSIVE");
  } catch (err) {
    db.close();
    const code = (err as { code?: string }).code ?? "";
    if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) throw new StoreBusyError(file, readLockHolder(storePath), fix);
    throw new UserError(
      `the store lock ${file} cannot be used: ${(err as Error).message}`,
      `when no spl process runs, move it aside (mv ${file} ${file}.broken) and try again`,
    );
  }
  try {
    db.exec("CREATE TABLE IF NOT EXISTS holder (pid INTEGER, command TEXT, host TEXT, port INTEGER, since TEXT)");
    db.exec("DELETE FROM holder");
    db.query("INSERT INTO holder VALUES (?, ?, ?, ?, ?)").run(process.pid, me.command, me.host ?? null, me.port ?? null, new Date().toISOString());
    db.exec("COMMIT");
  } catch {
    // The exclusive lock is ours either way (exclusive locking mode keeps it); only the name
    // shown to others is missing.
    try {
      db.exec("ROLLBACK");
    } catch {}
  }
  return db;
}

/**
 * For commands that may also run beside a live daemon (SQLite's own locking keeps their writes
 * safe there) but never beside restore or another rewrite: the lock, or null when spl serve
 * holds it.
 */
export function lockUnlessServing(storePath: string, command: string): StoreLock | null {
  try {
    return acquireStoreLock(storePath, { command });
  } catch (err) {
    if (err instanceof StoreBusyError && err.holder?.command === "serve") return null;
    throw err;
  }
}

// Opening the record store: integrity first, then pragmas, then schema.
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { checkStoreFiles, quickCheck, StoreDamagedError } from "./integrity";
import { migrate } from "./schema";

export interface OpenOptions {
  durability?: "normal" | "full";
  /** Run PRAGMA quick_check (the daemon does at startup; short-lived CLI opens may skip it). */
  check?: boolean;
  allowBreaking?: boolean;
}

export interface OpenedStore {
  db: Database;
  /** true when hub.db did not exist before this open. */
  created: boolean;
  /** schema version found on disk before migration (0 for a new store). */
  foundVersion: number;
}

export function openStore(path: string, opts: OpenOptions = {}): OpenedStore {
  const created = !existsSync(path);
  if (created) mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  else checkStoreFiles(path);
  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true });
  } catch (err) {
    throw new StoreDamagedError(path, "SQLite cannot open it", (err as Error).message);
  }
  try {
    // busy_timeout first so the WAL switch waits for other connections instead of failing.
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${opts.durability === "full" ? "FULL" : "NORMAL"}`);
    if (opts.check !== false && !created) quickCheck(db, path);
    const foundVersion = migrate(db, path, opts);
    return { db, created, foundVersion };
  } catch (err) {
    db.close();
    if (err instanceof Error && /malformed|not a database|disk image/i.test(err.message) && !(err instanceof StoreDamagedError)) {
      throw new StoreDamagedError(path, "SQLite cannot read it", err.message);
    }
    throw err;
  }
}

/** Flush the WAL into the main file and shrink it to zero (graceful shutdown, snapshots). */
export function checkpoint(db: Database): void {
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

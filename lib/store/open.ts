// Opening the record store: integrity first, then pragmas, then schema.
import { Database } from "bun:sqlite";
import { existsSync, mkdirSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { checkStoreFiles, quickCheck, StoreDamagedError } from "./integrity";
import { assertKnownVersion, foreignSchemaMessage, foreignSchemaObjects, migrate, SchemaError } from "./schema";
import { UserError } from "../errors";
import { quietPhases, type Phases } from "../progress/phase";

export interface OpenOptions {
  durability?: "normal" | "full";
  /** Run PRAGMA quick_check (the daemon does at startup; short-lived CLI opens may skip it). */
  check?: boolean;
  allowBreaking?: boolean;
  /**
   * Runs after the integrity checks and the schema-version check, before any migration writes
   * (the daemon's startup backup: it captures the store exactly as found). `created` is true
   * for a store that did not exist before this open.
   */
  beforeMigrate?: (db: Database, created: boolean) => void;
  /** Shows the integrity check's progress and reports its duration (the daemon's startup). */
  phases?: Phases;
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
  if (created) {
    // A leftover WAL without its hub.db (deleted after a crash) would be replayed into the new
    // store: refuse, so the operator decides what it is.
    const wal = `${path}-wal`;
    if (existsSync(wal) && statSync(wal).size > 0) {
      throw new UserError(
        `store ${path} is missing, but its write-ahead log ${wal} still holds ${statSync(wal).size} bytes (SQLite would replay it into a new, empty store)`,
        `move it aside (mv ${wal} ${wal}.orphan.$(date +%s); the same for ${path}-shm), then 'spl restore <backup file>', ` +
          "or start again to create a new store; 'spl backup list' shows the backups on this machine",
      );
    }
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  }
  const phases = opts.phases ?? quietPhases;
  const storeBytes = created ? 0 : fileBytes(path) + fileBytes(`${path}-wal`);
  if (!created) phases.run("integrity check (files)", storeBytes, () => checkStoreFiles(path));
  let db: Database;
  try {
    db = new Database(path, { create: true, strict: true });
  } catch (err) {
    throw new StoreDamagedError(path, "SQLite cannot open it", (err as Error).message);
  }
  try {
    // busy_timeout first so the WAL switch waits for other connections instead of failing.
    db.exec("PRAGMA busy_timeout = 5000");
    // quick_check before the journal-mode switch: a damaged store is never written to.
    if (opts.check !== false && !created) phases.run("integrity check (quick_check)", storeBytes, () => quickCheck(db, path));
    // Only the schema spl creates: a foreign trigger could delete what spl acknowledges.
    const foreign = created ? [] : foreignSchemaObjects(db);
    if (foreign.length) throw new SchemaError(...foreignSchemaMessage(path, foreign));
    db.exec("PRAGMA journal_mode = WAL");
    db.exec(`PRAGMA synchronous = ${opts.durability === "full" ? "FULL" : "NORMAL"}`);
    // The id index takes random inserts; SQLite's 8 MiB default cache makes large stores
    // re-read index pages on every write. 64 MiB keeps ~1M records' index hot.
    db.exec("PRAGMA cache_size = -65536");
    if (opts.beforeMigrate) {
      assertKnownVersion(db, path);
      opts.beforeMigrate(db, created);
    }
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

function fileBytes(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Copies what no reader still needs from the WAL into the main file, never waiting for anyone.
 * Answers whether the whole WAL was copied (false: a reader holds an old snapshot, or busy).
 */
export function checkpointPassive(db: Database): boolean {
  const row = db.query("PRAGMA wal_checkpoint(PASSIVE)").get() as { busy: number; log: number; checkpointed: number } | null;
  return !!row && row.busy === 0 && row.checkpointed >= row.log;
}

/** Flush the WAL into the main file and shrink it to zero (graceful shutdown). */
export function checkpoint(db: Database): void {
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
}

/** Checkpoints and empties the WAL (waiting busy_timeout for readers); answers whether it is now empty. */
export function checkpointTruncate(db: Database): boolean {
  const row = db.query("PRAGMA wal_checkpoint(TRUNCATE)").get() as { busy: number; log: number } | null;
  return !!row && row.busy === 0 && row.log === 0;
}

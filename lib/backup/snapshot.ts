// Consistent snapshots of a store and the checks every snapshot (and every file we are asked to
// restore) must pass before it may carry a real name:
//   VACUUM INTO a hidden temporary beside the target → open it, quick_check, count records from
//   the snapshot itself → fsync → rename/link into place → fsync the directory.
// VACUUM INTO reads inside one read transaction, so in WAL mode it is a consistent snapshot that
// never blocks the daemon's writer; its output is a compact rollback-journal file with no -wal.
import type { Database } from "bun:sqlite";
import { closeSync, existsSync, openSync, readSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { UserError } from "../errors";
import { readInstanceDid } from "../instance";
import { StoreReader } from "../store/reader";
import { foreignSchemaMessage, foreignSchemaObjects, SCHEMA_VERSION } from "../store/schema";
import { fsyncDir, fsyncFile, renameNoClobber, tempPathFor } from "./fsutil";

export interface StoreFacts {
  records: number;
  threads: number;
  schema_version: number;
  instance_did: string | null;
  bytes: number;
  /** Sequence of the newest record (null when empty), and its id. */
  last_id: string | null;
}

/** A file that is not an intact spl store (for backups, restores and `backup list`). */
export class NotAStoreError extends UserError {
  constructor(
    readonly file: string,
    readonly reason: string,
    fix = "pick another backup ('spl backup list' shows them with their record counts)",
  ) {
    super(`${file} is not an intact spl store: ${reason}`, fix);
  }
}

const MAGIC = "SQLite format 3\0";

/** Opens a store file for reading only (see StoreReader.open for the two modes). */
export function openReadOnly(path: string, mode: "immutable" | "shared"): Database {
  return StoreReader.open(path, mode).db;
}

/** The right read-only mode for a store that no daemon is using: immutable unless a WAL holds data. */
export function quietMode(storePath: string): "immutable" | "shared" {
  const wal = `${storePath}-wal`;
  return existsSync(wal) && statSync(wal).size > 0 ? "shared" : "immutable";
}

function headerOk(path: string): boolean {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(16);
    return readSync(fd, buf, 0, 16, 0) === 16 && buf.toString("latin1") === MAGIC;
  } finally {
    closeSync(fd);
  }
}

/** Counts and identity of an open store (which must have a records table). */
export function factsOf(db: Database | StoreReader): Omit<StoreFacts, "bytes"> {
  const reader = db instanceof StoreReader ? db : new StoreReader(db);
  return {
    records: reader.recordCount(),
    threads: reader.threadCount(),
    schema_version: reader.schemaVersion(),
    instance_did: readInstanceDid(reader),
    last_id: reader.lastRecordId(),
  };
}

/**
 * Verifies that `path` is an intact spl store and returns what it holds. `quick` runs
 * PRAGMA quick_check (every snapshot and every restore does; listings only count).
 */
export function inspectStoreFile(path: string, opts: { quick?: boolean; mode?: "immutable" | "shared" } = {}): StoreFacts {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new NotAStoreError(path, "no such file", "check the path ('spl backup list' shows the backups on this machine)");
  }
  if (!st.isFile()) throw new NotAStoreError(path, "not a regular file");
  if (st.size < 512 || !headerOk(path)) throw new NotAStoreError(path, "it does not start with a SQLite header (damaged, or not a database)");
  let db: StoreReader;
  try {
    db = StoreReader.open(path, opts.mode ?? "immutable");
  } catch (err) {
    throw new NotAStoreError(path, `SQLite cannot open it (${(err as Error).message})`);
  }
  try {
    if (opts.quick !== false) {
      let result: string;
      try {
        result = db.quickCheck();
      } catch (err) {
        throw new NotAStoreError(path, `SQLite cannot read it (${(err as Error).message})`);
      }
      if (result !== "ok") throw new NotAStoreError(path, `quick_check found damage (${result.replace(/\s+/g, " ").slice(0, 300)})`);
    }
    let facts: Omit<StoreFacts, "bytes">;
    try {
      const cols = db.recordColumns();
      for (const c of ["seq", "id", "thread", "actor", "act", "clock", "body"]) {
        if (!cols.includes(c)) throw new NotAStoreError(path, cols.length ? `its records table lacks the '${c}' column` : "it has no records table");
      }
      facts = factsOf(db);
    } catch (err) {
      if (err instanceof NotAStoreError) throw err;
      throw new NotAStoreError(path, `SQLite cannot read it (${(err as Error).message})`);
    }
    if (facts.schema_version < 1) throw new NotAStoreError(path, "it has no schema_version in its meta table");
    // A restore or backup carries only the schema spl creates (no --force skips this).
    const foreign = foreignSchemaObjects(db.db);
    if (foreign.length) {
      const [what, fix] = foreignSchemaMessage(path, foreign);
      throw new NotAStoreError(path, `it ${what.slice(path.length + 1)}`, fix);
    }
    if (facts.schema_version > SCHEMA_VERSION) {
      throw new NotAStoreError(
        path,
        `it has schema version ${facts.schema_version}, but this spl understands only up to version ${SCHEMA_VERSION}`,
        "install the newer spl that wrote it, or pick a backup taken before the upgrade",
      );
    }
    return { ...facts, bytes: st.size };
  } finally {
    db.close();
  }
}

/** Same facts without quick_check, or null if the file cannot be read as a store. */
export function peekStoreFile(path: string): StoreFacts | { error: string } {
  try {
    return inspectStoreFile(path, { quick: false });
  } catch (err) {
    return { error: err instanceof NotAStoreError ? err.reason : (err as Error).message };
  }
}

/**
 * VACUUM INTO a temporary beside `target`, verify it, fsync it and give it its name.
 * `install` receives the verified temporary and must move it into place (the default renames
 * it to `target`, refusing to overwrite an existing file). The temporary never survives a failure.
 */
export function snapshot(
  db: Database,
  target: string,
  install: (tmp: string, facts: StoreFacts) => void = (tmp) => renameNoClobber(tmp, target),
): StoreFacts {
  return snapshotWith((tmp) => new StoreReader(db).vacuumInto(tmp), target, install);
}

/** Like snapshot, with the copy made by `write` (which must create the temporary it is given). */
export function snapshotWith(write: (tmp: string) => void, target: string, install: (tmp: string, facts: StoreFacts) => void): StoreFacts {
  const tmp = tempPathFor(target);
  try {
    write(tmp);
    const facts = inspectStoreFile(tmp, { quick: true });
    fsyncFile(tmp);
    install(tmp, facts);
    fsyncDir(dirname(target));
    return facts;
  } finally {
    rmSync(tmp, { force: true });
  }
}

// Read-only questions about a store file: backups, restores, doctor and the CLI ask these of a
// store they do not own (a running daemon's, a stopped one's, or a backup). The daemon's writer
// (RecordStore) answers the same questions for its own connection by extending this class.
import { constants, Database } from "bun:sqlite";
import type { StoredRecord } from "../records/types";
import { storedSchemaVersion } from "./schema";
import { COLUMNS, type RecordRow, rowToRecord } from "./rows";

export function uriPath(path: string): string {
  return "file:" + path.split("/").map(encodeURIComponent).join("/");
}

export class StoreReader {
  constructor(readonly db: Database) {}

  /**
   * Opens a store file for reading only.
   * - "immutable": no locks, no -wal/-shm created or read: for files nobody writes (backups, a
   *   stopped daemon's store after a clean shutdown). Leaves the directory exactly as it was.
   * - "shared": a normal read-only connection that sees the WAL (a running daemon's store).
   */
  static open(path: string, mode: "immutable" | "shared"): StoreReader {
    if (mode === "immutable") {
      return new StoreReader(new Database(`${uriPath(path)}?immutable=1`, constants.SQLITE_OPEN_READONLY | constants.SQLITE_OPEN_URI));
    }
    // A URI connection too, so another file can be attached immutable (recordsMissingFrom).
    const db = new Database(uriPath(path), constants.SQLITE_OPEN_READONLY | constants.SQLITE_OPEN_URI);
    db.exec("PRAGMA busy_timeout = 5000");
    return new StoreReader(db);
  }

  /**
   * How many records this store holds that the store file at `otherPath` lacks, leaving out those
   * of `exceptActor`. Records are content-addressed, so comparing ids answers it exactly.
   */
  recordsMissingFrom(otherPath: string, exceptActor: string): number {
    this.db.prepare("ATTACH DATABASE ? AS other").run(`${uriPath(otherPath)}?immutable=1`);
    try {
      const row = this.db
        .query("SELECT COUNT(*) AS n FROM main.records WHERE actor <> ? AND id NOT IN (SELECT id FROM other.records)")
        .get(exceptActor) as { n: number };
      return row.n;
    } finally {
      this.db.exec("DETACH DATABASE other");
    }
  }

  close(): void {
    this.db.close();
  }

  private hasTable(name: string): boolean {
    return this.db.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?").get(name) !== null;
  }

  /** Whether the file has a records table at all (an empty or foreign SQLite file has not). */
  hasRecords(): boolean {
    return this.hasTable("records");
  }

  /** Column names of the records table (empty when there is none). */
  recordColumns(): string[] {
    return (this.db.query("SELECT name FROM pragma_table_info('records')").all() as { name: string }[]).map((c) => c.name);
  }

  schemaVersion(): number {
    return storedSchemaVersion(this.db);
  }

  recordCount(): number {
    return (this.db.query("SELECT COUNT(*) AS n FROM records").get() as { n: number }).n;
  }

  /** Records with a seq above `seq` (a range scan: the tail above a known count). */
  recordCountAfter(seq: number): number {
    return (this.db.query("SELECT COUNT(*) AS n FROM records WHERE seq > ?").get(seq) as { n: number }).n;
  }

  /** Threads, from the summary table, or counted from the log in a store older than it. */
  threadCount(): number {
    const sql = this.hasTable("threads") ? "SELECT COUNT(*) AS n FROM threads" : "SELECT COUNT(DISTINCT thread) AS n FROM records";
    return (this.db.query(sql).get() as { n: number }).n;
  }

  /** Id of the newest record, or null in an empty store. */
  lastRecordId(): string | null {
    return (this.db.query("SELECT id FROM records ORDER BY seq DESC LIMIT 1").get() as { id: string } | null)?.id ?? null;
  }

  /** The first record on `thread` by `actor` whose body.topic is `topic` (the instance genesis). */
  firstLearnWithTopic(thread: string, actor: string, topic: string): string | null {
    const row = this.db
      .query(
        `SELECT id FROM records WHERE thread = ? AND act = 'LEARN' AND actor = ?
           AND json_extract(body, '$.topic') = ? ORDER BY seq LIMIT 1`,
      )
      .get(thread, actor, topic) as { id: string } | null;
    return row?.id ?? null;
  }

  /** Every LEARN on one thread, in store order (engine config folds). */
  learnsOn(thread: string): StoredRecord[] {
    const rows = this.db.query(`SELECT ${COLUMNS} FROM records WHERE thread = ? AND act = 'LEARN' ORDER BY seq`).all(thread) as RecordRow[];
    return rows.map(rowToRecord);
  }

  /** PRAGMA quick_check's findings joined into one line ("ok" when intact). */
  quickCheck(): string {
    return (this.db.query("PRAGMA quick_check").all() as { quick_check: string }[]).map((r) => r.quick_check).join("; ");
  }

  /** A consistent, compact copy of the store in one read transaction (never blocks the writer). */
  vacuumInto(target: string): void {
    const stmt = this.db.prepare("VACUUM INTO ?");
    try {
      stmt.run(target);
    } finally {
      stmt.finalize();
    }
  }
}

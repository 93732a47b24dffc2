// Store schema, versioned in meta.schema_version. Steps only add (CREATE ... IF NOT EXISTS,
// backfills of derived tables); existing rows are never rewritten. A store newer than this
// binary is refused rather than guessed at.
import { Database } from "bun:sqlite";
import { UserError } from "../errors";

interface Step {
  version: number;
  /** A breaking step refuses automatic startup; none exist yet. */
  breaking?: boolean;
  sql: string;
}

const STEPS: Step[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS records (
        seq        INTEGER PRIMARY KEY,
        id         TEXT NOT NULL UNIQUE,
        thread     TEXT NOT NULL,
        actor      TEXT NOT NULL,
        act        TEXT NOT NULL,
        clock      INTEGER NOT NULL,
        data_type  TEXT NOT NULL,
        judged_by  TEXT,
        parents    TEXT NOT NULL,
        body       TEXT NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE UNIQUE INDEX IF NOT EXISTS records_thread_actor_clock ON records(thread, actor, clock);
      CREATE INDEX IF NOT EXISTS records_thread_seq ON records(thread, seq);
      CREATE INDEX IF NOT EXISTS records_actor_seq ON records(actor, seq);`,
  },
  {
    // Per-thread summary kept beside the log so listing threads never scans every record.
    version: 2,
    sql: `
      CREATE TABLE IF NOT EXISTS threads (
        thread       TEXT PRIMARY KEY,
        record_count INTEGER NOT NULL,
        first_seq    INTEGER NOT NULL,
        last_seq     INTEGER NOT NULL,
        first_seen   INTEGER NOT NULL,
        last_seen    INTEGER NOT NULL,
        closed       INTEGER NOT NULL DEFAULT 0
      ) WITHOUT ROWID;
      CREATE INDEX IF NOT EXISTS threads_first_seq ON threads(first_seq);
      INSERT OR IGNORE INTO threads (thread, record_count, first_seq, last_seq, first_seen, last_seen, closed)
        SELECT thread, COUNT(*), MIN(seq), MAX(seq), MIN(created_at), MAX(created_at),
               MAX((act = 'KNOW' AND json_extract(body, '$.fulfills') IS NOT NULL)
                   OR (act = 'DO' AND json_extract(body, '$.cancels') IS NOT NULL))
        FROM records GROUP BY thread;`,
  },
];

export const SCHEMA_VERSION = STEPS[STEPS.length - 1]!.version;

/**
 * Tables spl creates outside the versioned steps: the fold index, a cache an older spl ignores
 * (fold-index.ts). A new table of that kind goes here too, or stores holding it are refused.
 */
export const FOLD_INDEX_SQL = "CREATE TABLE IF NOT EXISTS fold_records (seq INTEGER PRIMARY KEY)";

/** A CREATE statement without what does not change its meaning: case, quoting, spacing. */
const normalized = (sql: string | null) =>
  (sql ?? "")
    .toLowerCase()
    .replace(/["`[\]]/g, "")
    .replace(/\s+/g, " ")
    .replace(/ ?([(),;]) ?/g, "$1")
    .replace(/;$/, "")
    .trim();

interface SchemaRow {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

let known: Map<string, string> | null = null;

/** Every object some version of spl's schema has, "type name" → its CREATE statement (normalized). */
function knownObjects(): Map<string, string> {
  if (known) return known;
  const db = new Database(":memory:");
  try {
    for (const step of STEPS) db.exec(step.sql);
    db.exec(FOLD_INDEX_SQL);
    const rows = db.query("SELECT type, name, tbl_name, sql FROM sqlite_master").all() as SchemaRow[];
    known = new Map(rows.map((r) => [`${r.type} ${r.name}`, normalized(r.sql)]));
    return known;
  } finally {
    db.close();
  }
}

/**
 * The objects in a store that spl does not create (README "Backups and recovery"): a trigger, a
 * view, a table or an index of another name, or one of spl's own under another definition. A
 * trigger can delete or rewrite every record acknowledged after it was added, so such a store is
 * neither restored nor started on. SQLite's automatic indexes follow from the table definitions.
 */
export function foreignSchemaObjects(db: Database): string[] {
  const expected = knownObjects();
  const found: string[] = [];
  for (const r of db.query("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").all() as SchemaRow[]) {
    if (r.type === "index" && r.name.startsWith("sqlite_autoindex_")) continue;
    const want = expected.get(`${r.type} ${r.name}`);
    const on = r.type === "trigger" || r.type === "index" ? ` on ${r.tbl_name}` : "";
    if (want === undefined) found.push(`${r.type} ${r.name}${on}`);
    else if (want !== normalized(r.sql)) found.push(`${r.type} ${r.name}${on} (not as spl defines it)`);
  }
  return found;
}

/** The refusal for a store holding foreign objects: what they are, and how to get a clean store. */
export function foreignSchemaMessage(path: string, objects: string[]): [what: string, fix: string] {
  const drops = objects.filter((o) => !o.endsWith("(not as spl defines it)")).map((o) => `DROP ${o.split(" ")[0]!.toUpperCase()} "${o.split(" ")[1]}";`);
  return [
    `${path} holds schema objects spl does not create: ${objects.join(", ")} (a trigger or view can change or delete records behind spl's back)`,
    `restore another backup ('spl backup list'); or, if you added them yourself and trust the records, remove them${drops.length ? ` (sqlite3 ${path} '${drops.join(" ")}')` : ""} and try again`,
  ];
}

export class SchemaError extends UserError {}

/** The schema_version recorded in a store, or 0 for a store without one. */
export function storedSchemaVersion(db: Database): number {
  const hasMeta = db.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").get();
  if (!hasMeta) return 0;
  const row = db.query("SELECT value FROM meta WHERE key='schema_version'").get() as { value: string } | null;
  return row ? Number(row.value) : 0;
}

/** Refuses a store written by a newer spl (before anything, even a backup, touches it). */
export function assertKnownVersion(db: Database, storePath: string): number {
  const found = storedSchemaVersion(db);
  if (found > SCHEMA_VERSION) {
    throw new SchemaError(
      `${storePath} has schema version ${found}, but this spl understands only up to version ${SCHEMA_VERSION}`,
      "install the newer spl that wrote it, or restore the snapshot you took before upgrading",
    );
  }
  return found;
}

/**
 * Brings the store up to SCHEMA_VERSION. Returns the version it found (0 = new store).
 * Refuses a store from a newer spl, and a breaking step unless `allowBreaking`.
 */
export function migrate(db: Database, storePath: string, opts: { allowBreaking?: boolean } = {}): number {
  const found = assertKnownVersion(db, storePath);
  const pending = STEPS.filter((s) => s.version > found);
  if (!pending.length) return found;
  if (found > 0 && !opts.allowBreaking && pending.some((s) => s.breaking)) {
    throw new SchemaError(
      `${storePath} needs a breaking migration from schema ${found} to ${SCHEMA_VERSION}`,
      "take a backup, then run 'spl migrate'",
    );
  }
  db.transaction(() => {
    for (const step of pending) db.exec(step.sql);
    db.query("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)").run(String(SCHEMA_VERSION));
  }).immediate();
  return found;
}

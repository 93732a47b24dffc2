// The fold index: which records some engine fold consumes, kept beside the log so
// rebuild_from_store() reads those records only, in time that follows them rather than the store.
//
// A disposable cache, not part of the versioned schema: the table is created here with IF NOT
// EXISTS (an older spl ignores it, and a rollback to one needs nothing), and it is exact or it
// repairs itself at the next start:
// - meta.fold_index_filters is the filter set it was built for; another set (a release adds a
//   fold, a caller registers extraFolds) empties it and indexes every record once.
// - meta.fold_index_through is the highest seq it covers (and how many records have a seq up to
//   it). It only moves inside a transaction that commits what it covers, so a crash cannot leave
//   it claiming more. Records above it (written by an older spl or an offline writer, or by us
//   since its last move) are indexed at the next start by a seq-range scan. It moves at most once
//   a second and at shutdown, not at every commit: that saves a meta page write per commit, and
//   leaves at most a second of ingest to re-scan after a kill -9.
// Records are never deleted and SQLite gives each new row max(seq)+1, so nothing can appear at or
// below the watermark later; that is what makes the watermark (and the count kept with it) exact.
// A write from another connection while the daemon runs (`permissions-unlock --force`) was not
// noted: PRAGMA data_version shows it, and the watermark then moves only after a range scan.
import type { Database, Statement } from "bun:sqlite";
import { filterSql, matchesAny, type RecordFilter } from "../records/filter";
import { FOLD_INDEX_SQL } from "./schema";
import type { Envelope, StoredRecord } from "../records/types";
import { COLUMNS, type RecordRow, rowToRecord } from "./rows";

const FILTERS_KEY = "fold_index_filters";
const THROUGH_KEY = "fold_index_through";
/** Seqs per catch-up transaction: small enough that /health answers "starting" in between. */
const CATCH_UP_CHUNK = 50_000;
/** How often a commit also moves the watermark (see above). */
const ADVANCE_EVERY_MS = 1000;

export interface Watermark {
  /** Every record with a seq up to this one is indexed. */
  seq: number;
  /** How many records have a seq up to `seq` (the store's record count without a full COUNT). */
  records: number;
}

/** What the next catch-up has to do, and why (for the log line of a slow start). */
export interface CatchUpPlan {
  /** Seqs above this are indexed by the catch-up. */
  from: number;
  /** The highest seq in the store when planned. */
  to: number;
  /** Why every record is indexed (no index yet, other filters); null when only a tail is. */
  reindex: string | null;
}

/** One filter in a canonical form, so the same set always gives the same signature. */
function canonical(f: RecordFilter): RecordFilter {
  return {
    ...(f.act !== undefined ? { act: f.act } : {}),
    ...(f.threads !== undefined ? { threads: [...new Set(f.threads)].sort() } : {}),
    ...(f.bodyField !== undefined ? { bodyField: f.bodyField } : {}),
  };
}

/** The filter set as stored in meta: the union is what counts, so order and repeats do not. */
export function filterSignature(filters: readonly RecordFilter[]): string {
  return JSON.stringify([...new Set(filters.map((f) => JSON.stringify(canonical(f))))].sort().map((s) => JSON.parse(s)));
}

export class FoldIndex {
  private filters: readonly RecordFilter[] = [];
  private matches: (env: Envelope) => boolean = () => false;
  private s: Record<string, Statement> | null = null;
  private rangeParams: string[] = [];
  /** Covers every record (catch-up done): from now on commits move the watermark. */
  private live = false;
  /** Records may have been inserted since the watermark last moved. */
  private dirty = false;
  private lastAdvance = -Infinity;
  /** PRAGMA data_version when the watermark last moved: another connection's commit changes it. */
  private seenVersion = -1;

  constructor(private readonly db: Database) {}

  /** The watermark stored in the file, or null when it has none (no index, or an older spl's store). */
  watermark(): Watermark | null {
    const hasMeta = this.db.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").get();
    if (!hasMeta) return null;
    const row = this.db.query("SELECT value FROM meta WHERE key = ?").get(THROUGH_KEY) as { value: string } | null;
    if (!row) return null;
    let w: Watermark;
    try {
      w = JSON.parse(row.value);
    } catch {
      return null; // unreadable: treated as no index, so the next start rebuilds it
    }
    return Number.isSafeInteger(w?.seq) && Number.isSafeInteger(w?.records) ? w : null;
  }

  /**
   * Indexes records `filters` match from now on (the engine's fold filters, handed over before
   * it writes). Answers what catchUp() will do; the index serves reads only after it.
   */
  use(filters: readonly RecordFilter[]): CatchUpPlan {
    const signature = filterSignature(filters);
    this.db.exec(FOLD_INDEX_SQL);
    const parts = filters.map(filterSql);
    const where = parts.length ? parts.map((p) => p.sql).join(" OR ") : "0";
    this.rangeParams = parts.flatMap((p) => p.params);
    this.s = {
      add: this.db.prepare("INSERT OR IGNORE INTO fold_records (seq) VALUES (?)"),
      // The filters as SQL over a seq range: catch-up chunks, and records another connection wrote.
      indexRange: this.db.prepare(`INSERT OR IGNORE INTO fold_records (seq) SELECT seq FROM records WHERE seq > ? AND seq <= ? AND (${where})`),
      dataVersion: this.db.prepare("PRAGMA data_version"),
      // One statement from what is on disk in this transaction: no counter in memory can drift.
      advance: this.db.prepare(
        `UPDATE meta SET value = (
           SELECT json_object('seq', COALESCE(MAX(r.seq), w.seq), 'records', w.records + COUNT(r.seq))
           FROM (SELECT json_extract(value, '$.seq') AS seq, json_extract(value, '$.records') AS records
                 FROM meta WHERE key = '${THROUGH_KEY}') AS w
           LEFT JOIN records AS r ON r.seq > w.seq)
         WHERE key = '${THROUGH_KEY}'`,
      ),
    };
    this.filters = filters.map(canonical);
    this.matches = matchesAny(this.filters);
    this.live = false;
    const stored = this.db.query("SELECT value FROM meta WHERE key = ?").get(FILTERS_KEY) as { value: string } | null;
    let w = this.watermark();
    let reindex: string | null = null;
    if (!stored || !w) reindex = "the store has no fold index yet (a new store, or one an older spl wrote)";
    else if (stored.value !== signature) reindex = "the set of fold filters changed (a fold was added or removed)";
    if (reindex) {
      w = { seq: 0, records: 0 };
      this.db.transaction(() => {
        this.db.exec("DELETE FROM fold_records");
        const put = this.db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
        put.run(FILTERS_KEY, signature);
        put.run(THROUGH_KEY, JSON.stringify(w));
        put.finalize();
      }).immediate();
    }
    return { from: w!.seq, to: this.maxSeq(), reindex };
  }

  /** The insert path's one call: index the record if a filter matches. Inside its transaction. */
  note(seq: number, env: Envelope): void {
    this.dirty = true;
    if (this.matches(env)) this.s!.add!.run(seq);
  }

  /** Just before COMMIT: move the watermark over what is committed, if it is time to. */
  beforeCommit(): void {
    if (!this.live || !this.dirty || performance.now() - this.lastAdvance < ADVANCE_EVERY_MS) return;
    this.advance();
  }

  /** Moves the watermark to the last record; inside a write transaction. */
  private advance(): void {
    const version = this.dataVersion();
    if (version !== this.seenVersion) {
      // Another connection committed since the last move: its records were never noted.
      const from = this.watermark()!.seq;
      this.s!.indexRange!.run(from, this.maxSeq(), ...this.rangeParams);
    }
    this.s!.advance!.run();
    this.seenVersion = version;
    this.dirty = false;
    this.lastAdvance = performance.now();
  }

  private dataVersion(): number {
    return (this.s!.dataVersion!.get() as { data_version: number }).data_version;
  }

  /** After a ROLLBACK: a move made in it is undone too, so the next commit moves it again. */
  rolledBack(): void {
    this.dirty = true;
    this.lastAdvance = -Infinity;
    this.seenVersion = -1;
  }

  /** Moves the watermark over everything committed (clean shutdown: the next start scans nothing). */
  flush(): void {
    if (!this.live || !this.dirty) return;
    this.db.transaction(() => this.advance()).immediate();
  }

  /**
   * Indexes the records above the watermark by seq-range scans with the filters as SQL, one
   * transaction per chunk (each advances the watermark over its range). Yields the seq reached
   * after each chunk. Records committed meanwhile are noted as they land; the last loop covers
   * them too. Then the index is live.
   */
  *catchUp(chunk = CATCH_UP_CHUNK): Generator<number> {
    if (!this.s) throw new Error("the fold index has no filters — call use() first");
    const count = this.db.prepare("SELECT COUNT(*) AS n FROM records WHERE seq > ? AND seq <= ?");
    const put = this.db.prepare(`UPDATE meta SET value = ? WHERE key = '${THROUGH_KEY}'`);
    let version: number;
    try {
      for (;;) {
        // Read first: a commit by another connection after the check below still changes it.
        version = this.dataVersion();
        const w = this.watermark()!;
        const to = this.maxSeq();
        if (w.seq >= to) break;
        const end = Math.min(to, w.seq + chunk);
        this.db.transaction(() => {
          this.s!.indexRange!.run(w.seq, end, ...this.rangeParams);
          const n = (count.get(w.seq, end) as { n: number }).n;
          put.run(JSON.stringify({ seq: end, records: w.records + n }));
        }).immediate();
        yield end;
      }
    } finally {
      count.finalize();
      put.finalize();
    }
    this.live = true;
    this.dirty = false;
    this.lastAdvance = performance.now();
    this.seenVersion = version;
  }

  /** The indexed records, in store order, in pages (rebuild_from_store() reads these). */
  *records(pageSize = 5000): Generator<StoredRecord> {
    if (!this.live) throw new Error("the fold index is read before its catch-up finished — call catchUp() first");
    const stmt = this.db.prepare(
      `SELECT ${COLUMNS.split(", ").map((c) => `r.${c}`).join(", ")} FROM fold_records AS f JOIN records AS r ON r.seq = f.seq
       WHERE f.seq > ? ORDER BY f.seq LIMIT ?`,
    );
    let after = 0;
    try {
      for (;;) {
        const rows = stmt.all(after, pageSize) as RecordRow[];
        for (const r of rows) yield rowToRecord(r);
        if (rows.length < pageSize) return;
        after = rows[rows.length - 1]!.seq;
      }
    } finally {
      stmt.finalize();
    }
  }

  private maxSeq(): number {
    return (this.db.query("SELECT COALESCE(MAX(seq), 0) AS m FROM records").get() as { m: number }).m;
  }
}

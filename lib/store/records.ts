// Reads and writes of the record log. One writer (the daemon); every method is synchronous
// and meant to run inside the caller's transaction when it writes.
import type { Database, Statement } from "bun:sqlite";
import type { Envelope, StoredRecord } from "../records/types";
import { type PreparedRecord, RecordError, sealRecord } from "../records/envelope";
import { filterSql, type RecordFilter } from "../records/filter";
import { FoldIndex } from "./fold-index";
import { StoreReader } from "./reader";
import { COLUMNS, type RecordRow as Row, rowToRecord } from "./rows";

export { rowToRecord };

export interface InsertResult {
  status: "created" | "duplicate";
  record: StoredRecord;
}

export interface ListFilter {
  thread?: string;
  actor?: string;
  act?: string;
  /** Leave out these threads' records (reserved threads the caller may not read). */
  exceptThreads?: readonly string[];
  /** Return records with a sequence greater than this (the cursor). */
  after?: number;
  limit: number;
}

export interface Page<T> {
  data: T[];
  has_more: boolean;
  next_cursor: string | null;
}

export interface ThreadSummary {
  thread: string;
  record_count: number;
  first_seen: number;
  last_seen: number;
  status: "open" | "closed";
}

export interface ThreadState {
  thread: string;
  record_count: number;
  last_clock: number | null;
  actor_clocks: Record<string, number>;
  status: "open" | "closed";
}

/** How many of the newest records recentThreads() looks at. */
export const RECENT_WINDOW = 1000;

function threadSummary(r: any): ThreadSummary {
  return { thread: r.thread, record_count: r.record_count, first_seen: r.first_seen, last_seen: r.last_seen, status: r.closed ? "closed" : "open" };
}

/** Whether a record closes its thread (a fulfilling KNOW or a cancelling DO). */
export function closesThread(env: Pick<Envelope, "act" | "body">): boolean {
  return (env.act === "KNOW" && env.body.fulfills != null) || (env.act === "DO" && env.body.cancels != null);
}

export class RecordStore extends StoreReader {
  private s: Record<string, Statement>;
  private records: number;
  private threadTotal: number;
  /**
   * Highest clock per (thread, actor) this store has written or looked up: SQLite's descending
   * seek for MAX(clock) costs ~7 µs even on an index. Exact because every insert passes here
   * (one writer per store) and a rolled-back transaction calls resync(), which clears it.
   */
  private readonly lastClocks = new Map<string, number>();
  /** Which records the engine's folds consume (rebuild_from_store() reads only those). */
  readonly foldIndex: FoldIndex;

  constructor(db: Database) {
    super(db);
    this.foldIndex = new FoldIndex(db);
    const q = (sql: string) => db.prepare(sql);
    this.s = {
      insert: q(
        `INSERT INTO records (id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      ),
      newThread: q(
        `INSERT INTO threads (thread, record_count, first_seq, last_seq, first_seen, last_seen, closed)
         VALUES (?, 1, ?, ?, ?, ?, ?)`,
      ),
      bumpThread: q(
        `UPDATE threads SET record_count = record_count + 1, last_seq = ?, last_seen = ?, closed = MAX(closed, ?)
         WHERE thread = ?`,
      ),
      byId: q(`SELECT ${COLUMNS} FROM records WHERE id = ?`),
      bySeq: q(`SELECT ${COLUMNS} FROM records WHERE seq = ?`),
      atClock: q("SELECT id FROM records WHERE thread = ? AND actor = ? AND clock = ?"),
      maxClock: q("SELECT MAX(clock) AS c FROM records WHERE thread = ? AND actor = ?"),
      maxThreadClock: q("SELECT MAX(clock) AS c FROM records WHERE thread = ?"),
      actorOf: q("SELECT actor FROM records WHERE id = ?"),
      thread: q("SELECT * FROM threads WHERE thread = ?"),
      actorClocks: q("SELECT actor, MAX(clock) AS c FROM records WHERE thread = ? GROUP BY actor"),
    };
    this.records = 0;
    this.threadTotal = 0;
    this.resync();
  }

  /** Re-reads the counters from disk (startup, and after a rolled-back transaction). */
  resync(): void {
    // From the fold index's watermark plus the records above it: no full COUNT on a large store.
    const w = this.foldIndex.watermark();
    this.records = w ? w.records + this.recordCountAfter(w.seq) : this.recordCount();
    this.threadTotal = this.threadCount();
    this.lastClocks.clear();
  }

  get counts() {
    return { records: this.records, threads: this.threadTotal };
  }

  /**
   * Explicit transaction control for the ingest queue's group commit, where one transaction spans
   * many submissions and each submission of several records is a savepoint it can undo alone.
   */
  readonly tx = (() => {
    const run = (sql: string) => {
      const stmt = this.db.prepare(sql);
      return () => void stmt.run();
    };
    const commit = run("COMMIT");
    const rollback = run("ROLLBACK");
    return {
      begin: run("BEGIN IMMEDIATE"),
      commit: () => {
        this.foldIndex.beforeCommit();
        commit();
      },
      rollback: () => {
        this.foldIndex.rolledBack();
        rollback();
      },
      savepoint: run("SAVEPOINT submission"),
      rollbackToSavepoint: run("ROLLBACK TO submission"),
      releaseSavepoint: run("RELEASE submission"),
    };
  })();

  /** Runs `fn` in one write transaction (BEGIN IMMEDIATE): all of it commits, or none. */
  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(() => {
        const out = fn();
        this.foldIndex.beforeCommit();
        return out;
      }).immediate();
    } catch (err) {
      this.foldIndex.rolledBack();
      this.resync();
      throw err;
    }
  }

  /** The clock the store would give the next record by `actor` on `thread` (max + 1, or 0). */
  nextClock(thread: string, actor: string): number {
    const key = `${thread.length}:${thread}${actor}`;
    let max = this.lastClocks.get(key);
    if (max === undefined) {
      max = (this.s.maxClock!.get(thread, actor) as { c: number | null }).c ?? -1;
      this.remember(key, max);
    }
    return max + 1;
  }

  private remember(key: string, clock: number): void {
    if (this.lastClocks.size >= 100_000) this.lastClocks.clear();
    this.lastClocks.set(key, clock);
  }

  /** One above every clock on `thread`, whoever wrote it (0 on an empty thread). */
  nextClockOnThread(thread: string): number {
    const row = this.s.maxThreadClock!.get(thread) as { c: number | null };
    return row.c === null ? 0 : row.c + 1;
  }

  /**
   * Inserts one validated record: assigns the clock when the client left it out, computes the
   * id, and answers duplicate for identical content. Same (thread, actor, clock) with other
   * content is a 409. Call inside a transaction. `check` sees the record with the clock it will be
   * stored at, and may throw to stop the insert.
   */
  insert(p: PreparedRecord, nowSecs: number, check?: (env: Envelope) => void): InsertResult {
    const env = p.env;
    if (!p.clockGiven) env.clock = this.nextClock(env.thread, env.actor);
    check?.(env);
    const id = sealRecord(p);
    const parents = JSON.stringify(env.parents);
    const res = this.s.insert!.run(id, env.thread, env.actor, env.act, env.clock, env.data_type, env.judged_by, parents, p.bodyJson, nowSecs);
    if (res.changes === 1) {
      const seq = Number(res.lastInsertRowid);
      this.foldIndex.note(seq, env);
      const closed = closesThread(env) ? 1 : 0;
      this.records++;
      const key = `${env.thread.length}:${env.thread}${env.actor}`;
      const known = this.lastClocks.get(key);
      if (known !== undefined && env.clock > known) this.lastClocks.set(key, env.clock);
      // Most records land on a thread that exists: one UPDATE, and an INSERT only when it is new.
      if (this.s.bumpThread!.run(seq, nowSecs, closed, env.thread).changes === 0) {
        this.s.newThread!.run(env.thread, seq, seq, nowSecs, nowSecs, closed);
        this.threadTotal++;
      }
      return { status: "created", record: { ...env, id, sequence: seq, created_at: nowSecs } };
    }
    const existing = this.get(id);
    if (existing) return { status: "duplicate", record: existing };
    const holder = this.s.atClock!.get(env.thread, env.actor, env.clock) as { id: string } | null;
    throw new RecordError(
      "CLOCK_CONFLICT",
      `${env.actor} already wrote clock ${env.clock} on thread ${env.thread} (record ${holder?.id ?? "?"}) with different content — ` +
        "use the next clock (GET /v1/threads/<id>/state shows actor_clocks) or omit clock",
      409,
    );
  }

  get(id: string): StoredRecord | null {
    const row = this.s.byId!.get(id) as Row | null;
    return row ? rowToRecord(row) : null;
  }

  actorOf(id: string): string | undefined {
    return (this.s.actorOf!.get(id) as { actor: string } | null)?.actor;
  }

  list(f: ListFilter): Page<StoredRecord> {
    const where: string[] = ["seq > ?"];
    const args: (string | number)[] = [f.after ?? 0];
    if (f.thread !== undefined) where.push("thread = ?"), args.push(f.thread);
    if (f.actor !== undefined) where.push("actor = ?"), args.push(f.actor);
    if (f.act !== undefined) where.push("act = ?"), args.push(f.act);
    if (f.exceptThreads?.length) where.push(`thread NOT IN (${f.exceptThreads.map(() => "?").join(",")})`), args.push(...f.exceptThreads);
    const rows = this.db
      .query(`SELECT ${COLUMNS} FROM records WHERE ${where.join(" AND ")} ORDER BY seq LIMIT ?`)
      .all(...args, f.limit + 1) as Row[];
    const has_more = rows.length > f.limit;
    const data = rows.slice(0, f.limit).map(rowToRecord);
    return { data, has_more, next_cursor: has_more ? String(data[data.length - 1]!.sequence) : null };
  }

  /** Every record in store order, in pages, for folds at startup. */
  *scan(pageSize = 5000): Generator<StoredRecord> {
    const stmt = this.db.prepare(`SELECT ${COLUMNS} FROM records WHERE seq > ? ORDER BY seq LIMIT ?`);
    let after = 0;
    for (;;) {
      const rows = stmt.all(after, pageSize) as Row[];
      for (const r of rows) yield rowToRecord(r);
      if (rows.length < pageSize) return;
      after = rows[rows.length - 1]!.seq;
    }
  }

  /** The records any of `filters` matches, in store order, in pages: a full scan (tests compare the fold index with it). */
  *scanMatching(filters: readonly RecordFilter[], pageSize = 5000): Generator<StoredRecord> {
    const parts = filters.map(filterSql);
    const where = parts.length ? parts.map((p) => p.sql).join(" OR ") : "0";
    const stmt = this.db.prepare(`SELECT ${COLUMNS} FROM records WHERE seq > ? AND (${where}) ORDER BY seq LIMIT ?`);
    const params = parts.flatMap((p) => p.params);
    let after = 0;
    try {
      for (;;) {
        const rows = stmt.all(after, ...params, pageSize) as Row[];
        for (const r of rows) yield rowToRecord(r);
        if (rows.length < pageSize) return;
        after = rows[rows.length - 1]!.seq;
      }
    } finally {
      stmt.finalize();
    }
  }

  threads(after: number, limit: number): Page<ThreadSummary> {
    const rows = this.db
      .query("SELECT * FROM threads WHERE first_seq > ? ORDER BY first_seq LIMIT ?")
      .all(after, limit + 1) as any[];
    const has_more = rows.length > limit;
    const page = rows.slice(0, limit);
    return { data: page.map(threadSummary), has_more, next_cursor: has_more ? String(page[page.length - 1].first_seq) : null };
  }

  /**
   * The threads written to most recently, newest first: those of the last RECENT_WINDOW records
   * (read backwards on the primary key, so the cost does not grow with the store).
   */
  recentThreads(limit: number): ThreadSummary[] {
    const rows = this.db
      .query(
        `SELECT t.* FROM threads t WHERE t.thread IN (SELECT thread FROM (SELECT thread FROM records ORDER BY seq DESC LIMIT ${RECENT_WINDOW}))
         ORDER BY t.last_seq DESC LIMIT ?`,
      )
      .all(limit) as any[];
    return rows.map(threadSummary);
  }

  /** Threads not yet closed by a fulfilling KNOW or cancelling DO. */
  activeThreads(): number {
    return (this.db.query("SELECT COUNT(*) AS n FROM threads WHERE closed = 0").get() as { n: number }).n;
  }

  threadState(thread: string): ThreadState | null {
    const t = this.s.thread!.get(thread) as any;
    if (!t) return null;
    const actor_clocks: Record<string, number> = {};
    let last: number | null = null;
    for (const r of this.s.actorClocks!.all(thread) as { actor: string; c: number }[]) {
      actor_clocks[r.actor] = r.c;
      if (last === null || r.c > last) last = r.c;
    }
    return { thread, record_count: t.record_count, last_clock: last, actor_clocks, status: t.closed ? "closed" : "open" };
  }
}

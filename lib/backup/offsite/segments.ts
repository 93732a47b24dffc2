// Segments: committed records shipped off-host between snapshots (README "Continuous
// replication"). One object per range of store sequences,
//   <instance-key>/segments/<generation>/<first-seq>-<last-seq>.jsonl.zst  (+ .sha256)
// holding one JSON line per record in store order, with every stored column:
//   {"seq":7,"id":"…","thread":"…","actor":"…","act":"KNOW","clock":0,"data_type":"VOID",
//    "judged_by":null,"parents":[],"body":{…},"created_at":1764000000}
// A restore recomputes each record's id from its content (the canonical envelope) and refuses a
// line whose id does not match, so a segment cannot smuggle in or alter a record unnoticed; the
// sequence ranges and the ids at their seams (prev_id, last_id in the .sha256) chain segments to
// each other and to the snapshot they continue.
import type { Database, Statement } from "bun:sqlite";
import { UserError } from "../../errors";
import { canonicalJson } from "../../records/canonical";
import { MAX_RECORD_BYTES } from "../../records/envelope";
import { hashedJson, sha256Hex } from "../../records/id";
import { ACTS, DATA_TYPES } from "../../records/types";
import { closesThread } from "../../store/records";
import { COLUMNS, type RecordRow } from "../../store/rows";
import type { Chunks } from "./remote";

export const SEGMENTS = "segments";

/** A generation: replication of one lineage of the store, from its start (README). */
export const GENERATION = /^\d{8}-\d{6}-[0-9a-f]{4}$/;
const TILE = /^segments\/(\d{8}-\d{6}-[0-9a-f]{4})\/(\d+)-(\d+)\.jsonl\.zst$/;

export interface TileName {
  generation: string;
  first: number;
  last: number;
}

/** Key of a segment, relative to the instance folder. */
export const tileKey = (t: TileName) => `${SEGMENTS}/${t.generation}/${t.first}-${t.last}.jsonl.zst`;

/** Parses a key relative to the instance folder; null when it is not a segment. */
export function parseTileKey(key: string): TileName | null {
  const m = TILE.exec(key);
  if (!m) return null;
  const first = Number(m[2]);
  const last = Number(m[3]);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || first < 1 || last < first) return null;
  return { generation: m[1]!, first, last };
}

/** The records columns a segment line carries, in the order read from the store. */
export const SEGMENT_SELECT = `SELECT ${COLUMNS} FROM records`;

/** One record as a segment line (built from the stored text: the body is already canonical). */
export function lineOf(r: RecordRow): string {
  return (
    `{"seq":${r.seq},"id":${JSON.stringify(r.id)},"thread":${JSON.stringify(r.thread)},"actor":${JSON.stringify(r.actor)}` +
    `,"act":${JSON.stringify(r.act)},"clock":${r.clock},"data_type":${JSON.stringify(r.data_type)}` +
    `,"judged_by":${r.judged_by === null ? "null" : JSON.stringify(r.judged_by)},"parents":${r.parents},"body":${r.body},"created_at":${r.created_at}}\n`
  );
}

/** Lines of the records with seq in (after, through], read from `db` in pages. */
export async function* recordLines(db: Database, after: number, through: number, pageRows = 2000): Chunks {
  const stmt = db.prepare(`${SEGMENT_SELECT} WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`);
  const enc = new TextEncoder();
  try {
    for (let from = after; from < through; ) {
      const rows = stmt.all(from, through, pageRows) as RecordRow[];
      if (!rows.length) return;
      let text = "";
      for (const r of rows) text += lineOf(r);
      yield enc.encode(text);
      from = rows[rows.length - 1]!.seq;
      if (rows.length < pageRows) return;
      await Promise.resolve(); // let other work on this thread run between pages
    }
  } finally {
    stmt.finalize();
  }
}

/** A record read back from a segment line, id verified: the stored row, parents and body parsed. */
export type SegmentRecord = Omit<RecordRow, "parents" | "body"> & { parents: string[]; body: Record<string, unknown>; bodyJson: string };

const isStr = (v: unknown): v is string => typeof v === "string";
const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

/** Parses and verifies one line; throws with `where` (segment and line) when anything is off. */
export function parseLine(line: string, where: string): SegmentRecord {
  let o: any;
  try {
    o = JSON.parse(line);
  } catch {
    throw new UserError(`${where} is not a JSON record`, "the segment is damaged: restore to a point before it (--to-seq), or from another copy");
  }
  const ok =
    o && typeof o === "object" && isInt(o.seq) && o.seq > 0 && isStr(o.id) && isStr(o.thread) && isStr(o.actor) && (ACTS as readonly string[]).includes(o.act) &&
    isInt(o.clock) && (DATA_TYPES as readonly string[]).includes(o.data_type) && (o.judged_by === null || isStr(o.judged_by)) &&
    Array.isArray(o.parents) && o.parents.every(isStr) && o.body && typeof o.body === "object" && !Array.isArray(o.body) && isInt(o.created_at);
  if (!ok) throw new UserError(`${where} is not a complete record`, "the segment is damaged: restore to a point before it (--to-seq), or from another copy");
  let bodyJson: string;
  try {
    bodyJson = canonicalJson(o.body, 1);
  } catch (err) {
    throw new UserError(`${where}: ${(err as Error).message}`, "the segment is damaged: restore to a point before it (--to-seq)");
  }
  const id = sha256Hex(hashedJson({ act: o.act, actor: o.actor, clock: o.clock, data_type: o.data_type, parents: o.parents, thread: o.thread }, bodyJson));
  if (id !== o.id) {
    throw new UserError(
      `${where}: record ${o.seq} has id ${String(o.id).slice(0, 16)}… but its content hashes to ${id.slice(0, 16)}… — refused, nothing was replaced`,
      "the segment was altered or damaged: restore to a point before it (--to-seq), or from another copy",
    );
  }
  return { ...o, bodyJson };
}

/** Splits a byte stream into lines (a record line is at most a few MiB). */
export async function* lines(src: Chunks, where: string): AsyncGenerator<string> {
  const dec = new TextDecoder("utf-8", { fatal: true });
  let rest = "";
  try {
    for await (const chunk of src) {
      rest += dec.decode(chunk, { stream: true });
      let nl: number;
      let from = 0;
      while ((nl = rest.indexOf("\n", from)) >= 0) {
        yield rest.slice(from, nl);
        from = nl + 1;
      }
      rest = rest.slice(from);
      if (rest.length > 8 * MAX_RECORD_BYTES) throw new UserError(`${where} holds a line longer than any record`, "the segment is damaged: restore to a point before it (--to-seq)");
    }
    rest += dec.decode();
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${where} is not UTF-8 text (${(err as Error).message})`, "the segment is damaged: restore to a point before it (--to-seq)");
  }
  if (rest) yield rest;
}

/**
 * Appends verified segment records to a store file being restored: the records row with its
 * original seq and time, and the thread summary the daemon keeps beside it (lib/store/records.ts).
 * Anything the daemon derives besides (the fold index) catches up at its next start.
 */
export class Appender {
  private s: { insert: Statement; bump: Statement | null; newThread: Statement | null };
  constructor(
    db: Database,
    /** The last record already in the store (0 and null when empty). */
    public lastSeq: number,
    public lastId: string | null,
  ) {
    // A snapshot of a schema-1 store has no thread summary yet: the daemon's migration builds it.
    const summary = db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'threads'").get() !== null;
    this.s = {
      insert: db.prepare(
        `INSERT INTO records (seq, id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      bump: summary ? db.prepare(`UPDATE threads SET record_count = record_count + 1, last_seq = ?, last_seen = ?, closed = MAX(closed, ?) WHERE thread = ?`) : null,
      newThread: summary ? db.prepare(`INSERT INTO threads (thread, record_count, first_seq, last_seq, first_seen, last_seen, closed) VALUES (?, 1, ?, ?, ?, ?, ?)`) : null,
    };
  }

  /** Adds `r` (seq above lastSeq). */
  add(r: SegmentRecord): void {
    this.s.insert.run(r.seq, r.id, r.thread, r.actor, r.act, r.clock, r.data_type, r.judged_by, JSON.stringify(r.parents), r.bodyJson, r.created_at);
    const closed = closesThread({ act: r.act as any, body: r.body }) ? 1 : 0;
    if (this.s.bump && this.s.bump.run(r.seq, r.created_at, closed, r.thread).changes === 0) this.s.newThread!.run(r.thread, r.seq, r.seq, r.created_at, r.created_at, closed);
    this.lastSeq = r.seq;
    this.lastId = r.id;
  }

  close(): void {
    for (const s of Object.values(this.s)) s?.finalize();
  }
}

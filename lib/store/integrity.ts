// Startup integrity checks. They run before SQLite opens the store read-write, because
// SQLite silently ignores a WAL with a bad header and may reset it on the next write: the
// evidence of damage must survive until an operator has looked at it.
import type { Database } from "bun:sqlite";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { UserError } from "../errors";
import { StoreReader } from "./reader";

const SQLITE_MAGIC = "SQLite format 3\0";

export class StoreDamagedError extends UserError {
  constructor(
    readonly storePath: string,
    readonly problem: string,
    readonly sqliteError: string,
  ) {
    super(
      `store ${storePath} is damaged: ${problem} (SQLite: ${sqliteError})`,
      `recover it: stop spl, move ${storePath} and its -wal/-shm files aside ` +
        `(mv ${storePath} ${storePath}.corrupt.$(date +%s)), then 'spl restore <backup file>' ` +
        `or copy your off-host backup to ${storePath}; 'spl backup list' shows the backups on this machine`,
    );
  }
}

function readHead(path: string, n: number): Buffer {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(n);
    const got = readSync(fd, buf, 0, n, 0);
    return buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

/** SQLite's WAL checksum over 32-bit words of buf[start, end), continuing from (s0, s1). */
function walChecksum(buf: Buffer, start: number, end: number, bigEndian: boolean, s0 = 0, s1 = 0): [number, number] {
  for (let i = start; i < end; i += 8) {
    const x0 = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
    const x1 = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
    s0 = (s0 + x0 + s1) >>> 0;
    s1 = (s1 + x1 + s0) >>> 0;
  }
  return [s0, s1];
}

const WAL_HEADER = 32;
const FRAME_HEADER = 24;

function walHeaderValid(w: Buffer): boolean {
  const magic = w.length >= WAL_HEADER ? w.readUInt32BE(0) : 0;
  if (magic !== 0x377f0682 && magic !== 0x377f0683) return false;
  const [s0, s1] = walChecksum(w, 0, 24, magic === 0x377f0683);
  return s0 === w.readUInt32BE(24) && s1 === w.readUInt32BE(28);
}

/**
 * The pages a WAL holds in committed frames and the database size (in pages) after its last
 * commit: what SQLite reads instead of the main file. Frames are valid while their salts match
 * the header and the running checksum holds, exactly as SQLite replays them.
 */
function committedWalPages(wal: string, pageSize: number): { pages: Set<number>; dbPages: number } | null {
  const fd = openSync(wal, "r");
  try {
    const head = Buffer.alloc(WAL_HEADER);
    if (readSync(fd, head, 0, WAL_HEADER, 0) !== WAL_HEADER || !walHeaderValid(head)) return null;
    if (head.readUInt32BE(8) !== pageSize) return null;
    const bigEndian = head.readUInt32BE(0) === 0x377f0683;
    let [s0, s1] = [head.readUInt32BE(24), head.readUInt32BE(28)];
    const frame = Buffer.alloc(FRAME_HEADER + pageSize);
    const pages = new Set<number>();
    let pending: number[] = [];
    let dbPages = 0;
    for (let off = WAL_HEADER; readSync(fd, frame, 0, frame.length, off) === frame.length; off += frame.length) {
      if (frame.readUInt32BE(8) !== head.readUInt32BE(16) || frame.readUInt32BE(12) !== head.readUInt32BE(20)) break;
      [s0, s1] = walChecksum(frame, 0, 8, bigEndian, s0, s1);
      [s0, s1] = walChecksum(frame, FRAME_HEADER, frame.length, bigEndian, s0, s1);
      if (s0 !== frame.readUInt32BE(16) || s1 !== frame.readUInt32BE(20)) break;
      pending.push(frame.readUInt32BE(0));
      const commitSize = frame.readUInt32BE(4);
      if (commitSize > 0) {
        for (const p of pending) pages.add(p);
        pending = [];
        dbPages = commitSize;
      }
    }
    return dbPages > 0 ? { pages, dbPages } : null;
  } finally {
    closeSync(fd);
  }
}

/**
 * A main file shorter than its header says is what a crash in the middle of a checkpoint leaves
 * (page 1 is copied from the WAL before the pages after it). It is no damage when the WAL holds
 * every page the file lacks: SQLite reads those from the WAL and the next checkpoint rewrites them.
 */
function walCoversMissingPages(storePath: string, size: number, pageSize: number): boolean {
  const wal = `${storePath}-wal`;
  if (!existsSync(wal)) return false;
  const view = committedWalPages(wal, pageSize);
  if (!view) return false;
  for (let p = Math.floor(size / pageSize) + 1; p <= view.dbPages; p++) if (!view.pages.has(p)) return false;
  return true;
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, "; ").trim();
}

/** What SQLite itself says about the file, for the error message. */
function sqliteVerdict(path: string): string {
  try {
    // immutable: no locks and no -wal/-shm created beside a damaged file.
    const reader = StoreReader.open(path, "immutable");
    try {
      return oneLine(reader.quickCheck()) || "ok";
    } finally {
      reader.close();
    }
  } catch (err) {
    return oneLine((err as Error).message);
  }
}

/** File-level checks on hub.db and hub.db-wal, judged as SQLite reads them; throws StoreDamagedError. */
export function checkStoreFiles(storePath: string): void {
  const size = statSync(storePath).size;
  if (size === 0) return; // an empty file is a new, empty store to SQLite
  const head = readHead(storePath, 100);
  if (head.length < 100 || head.subarray(0, 16).toString("latin1") !== SQLITE_MAGIC) {
    throw new StoreDamagedError(storePath, "the file header is not a SQLite header", sqliteVerdict(storePath));
  }
  const pageSize = head.readUInt16BE(16) === 1 ? 65536 : head.readUInt16BE(16);
  const pageCount = head.readUInt32BE(28);
  if (
    pageSize >= 512 &&
    pageCount > 0 &&
    size < pageSize * pageCount &&
    head.readUInt32BE(24) === head.readUInt32BE(92) &&
    !walCoversMissingPages(storePath, size, pageSize)
  ) {
    throw new StoreDamagedError(
      storePath,
      `the file is truncated (${size} bytes, header says ${pageCount} pages of ${pageSize})`,
      sqliteVerdict(storePath),
    );
  }
  const wal = `${storePath}-wal`;
  if (existsSync(wal) && statSync(wal).size > 0) {
    const valid = walHeaderValid(readHead(wal, WAL_HEADER));
    if (!valid) {
      throw new StoreDamagedError(
        storePath,
        `its write-ahead log ${wal} has an invalid header (SQLite would silently discard it)`,
        "WAL header magic/checksum mismatch",
      );
    }
  }
}

/** PRAGMA quick_check on an open store; throws StoreDamagedError on anything but "ok". */
export function quickCheck(db: Database, storePath: string): void {
  let result: string;
  try {
    const rows = db.query("PRAGMA quick_check").all() as { quick_check: string }[];
    result = rows.map((r) => r.quick_check).join("; ");
  } catch (err) {
    throw new StoreDamagedError(storePath, "SQLite cannot read it", oneLine((err as Error).message));
  }
  // quick_check answers can span lines; the error must stay one line (the CLI prints the last
  // `error:` line of a detached daemon's output, recovery steps included).
  if (result !== "ok") throw new StoreDamagedError(storePath, "quick_check found damage", oneLine(result).slice(0, 500));
}

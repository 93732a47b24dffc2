// Startup integrity checks (SPEC 4). They run before SQLite opens the store read-write, because
// SQLite silently ignores a WAL with a bad header and may reset it on the next write: the
// evidence of damage must survive until an operator has looked at it.
import { constants, Database } from "bun:sqlite";
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import { UserError } from "../errors";

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

/** SQLite's WAL checksum over 32-bit words, byte order chosen by the WAL magic. */
function walChecksum(buf: Buffer, end: number, bigEndian: boolean): [number, number] {
  let s0 = 0;
  let s1 = 0;
  for (let i = 0; i < end; i += 8) {
    const x0 = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
    const x1 = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
    s0 = (s0 + x0 + s1) >>> 0;
    s1 = (s1 + x1 + s0) >>> 0;
  }
  return [s0, s1];
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, "; ").trim();
}

/** What SQLite itself says about the file, for the error message. */
function sqliteVerdict(path: string): string {
  try {
    // immutable: no locks and no -wal/-shm created beside a damaged file.
    const uri = "file:" + path.split("/").map(encodeURIComponent).join("/") + "?immutable=1";
    const db = new Database(uri, constants.SQLITE_OPEN_READONLY | constants.SQLITE_OPEN_URI);
    try {
      const rows = db.query("PRAGMA quick_check").all() as { quick_check: string }[];
      return oneLine(rows.map((r) => r.quick_check).join("; ")) || "ok";
    } finally {
      db.close();
    }
  } catch (err) {
    return oneLine((err as Error).message);
  }
}

/** File-level checks on hub.db and hub.db-wal; throws StoreDamagedError. */
export function checkStoreFiles(storePath: string): void {
  const size = statSync(storePath).size;
  if (size === 0) return; // an empty file is a new, empty store to SQLite
  const head = readHead(storePath, 100);
  if (head.length < 100 || head.subarray(0, 16).toString("latin1") !== SQLITE_MAGIC) {
    throw new StoreDamagedError(storePath, "the file header is not a SQLite header", sqliteVerdict(storePath));
  }
  const pageSize = head.readUInt16BE(16) === 1 ? 65536 : head.readUInt16BE(16);
  const pageCount = head.readUInt32BE(28);
  if (pageSize >= 512 && pageCount > 0 && size < pageSize * pageCount && head.readUInt32BE(24) === head.readUInt32BE(92)) {
    throw new StoreDamagedError(
      storePath,
      `the file is truncated (${size} bytes, header says ${pageCount} pages of ${pageSize})`,
      sqliteVerdict(storePath),
    );
  }
  const wal = `${storePath}-wal`;
  if (existsSync(wal) && statSync(wal).size > 0) {
    const w = readHead(wal, 32);
    const magic = w.length >= 32 ? w.readUInt32BE(0) : 0;
    const valid =
      (magic === 0x377f0682 || magic === 0x377f0683) &&
      (() => {
        const [s0, s1] = walChecksum(w, 24, magic === 0x377f0683);
        return s0 === w.readUInt32BE(24) && s1 === w.readUInt32BE(28);
      })();
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

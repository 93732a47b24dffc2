// The startup backup's thread (started by background.ts). It pins a read snapshot of hub.db as
// found, tells the waiting main thread, then copies, verifies and rotates while the daemon serves.
//
// Why a plain byte copy of hub.db is consistent: the main thread checkpointed the WAL with
// TRUNCATE before starting us and writes nothing until we have pinned. A read transaction begun
// on a fully backfilled WAL takes WAL read-lock 0 and reads the db file alone (wal.c
// walTryBeginRead), and a checkpoint must hold read-lock 0 exclusively to copy frames into the db
// file (wal.c walCheckpoint). So while our transaction is open, hub.db is not written; the
// daemon's commits meanwhile stay in the WAL.
declare var self: Worker;
import { Database } from "bun:sqlite";
import { closeSync, fstatSync, openSync, readSync, statSync, writeSync } from "node:fs";
import { NOT_PINNED, PINNED, type StartupWorkerReply, type StartupWorkerRequest } from "./background";
import { writeStartupBackup, type BackupLog } from "./startup";

const post = (m: StartupWorkerReply) => postMessage(m);
const log: BackupLog = {
  info: (msg, fields) => post({ type: "log", level: "info", msg, fields }),
  warn: (msg, fields) => post({ type: "log", level: "warn", msg, fields }),
  error: (msg, fields) => post({ type: "log", level: "error", msg, fields }),
  debug: (msg, fields) => post({ type: "log", level: "debug", msg, fields }),
};

function walBytes(store: string): number {
  try {
    return statSync(`${store}-wal`).size;
  } catch {
    return 0;
  }
}

/** A read transaction on hub.db whose snapshot is the db file itself (the WAL is empty). */
function pin(store: string): Database {
  const db = new Database(store, { readonly: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    db.exec("BEGIN");
    db.query("SELECT COUNT(*) FROM sqlite_master").get(); // the read transaction starts here
    // Nobody writes before we signal; a WAL with frames means the premise does not hold.
    if (walBytes(store) > 0) throw new Error(`the write-ahead log ${store}-wal is not empty`);
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

const CHUNK = 8 << 20;

/** Copies hub.db byte for byte into `tmp`, ends the read transaction, and makes the copy standalone. */
function copyPinned(reader: Database, store: string, tmp: string): void {
  const src = openSync(store, "r");
  const dst = openSync(tmp, "wx", 0o600);
  try {
    const size = fstatSync(src).size;
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let off = 0; off < size; ) {
      const n = readSync(src, buf, 0, Math.min(CHUNK, size - off), off);
      if (n === 0) throw new Error(`${store} ended at byte ${off} of ${size} while it was copied`);
      for (let w = 0; w < n; ) w += writeSync(dst, buf, w, n - w, off + w);
      off += n;
    }
    reader.exec("COMMIT"); // checkpoints may backfill again
    // Header bytes 18-19 (file format read/write version): 2 = WAL, 1 = rollback journal, as
    // VACUUM INTO writes. The copy has no -wal of its own and must open read-only as it is.
    writeSync(dst, Buffer.from([1, 1]), 0, 2, 18);
  } finally {
    closeSync(dst);
    closeSync(src);
  }
}

self.onmessage = (event: MessageEvent<StartupWorkerRequest>) => {
  const { job, flag } = event.data;
  const signal = new Int32Array(flag);
  let reader: Database;
  try {
    reader = pin(job.store);
  } catch {
    Atomics.store(signal, 0, NOT_PINNED); // the main thread takes the backup itself, before serving
    Atomics.notify(signal, 0);
    return;
  }
  Atomics.store(signal, 0, PINNED);
  Atomics.notify(signal, 0);
  try {
    post({ type: "done", info: writeStartupBackup(job, (tmp) => copyPinned(reader, job.store, tmp), log) });
  } finally {
    reader.close();
  }
};

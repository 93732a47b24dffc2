// The minimal ingest server issue 17 measures spl against: Bun.serve that parses the JSON body,
// hashes it (SHA-256), group-commits the row into the store's own schema (openStore: same
// pragmas, same indexes) once per event-loop turn, and answers 201 after COMMIT. Nothing else:
// no auth, no validation, no canonical form, no log line, no thread summary.
// With "checkpoint-thread" it also moves SQLite's checkpoints to spl's checkpoint thread
// (lib/store/checkpointer.ts), so spl's own per-request work can be compared on its own.
//   bun bench/minimal-server.ts <store.db> <port> <socket> [checkpoint-thread]   (prints "ready")
import { Checkpointer } from "../lib/store/checkpointer";
import { openStore } from "../lib/store/open";

const [path, port, socket, mode] = process.argv.slice(2);
const { db } = openStore(path!, { check: false });
const checkpointer = mode === "checkpoint-thread" ? new Checkpointer(db, path!, () => {}) : null;
checkpointer?.start();
const insert = db.prepare(
  `INSERT INTO records (id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
);
const begin = db.prepare("BEGIN IMMEDIATE");
const commit = db.prepare("COMMIT");

let queue: { rec: any; id: string; done: () => void }[] = [];
let scheduled = false;
function flush() {
  scheduled = false;
  const batch = queue;
  queue = [];
  const now = Math.floor(Date.now() / 1000);
  begin.run();
  for (const { rec, id } of batch) {
    insert.run(id, rec.thread, rec.actor, rec.act, rec.clock ?? 0, rec.data_type ?? "SCALAR", null, "[]", JSON.stringify(rec.body), now);
  }
  commit.run();
  checkpointer?.committed();
  for (const b of batch) b.done();
}

async function handle(req: Request): Promise<Response> {
  const text = await req.text();
  const rec = JSON.parse(text);
  const id = new Bun.CryptoHasher("sha256").update(text).digest("hex");
  await new Promise<void>((done) => {
    queue.push({ rec, id, done });
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  });
  return new Response(`{"id":"${id}"}`, { status: 201, headers: { "content-type": "application/json" } });
}

Bun.serve({ hostname: "127.0.0.1", port: Number(port), reusePort: false, fetch: handle });
Bun.serve({ unix: socket!, fetch: handle });
console.log("ready");

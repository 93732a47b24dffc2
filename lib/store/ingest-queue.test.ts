// IngestQueue (group commit) over a real RecordStore on an in-memory SQLite.
import { Database } from "bun:sqlite";
import { beforeEach, expect, test } from "bun:test";
import { prepareRecord, type PreparedRecord } from "../records/envelope";
import type { StoredRecord } from "../records/types";
import { RecordStore } from "./records";
import { migrate } from "./schema";
import { IngestQueue } from "./ingest-queue";
import { silentLogger } from "../log";

let store: RecordStore;
let queue: IngestQueue;
let commits: StoredRecord[][];

const rec = (body: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  prepareRecord({ thread: "th_q", actor: "did:sync:user:alice", act: "KNOW", body, ...extra });

/** A record SQLite itself refuses (NOT NULL thread): what a failing write looks like mid-batch. */
function unwritable(): PreparedRecord {
  const p = rec({ bad: true }, { clock: 99 });
  (p.env as any).thread = null;
  return p;
}

beforeEach(() => {
  const db = new Database(":memory:", { strict: true });
  migrate(db, ":memory:");
  store = new RecordStore(db);
  commits = [];
  queue = new IngestQueue(store, (created) => commits.push(created), silentLogger);
});

test("submissions made in one turn share one transaction, answered per record in order", async () => {
  const answers = await Promise.all([queue.submit([rec({ n: 1 })]), queue.submit([rec({ n: 2 }), rec({ n: 3 })]), queue.submit([rec({ n: 4 })])]);
  expect(answers.map((a) => a.map((r) => r.status))).toEqual([["created"], ["created", "created"], ["created"]]);
  expect(commits).toHaveLength(1); // one commit for all four
  expect(commits[0]!.map((r) => r.body.n)).toEqual([1, 2, 3, 4]);
  expect(commits[0]!.map((r) => r.clock)).toEqual([0, 1, 2, 3]); // clocks assigned in submission order
  // A later turn is a second transaction.
  await queue.submit([rec({ n: 5 })]);
  expect(commits).toHaveLength(2);
  expect(store.counts.records).toBe(5);
});

test("a record that fails inside the transaction rolls back the whole turn; nothing is acknowledged", async () => {
  await queue.submit([rec({ before: true })]);
  const results = await Promise.allSettled([queue.submit([rec({ n: 1 })]), queue.submit([rec({ n: 2 }), unwritable()])]);
  expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
  expect(store.counts.records).toBe(1);
  expect(store.list({ limit: 10 }).data.map((r) => r.body)).toEqual([{ before: true }]);
  expect(commits).toHaveLength(1);
  // The queue keeps working afterwards, with counters that match the disk.
  const [[r]] = await Promise.all([queue.submit([rec({ after: true })])]);
  expect(r!.status).toBe("created");
  expect(store.counts.records).toBe(2);
});

test("the same record twice is a duplicate with the same id, in one turn and across turns", async () => {
  const same = () => rec({ same: true }, { clock: 7 });
  const [[a, b]] = await Promise.all([queue.submit([same(), same()])]);
  expect(a!.status).toBe("created");
  expect(b!.status).toBe("duplicate");
  const [c] = await queue.submit([same()]);
  expect(c!.status).toBe("duplicate");
  const ids = [a, b, c].map((r) => (r as { record: StoredRecord }).record.id);
  expect(new Set(ids).size).toBe(1);
  expect(store.counts.records).toBe(1);
});

test("CLOCK_CONFLICT answers that record with 409 and commits the rest of the turn", async () => {
  const [first] = await queue.submit([rec({ v: 1 }, { clock: 0 })]);
  const [conflict, ok] = await queue.submit([rec({ v: 2 }, { clock: 0 }), rec({ v: 3 })]);
  expect(conflict!.status).toBe("error");
  const err = (conflict as { error: { code: string; status: number; message: string } }).error;
  expect(err.code).toBe("CLOCK_CONFLICT");
  expect(err.status).toBe(409);
  expect(err.message).toContain((first as { record: StoredRecord }).record.id);
  expect(ok!.status).toBe("created");
  expect((ok as { record: StoredRecord }).record.clock).toBe(1);
  expect(store.counts.records).toBe(2);
});

// The fold index against real SQLite files, a real ingest queue and the engine: it holds exactly
// what a full scan with the folds' filters finds, re-indexes once when the filters change, and
// picks up records written behind its back (an older spl, an offline writer).
import { Database } from "bun:sqlite";
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IngestQueue } from "./ingest-queue";
import { createFileLogger } from "../log";
import { prepareRecord } from "../records/envelope";
import { AUTH_THREAD, ENGINE_CONFIG_THREAD } from "../records/reserved-threads";
import { RecordError } from "../records/envelope";
import type { Fold } from "../engine/folds";
import { taskFolds, TaskTable } from "../tasks/fold";
import { Engine } from "../engine/runtime";
import { fanoutFolds, FanoutTable } from "../fanout/fold";
import { openStore } from "./open";
import { RecordStore } from "./records";
import { filterSignature } from "./fold-index";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function home() {
  const dir = mkdtempSync(join(tmpdir(), "spl-fold-index-"));
  dirs.push(dir);
  return { store: join(dir, "hub.db"), log: join(dir, "spl.log") };
}

const doCounter = (): Fold => ({ name: "do-counter", consumes: { act: "DO" }, apply: () => true });

/** A store with an engine wired to an ingest queue, as the daemon has them. */
function open(paths: ReturnType<typeof home>, extra: Array<() => Fold> = []) {
  const { db } = openStore(paths.store);
  const store = new RecordStore(db);
  const log = createFileLogger(paths.log, { level: "info" });
  const engine = new Engine(store, log);
  engine.addFolds([...taskFolds(new TaskTable()), ...fanoutFolds(new FanoutTable()), ...extra.map((make) => make())]);
  engine.open();
  type Authorize = (env: unknown) => void;
  const ingest = new IngestQueue<Authorize>(store, (created) => engine.applyCommitted(created), log);
  ingest.useChecks([{ name: "the test's", phase: "rules", check: (env, authorize) => authorize(env) }]);
  const write = (recs: Array<Record<string, unknown>>, authorize?: Authorize) =>
    ingest.submit(recs.map((r) => prepareRecord({ actor: "did:sync:user:x", ...r })), authorize);
  const indexed = () => [...store.foldIndex.records(3)].map((r) => r.sequence);
  const fullScan = () => [...store.scanMatching(engine.folds.map((f) => f.consumes))].map((r) => r.sequence);
  const close = () => {
    log.flush();
    db.close();
  };
  return { db, store, engine, write, indexed, fullScan, close, log };
}

/** A mix: records some fold consumes, records none does, on the same threads. */
function mixed(i: number): Array<Record<string, unknown>> {
  return [
    { thread: ENGINE_CONFIG_THREAD, act: "LEARN", body: { topic: "trust_params", prior_success: 3 + i, prior_failure: 3, z: 1.96, half_life_days: 90 } },
    { thread: "th_work", act: "KNOW", body: { verdict: i % 2 ? "accept" : "reject", subject: "did:sync:user:y" } },
    { thread: "th_work", act: "KNOW", body: { text: `"verdict" only in the text ${i}` } },
    { thread: "th_work", act: "INTEND", body: { text: `plain intent ${i}` } },
    { thread: "th_work", act: "DO", body: { task_event: null, n: i } },
    { thread: `th_task_${i}`, act: "INTEND", body: { task: true, title: `task ${i}` } },
    { thread: "th_work", act: "KNOW", body: { parent_record_id: `p${i}` } },
  ];
}

function rawCount(db: Database): number {
  return (db.query("SELECT COUNT(*) AS n FROM records").get() as { n: number }).n;
}

describe("fold index", () => {
  test("holds exactly what the full scan finds after singles, batches, duplicates, conflicts and refused submissions", async () => {
    const paths = home();
    const a = open(paths);
    await a.engine.rebuild();
    for (let i = 0; i < 6; i++) {
      // One submission per record, and the same records again as one batch (all duplicates).
      const singles = (await Promise.all(mixed(i).map((r) => a.write([r])))).map(([r]) => r as { record: Record<string, any> });
      const again = singles.map(({ record: r }) => ({ thread: r.thread, act: r.act, body: r.body, clock: r.clock }));
      expect((await a.write(again)).map((r) => r.status)).toEqual(again.map(() => "duplicate"));
      // A batch refused at its third record is undone to its savepoint; the others in the same
      // transaction stay.
      let seen = 0;
      const refused = a.write(mixed(100 + i), () => {
        if (++seen === 3) throw new RecordError("PERMISSION_DENIED", "no", 403);
      });
      const kept = a.write([{ thread: "th_work", act: "KNOW", body: { verdict: "accept", round: i } }]);
      await expect(refused).rejects.toThrow("no");
      expect((await kept)[0]!.status).toBe("created");
      // Another content at a taken clock: a 409, nothing written.
      const conflict = await a.write([{ thread: "th_work", act: "KNOW", clock: 0, body: { other: i } }]);
      expect(conflict[0]!.status).toBe("error");
    }
    expect(a.indexed()).toEqual(a.fullScan());
    expect(a.indexed().length).toBeGreaterThan(20);
    expect(a.store.counts.records).toBe(rawCount(a.db));
    a.store.foldIndex.flush();
    expect(a.store.foldIndex.watermark()).toEqual({ seq: a.store.counts.records, records: rawCount(a.db) });
    a.close();

    // Reopened: nothing to re-index, the same answer, the count from the watermark.
    const b = open(paths);
    await b.engine.rebuild();
    expect(b.indexed()).toEqual(b.fullScan());
    expect(b.store.counts.records).toBe(rawCount(b.db));
    b.close();
    expect(readFileSync(paths.log, "utf8").match(/fold index: indexing/g)).toBeNull(); // an empty store had nothing to index
  });

  test("a transaction that fails leaves neither index rows nor a watermark past what is stored", async () => {
    const paths = home();
    const a = open(paths);
    await a.engine.rebuild();
    await a.write(mixed(0));
    a.store.foldIndex.flush();
    const before = a.store.foldIndex.watermark()!;
    expect(() =>
      a.store.transaction(() => {
        a.store.insert(prepareRecord({ thread: ENGINE_CONFIG_THREAD, actor: "did:sync:user:x", act: "LEARN", body: { topic: "permissions_enabled", enabled: true } }), 1);
        throw new Error("disk gone");
      }),
    ).toThrow("disk gone");
    a.store.resync();
    expect(a.store.foldIndex.watermark()).toEqual(before);
    expect(a.indexed()).toEqual(a.fullScan());
    expect(a.store.counts.records).toBe(rawCount(a.db));
    // The next commit moves the watermark again (the failed one may have moved it, then undone).
    await a.write([{ thread: "th_work", act: "KNOW", body: { after: true } }]);
    expect(a.store.foldIndex.watermark()).toEqual({ seq: before.seq + 1, records: before.records + 1 });
    a.close();
  });

  test("another set of filters re-indexes every record once, and says why", async () => {
    const paths = home();
    const a = open(paths);
    await a.engine.rebuild();
    for (let i = 0; i < 4; i++) await a.write(mixed(i));
    const doRecords = a.fullScan().length; // the built-in folds' share
    a.close();

    // A release adds a fold (here one registered from outside): its records were never indexed.
    const b = open(paths, [doCounter]);
    const stats = await b.engine.rebuild();
    expect(stats.by_fold["do-counter"]).toBe(4);
    expect(b.indexed()).toEqual(b.fullScan());
    expect(b.indexed().length).toBeGreaterThan(doRecords);
    b.close();
    const lines = readFileSync(paths.log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.msg.startsWith("fold index: indexing every record once: the set of fold filters changed"))).toHaveLength(1);
    expect(lines.filter((l) => l.msg === "fold index: caught up")).toHaveLength(1); // the new filters (the new store was empty)

    // The same set in another order is the same index: nothing to do.
    expect(filterSignature([{ act: "DO" }, { bodyField: "x" }])).toBe(filterSignature([{ bodyField: "x" }, { act: "DO" }, { act: "DO" }]));
    const c = open(paths, [doCounter]);
    await c.engine.rebuild();
    expect(c.indexed()).toEqual(c.fullScan());
    c.close();
    expect(readFileSync(paths.log, "utf8").match(/fold index: caught up/g)).toHaveLength(1);
  });

  test("records written without the index (an older spl, an offline writer) are indexed at the next start and folded", async () => {
    const paths = home();
    const a = open(paths);
    await a.engine.rebuild();
    await a.write(mixed(0));
    a.close();

    // An offline writer: a RecordStore nobody handed the folds' filters (like permissions-unlock).
    {
      const { db } = openStore(paths.store);
      const store = new RecordStore(db);
      store.transaction(() => store.insert(prepareRecord({ thread: AUTH_THREAD, actor: "did:sync:user:x", act: "LEARN", body: { topic: "not_a_token" } }), 1));
      db.close();
    }
    // An older spl: plain INSERTs, no index, no watermark.
    {
      const db = new Database(paths.store);
      const insert = db.query(
        "INSERT INTO records (id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at) VALUES (?, ?, ?, ?, ?, 'SCALAR', ?, '[]', ?, 1700000000)",
      );
      insert.run("old-0", "th_old", "did:sync:user:old", "INTEND", 0, null, JSON.stringify({ text: "work for y" }));
      insert.run("old-1", ENGINE_CONFIG_THREAD, "did:sync:user:old", "LEARN", 0, null, JSON.stringify({ topic: "permissions_enabled", enabled: true }));
      insert.run("old-2", "th_old", "did:sync:user:y", "KNOW", 0, null, JSON.stringify({ text: "nothing a fold wants", fulfills: "old-0" }));
      // A verdict about y's answer to old-0 (README "Engine": verdicts judge real work).
      insert.run("old-3", "th_old", "did:sync:user:old", "KNOW", 1, "old-2", JSON.stringify({ verdict: "accept", subject: "did:sync:user:y" }));
      db.close();
    }

    const b = open(paths);
    const stats = await b.engine.rebuild();
    expect(b.engine.config.permissionsEnabled).toBe(true);
    expect(stats.verdicts).toBeGreaterThanOrEqual(1);
    expect(b.indexed()).toEqual(b.fullScan());
    expect(b.store.counts.records).toBe(rawCount(b.db));
    b.close();
    const lines = readFileSync(paths.log, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const tail = lines.filter((l) => l.msg.startsWith("fold index: indexing records written without it"));
    expect(tail).toHaveLength(1);
    expect(tail[0].to_seq - tail[0].from_seq + 1).toBeGreaterThanOrEqual(4);
  });

  test("a record another connection writes while the daemon runs (permissions-unlock --force) is indexed before the watermark passes it", async () => {
    const paths = home();
    const a = open(paths);
    await a.engine.rebuild();
    await a.write(mixed(0));
    const other = openStore(paths.store);
    const foreign = new RecordStore(other.db);
    const { record } = foreign.transaction(() =>
      foreign.insert(prepareRecord({ thread: ENGINE_CONFIG_THREAD, actor: "did:sync:user:x", act: "LEARN", body: { topic: "permissions_enabled", enabled: true } }), 1),
    );
    other.db.close();
    await a.write([{ thread: "th_work", act: "KNOW", body: { after: "the foreign write" } }]);
    a.store.foldIndex.flush(); // as at shutdown: the watermark moves over everything stored
    expect(a.store.foldIndex.watermark()!.seq).toBe(record.sequence + 1);
    expect(a.indexed()).toContain(record.sequence);
    expect(a.indexed()).toEqual(a.fullScan());
    a.close();

    const b = open(paths);
    await b.engine.rebuild();
    expect(b.engine.config.permissionsEnabled).toBe(true);
    b.close();
  });

  test("a re-index cut short (kill -9 between chunks) kept a watermark true to its rows and resumes from it", async () => {
    const paths = home();
    const a = open(paths);
    await a.engine.rebuild();
    for (let i = 0; i < 10; i++) await a.write(mixed(i));
    a.close();

    // Filters change: the re-index runs in chunks of 5 seqs; stop after two, as a kill -9 would.
    const { db } = openStore(paths.store);
    const store = new RecordStore(db);
    store.foldIndex.use([{ act: "DO" }]);
    const chunks = store.foldIndex.catchUp(5);
    chunks.next();
    chunks.next();
    expect(store.foldIndex.watermark()).toMatchObject({ seq: 10, records: 10 });
    db.close();

    const b = open(paths, [doCounter]);
    await b.engine.rebuild();
    expect(b.indexed()).toEqual(b.fullScan());
    expect(b.store.counts.records).toBe(rawCount(b.db));
    b.close();
  });
});

// Folds against a real SQLite store, a real ingest queue and a real log file: a fold registered
// from outside is rebuilt after a reopen, and one that throws cannot leave a writer unanswered.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IngestQueue } from "../store/ingest-queue";
import { createFileLogger } from "../log";
import { matchesFilter } from "../records/filter";
import { prepareRecord } from "../records/envelope";
import { ENGINE_CONFIG_THREAD } from "../records/reserved-threads";
import type { StoredRecord } from "../records/types";
import { openStore } from "../store/open";
import { RecordStore } from "../store/records";
import type { Fold } from "./folds";
import { Engine } from "./runtime";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function home() {
  const dir = mkdtempSync(join(tmpdir(), "spl-folds-"));
  dirs.push(dir);
  return { store: join(dir, "hub.db"), log: join(dir, "spl.log") };
}

/** Opens the store with an engine (plus `extra` folds) wired to the ingest queue as the daemon does. */
function open(paths: ReturnType<typeof home>, extra: Array<() => Fold> = []) {
  const { db } = openStore(paths.store);
  const store = new RecordStore(db);
  const log = createFileLogger(paths.log, { level: "info" });
  const engine = new Engine(store, log);
  engine.addFolds(extra.map((make) => make()));
  const ingest = new IngestQueue(store, (created) => engine.applyCommitted(created), log);
  const write = async (rec: Record<string, unknown>) => {
    const r = (await ingest.submit([prepareRecord(rec)]))[0]!;
    if (r.status === "error") throw r.error;
    return r;
  };
  return { db, store, log, engine, write };
}

/** A fold the engine does not ship: a count of DO records per thread, on threads starting with th_count. */
function countingFold() {
  const counts = new Map<string, number>();
  const make = (): Fold => ({
    name: "do-counter",
    consumes: { act: "DO" },
    apply(rec) {
      if (!rec.thread.startsWith("th_count")) return false;
      counts.set(rec.thread, (counts.get(rec.thread) ?? 0) + 1);
      return true;
    },
  });
  return { counts, make };
}

describe("fold list", () => {
  test("a fold registered from outside is fed at commit and rebuilt from the store after a reopen", async () => {
    const paths = home();
    const first = countingFold();
    const a = open(paths, [first.make]);
    await a.engine.rebuild();
    for (let i = 0; i < 7; i++) expect((await a.write({ thread: i % 2 ? "th_count_a" : "th_count_b", actor: "did:sync:user:x", act: "DO", body: { i } })).status).toBe("created");
    await a.write({ thread: "th_count_a", actor: "did:sync:user:x", act: "KNOW", body: { text: "not a DO" } });
    expect(Object.fromEntries(first.counts)).toEqual({ th_count_a: 3, th_count_b: 4 });
    a.db.close();

    const second = countingFold();
    const b = open(paths, [second.make]);
    expect(second.counts.size).toBe(0);
    const stats = await b.engine.rebuild();
    expect(Object.fromEntries(second.counts)).toEqual({ th_count_a: 3, th_count_b: 4 });
    expect(stats.by_fold["do-counter"]).toBe(7);
    b.db.close();
  });

  test("records committed before the rebuild has finished are folded once", async () => {
    const paths = home();
    const a = open(paths);
    await a.engine.rebuild();
    await a.write({ thread: ENGINE_CONFIG_THREAD, actor: "did:sync:user:x", act: "LEARN", body: { topic: "permissions_enabled", enabled: true } });
    a.db.close();

    const counter = countingFold();
    const b = open(paths, [counter.make]);
    // A write lands before the rebuild runs: held back, then applied once after the scan.
    await b.write({ thread: "th_count_x", actor: "did:sync:user:x", act: "DO", body: {} });
    expect(counter.counts.size).toBe(0);
    await b.engine.rebuild();
    expect(counter.counts.get("th_count_x")).toBe(1);
    expect(b.engine.config.permissionsEnabled).toBe(true);
    await b.write({ thread: "th_count_x", actor: "did:sync:user:x", act: "DO", body: { n: 2 } });
    expect(counter.counts.get("th_count_x")).toBe(2);
    b.db.close();
  });

  test("each filter is the same as SQL and as a predicate", async () => {
    const paths = home();
    const a = open(paths);
    await a.engine.rebuild();
    const recs: Array<Record<string, unknown>> = [
      { thread: ENGINE_CONFIG_THREAD, act: "LEARN", body: { topic: "auth_required", enabled: true } },
      { thread: ENGINE_CONFIG_THREAD, act: "KNOW", body: { text: "not a LEARN" } },
      { thread: "th_auth", act: "LEARN", body: { topic: "nothing" } },
      { thread: "th_r", act: "KNOW", body: { verdict: "accept", subject: "did:sync:user:y" } },
      { thread: "th_r", act: "KNOW", body: { verdict: null } },
      { thread: "th_r", act: "KNOW", body: { nested: { verdict: "accept" }, text: '"verdict"' } },
      { thread: "th_r", act: "DO", body: { verdict: "accept" } },
    ];
    const stored: StoredRecord[] = [];
    for (const r of recs) stored.push((await a.write({ actor: "did:sync:user:x", ...r })).record);
    for (const fold of a.engine.folds) {
      const bySql = [...a.store.scanMatching([fold.consumes])].map((r) => r.id);
      const byPredicate = stored.filter((r) => matchesFilter(r, fold.consumes)).map((r) => r.id);
      expect(bySql).toEqual(byPredicate);
      expect(bySql).toHaveLength(1);
    }
    a.db.close();
  });
});

describe("commit hook", () => {
  test("a fold that throws is logged as an ERROR; the writer is answered and the record stored", async () => {
    const paths = home();
    const broken = (): Fold => ({
      name: "broken",
      consumes: { act: "DO" },
      apply() {
        throw new Error("fold exploded");
      },
    });
    const counter = countingFold();
    const a = open(paths, [broken, counter.make]);
    await a.engine.rebuild();
    const r = await a.write({ thread: "th_count_z", actor: "did:sync:user:x", act: "DO", body: { n: 1 } });
    expect(r.status).toBe("created");
    expect(a.store.get(r.record.id)).not.toBeNull();
    expect(counter.counts.get("th_count_z")).toBe(1); // the folds after the broken one still ran
    a.log.flush();
    const errors = readFileSync(paths.log, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => l.level === "ERROR");
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ fold: "broken", record: r.record.id, error: "fold exploded" });
    a.db.close();
  });

  test("a commit hook that throws does not leave the batch unanswered", async () => {
    const paths = home();
    const { db } = openStore(paths.store);
    const store = new RecordStore(db);
    const log = createFileLogger(paths.log, { level: "info" });
    const ingest = new IngestQueue(store, () => {
      throw new Error("hook exploded");
    }, log);
    const results = await Promise.all([1, 2, 3].map((n) => ingest.submit([prepareRecord({ thread: "th_h", actor: "did:sync:user:x", act: "DO", body: { n } })])));
    expect(results.map((r) => r[0]!.status)).toEqual(["created", "created", "created"]);
    expect(store.counts.records).toBe(3);
    log.flush();
    expect(readFileSync(paths.log, "utf8")).toContain('"level":"ERROR"');
    db.close();
  });
});

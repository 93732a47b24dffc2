// RecordStore and StoreReader against an in-memory SQLite with the real schema.
import { Database } from "bun:sqlite";
import { beforeEach, describe, expect, test } from "bun:test";
import { prepareRecord, RecordError } from "../records/envelope";
import { migrate } from "./schema";
import { RecordStore } from "./records";
import { StoreReader } from "./reader";

const NOW = 1_800_000_000;
let store: RecordStore;

const rec = (extra: Record<string, unknown> = {}) => prepareRecord({ thread: "th_a", actor: "did:sync:user:alice", act: "KNOW", body: { text: "x" }, ...extra });
const insert = (extra: Record<string, unknown> = {}) => store.transaction(() => store.insert(rec(extra), NOW));

beforeEach(() => {
  const db = new Database(":memory:", { strict: true });
  migrate(db, ":memory:");
  store = new RecordStore(db);
});

describe("RecordStore", () => {
  test("assigns clocks per (thread, actor): max + 1, starting at 0", () => {
    expect(insert({ body: { n: 1 } }).record.clock).toBe(0);
    expect(insert({ body: { n: 2 } }).record.clock).toBe(1);
    expect(insert({ body: { n: 3 }, actor: "did:sync:user:bob" }).record.clock).toBe(0);
    expect(insert({ body: { n: 4 }, thread: "th_b" }).record.clock).toBe(0);
    expect(insert({ body: { n: 5 }, clock: 10 }).record.clock).toBe(10);
    expect(insert({ body: { n: 6 } }).record.clock).toBe(11);
    expect(store.nextClock("th_a", "did:sync:user:alice")).toBe(12);
    expect(store.nextClock("th_a", "did:sync:user:carol")).toBe(0);
    expect(store.nextClockOnThread("th_a")).toBe(12);
    expect(store.nextClockOnThread("th_none")).toBe(0);
    expect(store.counts).toEqual({ records: 6, threads: 2 });
  });

  test("a rolled-back insert gives its clock back: the next record still gets max + 1", () => {
    insert({ body: { n: 1 } });
    expect(store.nextClock("th_a", "did:sync:user:alice")).toBe(1);
    expect(() =>
      store.transaction(() => {
        expect(store.insert(rec({ body: { n: 2 } }), NOW).record.clock).toBe(1);
        expect(store.insert(rec({ body: { n: 3 } }), NOW).record.clock).toBe(2);
        throw new Error("abort");
      }),
    ).toThrow("abort");
    expect(store.nextClock("th_a", "did:sync:user:alice")).toBe(1);
    expect(insert({ body: { n: 4 } }).record.clock).toBe(1);
    // Explicit transaction control (the ingest queue) resyncs after its rollback.
    store.tx.begin();
    store.insert(rec({ body: { n: 5 } }), NOW);
    store.tx.rollback();
    store.resync();
    expect(insert({ body: { n: 6 } }).record.clock).toBe(2);
  });

  test("clocks of look-alike (thread, actor) pairs never mix", () => {
    insert({ thread: "th_x\u0000did:sync:user:a", actor: "did:sync:user:b", clock: 7 });
    expect(store.nextClock("th_x\u0000did:sync:user:a", "did:sync:user:b")).toBe(8);
    expect(store.nextClock("th_x", "did:sync:user:a\u0000did:sync:user:b")).toBe(0);
  });

  test("the same content twice is a duplicate with the same id, and nothing is added", () => {
    const a = insert({ clock: 3 });
    const b = insert({ clock: 3 });
    expect(a.status).toBe("created");
    expect(b.status).toBe("duplicate");
    expect(b.record.id).toBe(a.record.id);
    expect(b.record.sequence).toBe(a.record.sequence);
    expect(store.counts.records).toBe(1);
    expect(store.get(a.record.id)).toEqual(a.record);
  });

  test("other content at a taken (thread, actor, clock) is CLOCK_CONFLICT (409) naming the holder", () => {
    const a = insert({ clock: 0, body: { v: 1 } });
    let err: unknown;
    try {
      insert({ clock: 0, body: { v: 2 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RecordError);
    expect((err as RecordError).code).toBe("CLOCK_CONFLICT");
    expect((err as RecordError).status).toBe(409);
    expect((err as RecordError).message).toContain(a.record.id);
    expect(store.counts.records).toBe(1);
  });

  test("a thread is closed by a fulfilling KNOW; threadState lists actor clocks", () => {
    const intend = store.transaction(() => store.insert(prepareRecord({ thread: "th_t", actor: "did:sync:user:alice", act: "INTEND", body: { text: "do it" } }), NOW));
    expect(store.threadState("th_t")).toMatchObject({ record_count: 1, status: "open", actor_clocks: { "did:sync:user:alice": 0 } });
    store.transaction(() => store.insert(prepareRecord({ thread: "th_t", actor: "did:sync:user:bob", act: "KNOW", body: { fulfills: intend.record.id } }), NOW));
    expect(store.threadState("th_t")).toMatchObject({ record_count: 2, status: "closed", last_clock: 0 });
    expect(store.activeThreads()).toBe(0);
  });

  test("scanMatching pages through the records any filter matches, in store order", () => {
    for (let i = 0; i < 7; i++) insert({ body: { i }, act: i % 2 ? "LEARN" : "KNOW" });
    const seen = [...store.scanMatching([{ act: "LEARN" }], 2)].map((r) => r.body.i as number);
    expect(seen).toEqual([1, 3, 5]);
    expect([...store.scanMatching([], 2)]).toEqual([]);
  });

  test("a transaction that throws writes nothing", () => {
    insert({ body: { keep: true } });
    expect(() =>
      store.transaction(() => {
        store.insert(rec({ body: { lost: true } }), NOW);
        throw new Error("boom");
      }),
    ).toThrow("boom");
    store.resync();
    expect(store.counts.records).toBe(1);
    expect(store.list({ limit: 10 }).data.map((r) => r.body)).toEqual([{ keep: true }]);
  });
});

describe("StoreReader", () => {
  test("answers counts, last id, genesis lookup and config LEARNs from the same connection", () => {
    const reader = new StoreReader(store.db);
    expect(reader.hasRecords()).toBe(true);
    expect(reader.recordCount()).toBe(0);
    expect(reader.lastRecordId()).toBeNull();
    const genesis = store.transaction(() =>
      store.insert(prepareRecord({ thread: "th_instance", actor: "did:sync:system:engine", act: "LEARN", body: { topic: "instance_bootstrap" } }), NOW),
    );
    const learn = store.transaction(() =>
      store.insert(prepareRecord({ thread: "th_engine_config", actor: "did:sync:user:alice", act: "LEARN", body: { topic: "auth_required", enabled: true } }), NOW),
    );
    expect(reader.recordCount()).toBe(2);
    expect(reader.threadCount()).toBe(2);
    expect(reader.lastRecordId()).toBe(learn.record.id);
    expect(reader.firstLearnWithTopic("th_instance", "did:sync:system:engine", "instance_bootstrap")).toBe(genesis.record.id);
    expect(reader.firstLearnWithTopic("th_instance", "did:sync:user:alice", "instance_bootstrap")).toBeNull();
    expect(reader.learnsOn("th_engine_config").map((r) => r.id)).toEqual([learn.record.id]);
    expect(reader.schemaVersion()).toBeGreaterThan(0);
    expect(reader.recordColumns()).toContain("clock");
    expect(reader.quickCheck()).toBe("ok");
  });

  test("a SQLite file without the records table is recognised as not a store", () => {
    const reader = new StoreReader(new Database(":memory:"));
    expect(reader.hasRecords()).toBe(false);
    expect(reader.recordColumns()).toEqual([]);
    expect(reader.schemaVersion()).toBe(0);
  });
});

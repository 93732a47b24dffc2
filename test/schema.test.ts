// Schema versions end to end (issue 3 item 7): an older store is upgraded additively at
// startup (its startup backup keeps the store as found); a newer one is refused, untouched.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { prepareRecord, sealRecord } from "../lib/records/envelope";
import { Instance } from "./harness";
import { backupsRoot, emit, factsOf, hashTree, health, logLines, settledBackupLine, sha256File, stopOk, threadIds } from "./backup-helpers";


/** Schema version 1 exactly as the first spl wrote it: meta + records and their indexes. */
const V1_DDL = `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
  CREATE TABLE records (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, thread TEXT NOT NULL, actor TEXT NOT NULL,
    act TEXT NOT NULL, clock INTEGER NOT NULL, data_type TEXT NOT NULL, judged_by TEXT,
    parents TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL);
  CREATE UNIQUE INDEX records_thread_actor_clock ON records(thread, actor, clock);
  CREATE INDEX records_thread_seq ON records(thread, seq);
  CREATE INDEX records_actor_seq ON records(actor, seq);
  INSERT INTO meta (key, value) VALUES ('schema_version', '1');`;

interface Built {
  ids: Record<string, string[]>;
  total: number;
}

/** A v1 store with real records (ids computed as spl computes them), including a closed thread. */
function buildV1(path: string): Built {
  mkdirSync(join(path, ".."), { recursive: true, mode: 0o700 });
  const db = new Database(path, { create: true });
  db.exec("PRAGMA journal_mode = WAL");
  db.exec(V1_DDL);
  const ids: Record<string, string[]> = {};
  const insert = db.prepare(
    "INSERT INTO records (id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  let t = 1_700_000_000;
  const add = (thread: string, act: string, body: Record<string, unknown>, actor = "did:sync:user:legacy") => {
    const clock = (ids[thread] ?? []).length;
    const p = prepareRecord({ thread, actor, act, body, clock });
    const id = sealRecord(p);
    insert.run(id, thread, actor, act, clock, p.env.data_type, null, JSON.stringify(p.env.parents), p.bodyJson, t++);
    (ids[thread] ??= []).push(id);
    return id;
  };
  db.transaction(() => {
    for (let i = 0; i < 7; i++) add("th_legacy_a", "KNOW", { text: `a ${i}` });
    const intent = add("th_legacy_b", "INTEND", { text: "ship it" });
    add("th_legacy_b", "KNOW", { text: "shipped", fulfills: intent });
    for (let i = 0; i < 3; i++) add("th_legacy_c", "DO", { text: `c ${i}` });
  })();
  db.close();
  return { ids, total: 12 };
}

describe("schema versions", () => {
  test("an older (v1) store is upgraded additively at startup: records intact, threads derived, backup keeps v1", async () => {
    const inst = new Instance();
    const built = buildV1(inst.path("hub.db"));
    const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(r.code).toBe(0);
    (await import("./harness")).track(Number(/PID:\s+(\d+)/.exec(r.stdout)![1]));

    // The startup backup captured the store exactly as found: still schema 1, all records. (It is
    // written while the daemon serves: the banner may say "in progress"; the settled line says written.)
    const backupPath = /^(\S+) \(written\)$/.exec(await settledBackupLine(inst, r.stdout))![1]!;
    expect(backupPath).toStartWith(backupsRoot(inst));
    const b = factsOf(backupPath);
    expect(b).toMatchObject({ quick_check: "ok", records: built.total, schema_version: 1 });

    const h = await health(inst);
    expect(h.records).toBeGreaterThanOrEqual(built.total + 1); // + the genesis record (and anything the engine adds)
    const threads = (await inst.socket("GET", "/v1/threads?limit=100")).json.data as any[];
    const byId = Object.fromEntries(threads.map((t) => [t.thread, t]));
    expect(byId.th_legacy_a).toMatchObject({ record_count: 7, status: "open", first_seen: 1_700_000_000 });
    expect(byId.th_legacy_b).toMatchObject({ record_count: 2, status: "closed" });
    expect(byId.th_legacy_c).toMatchObject({ record_count: 3, status: "open" });
    for (const [thread, ids] of Object.entries(built.ids)) {
      const recs = (await inst.socket("GET", `/v1/threads/${thread}/records`)).json.data as any[];
      expect(recs.map((x) => x.id)).toEqual(ids);
    }
    // New records keep flowing into the upgraded store, with clocks continuing per (actor, thread).
    await emit(inst, 3, "th_legacy_a");
    expect((await inst.socket("GET", "/v1/threads/th_legacy_a/state")).json.record_count).toBe(10);
    await stopOk(inst);

    const db = new Database(inst.path("hub.db"), { readonly: true });
    expect((db.query("SELECT value FROM meta WHERE key='schema_version'").get() as any).value).toBe("2");
    // Additive: the v1 rows are byte-for-byte what they were.
    const first = db.query("SELECT id, body, created_at FROM records ORDER BY seq LIMIT 1").get() as any;
    expect(first).toEqual({ id: built.ids.th_legacy_a![0], body: '{"text":"a 0"}', created_at: 1_700_000_000 });
    db.close();

    const doc = JSON.parse((await inst.spl(["doctor", "--json"])).stdout);
    expect(doc.checks.find((c: any) => c.name === "schema version")).toMatchObject({ status: "pass" });
  });

  test("a newer store is refused naming both versions and the fix; nothing is written or backed up", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 5);
    await inst.spl(["restart"]);
    await stopOk(inst);
    const db = new Database(inst.path("hub.db"));
    db.exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
    db.close();
    const store = sha256File(inst.path("hub.db"));
    const backups = hashTree(backupsRoot(inst));

    const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(r.code).toBe(1);
    const line = r.stderr.trim().split("\n").pop()!;
    expect(line).toBe(
      `error: ${inst.path("hub.db")} has schema version 99, but this spl understands only up to version 2 — ` +
        "install the newer spl that wrote it, or restore the snapshot you took before upgrading; " +
        `the daemon's output is in ${inst.path("logs", "daemon.out")}`,
    );
    expect(logLines(inst).some((l) => l.level === "ERROR" && /schema version 99/.test(l.error ?? ""))).toBe(true);
    expect(sha256File(inst.path("hub.db"))).toBe(store);
    expect(hashTree(backupsRoot(inst))).toEqual(backups);

    const doc = await inst.spl(["doctor", "--json"]);
    expect(doc.code).toBe(2);
    expect(JSON.parse(doc.stdout).checks.find((c: any) => c.name === "schema version")).toMatchObject({ status: "fail" });
  });
});

describe("only spl's own schema", () => {
  const TRIGGER = "CREATE TRIGGER lose_new AFTER INSERT ON records BEGIN DELETE FROM records WHERE seq = NEW.seq; END";

  test("a backup with an added AFTER INSERT ... DELETE trigger (checksum fresh) is refused by restore, --force included, naming it; a daemon refuses to start on such a store", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 20, "th_schema");
    await stopOk(inst);
    const clean = join(inst.root, "clean.bak");
    expect((await inst.spl(["backup", "--out", clean])).code).toBe(0);

    // The tampered copy: a trigger, a view and an index spl never creates.
    const tampered = join(inst.root, "tampered.bak");
    copyFileSync(clean, tampered);
    const db = new Database(tampered);
    db.exec(TRIGGER);
    db.exec("CREATE VIEW every_actor AS SELECT DISTINCT actor FROM records");
    db.exec("CREATE INDEX records_body ON records(body)");
    db.close();
    // As an off-host copy: compressed, with a checksum that matches it.
    const zst = join(inst.root, "hub.db.20260101-000000.bak.zst");
    writeFileSync(zst, Bun.zstdCompressSync(readFileSync(tampered)));
    writeFileSync(`${zst}.sha256`, `${sha256File(zst)}  ${zst.split("/").pop()}\n`);

    for (const args of [["restore", tampered], ["restore", tampered, "--force"], ["restore", zst], ["restore", zst, "--force"]]) {
      const r = await inst.spl(args);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).toMatch(/^error: .* is not an intact spl store: it holds schema objects spl does not create: index records_body on records, trigger lose_new on records, view every_actor .* — restore another backup/m);
      expect(r.stdout).not.toContain("verified");
    }
    // The store was not touched: the clean backup still restores over it... and it is intact.
    expect(factsOf(inst.path("hub.db")).records).toBeGreaterThanOrEqual(20);

    // The runbook's manual procedure (copy a backup to hub.db) meets the same check at start.
    for (const f of ["hub.db", "hub.db-wal", "hub.db-shm"]) rmSync(inst.path(f), { force: true });
    copyFileSync(tampered, inst.path("hub.db"));
    const start = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(start.code).not.toBe(0);
    expect(start.stderr).toContain("holds schema objects spl does not create: index records_body on records, trigger lose_new on records, view every_actor");
    expect((await inst.spl(["status"])).code).toBe(1); // not running

    // Dropping them (the fix the message gives) makes it a store spl starts on, every record there.
    const fix = new Database(inst.path("hub.db"));
    fix.exec('DROP TRIGGER "lose_new"; DROP VIEW "every_actor"; DROP INDEX "records_body";');
    fix.close();
    await inst.start();
    expect((await health(inst)).records).toBe(factsOf(clean).records);
    await emit(inst, 5, "th_schema_after");
    expect((await threadIds(inst, "th_schema_after")).size).toBe(5);
    await stopOk(inst);
  });
});

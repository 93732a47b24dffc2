// The fold index with the compiled daemon: records an older spl wrote while the daemon was stopped
// are folded at the next start, a kill -9 mid-ingest restarts into the same rebuild a full scan
// gives, and a restored backup carries an index true to its own records.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { filterSql, type RecordFilter } from "../lib/records/filter";
import { ENGINE_CONFIG_THREAD } from "../lib/records/reserved-threads";
import { Instance, waitFor } from "./harness";
import { ACTOR, openImmutable, stopOk } from "./backup-helpers";

function logLines(inst: Instance): any[] {
  return readFileSync(inst.path("logs", "spl.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
}

const healthCheck = (name: string) => ({ topic: "health_check", name, expression: "true", severity: "warn", description: `check ${name}` });

async function healthChecks(inst: Instance): Promise<string[]> {
  const r = await inst.socket("GET", "/v1/config/health-checks");
  expect(r.status).toBe(200);
  return r.json.data.map((c: { name: string }) => c.name).sort();
}

/**
 * A stopped store's index against a full scan with the filters it records, and its watermark
 * against the records: what the next start relies on.
 */
function assertIndexTrue(storePath: string): { indexed: number; watermark: { seq: number; records: number } } {
  const db = openImmutable(storePath);
  try {
    const meta = (k: string) => (db.query("SELECT value FROM meta WHERE key = ?").get(k) as { value: string }).value;
    const filters = JSON.parse(meta("fold_index_filters")) as RecordFilter[];
    const parts = filters.map(filterSql);
    const scanned = db.query(`SELECT seq FROM records WHERE ${parts.map((p) => p.sql).join(" OR ")} ORDER BY seq`).all(...parts.flatMap((p) => p.params)) as { seq: number }[];
    const indexed = db.query("SELECT seq FROM fold_records ORDER BY seq").all() as { seq: number }[];
    expect(indexed).toEqual(scanned);
    const watermark = JSON.parse(meta("fold_index_through"));
    expect(db.query("SELECT COUNT(*) AS n FROM records WHERE seq <= ?").get(watermark.seq)).toEqual({ n: watermark.records });
    return { indexed: indexed.length, watermark };
  } finally {
    db.close();
  }
}

describe("fold index, compiled daemon", () => {
  test("records an older spl wrote while the daemon was stopped are indexed and folded at the next start", async () => {
    const inst = new Instance();
    await inst.start();
    expect((await inst.socket("POST", "/v1/records", { thread: ENGINE_CONFIG_THREAD, actor: ACTOR, act: "LEARN", body: healthCheck("new-binary") })).status).toBe(201);
    await stopOk(inst);
    // A clean stop leaves the watermark at the last record: nothing to re-index next time.
    const { watermark } = assertIndexTrue(inst.path("hub.db"));

    // The older spl: plain INSERTs, no index rows, no watermark move.
    const db = new Database(inst.path("hub.db"));
    db.query(
      "INSERT INTO records (id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at) VALUES (?, ?, ?, 'LEARN', 0, 'SCALAR', NULL, '[]', ?, 1700000000)",
    ).run("0".repeat(63) + "1", ENGINE_CONFIG_THREAD, "did:sync:user:old-binary", JSON.stringify(healthCheck("old-binary")));
    db.close();

    await inst.start();
    expect(await healthChecks(inst)).toEqual(["new-binary", "old-binary"]);
    await stopOk(inst); // INFO lines are flushed in batches; a stopped daemon has written them all
    const tail = logLines(inst).filter((l) => l.msg.startsWith("fold index: indexing records written without it"));
    expect(tail).toHaveLength(1);
    expect(tail[0]).toMatchObject({ from_seq: watermark.seq + 1, to_seq: watermark.seq + 1 });
    expect(logLines(inst).filter((l) => l.msg.startsWith("fold index: indexing every record once"))).toHaveLength(1); // the new store's first start
    assertIndexTrue(inst.path("hub.db"));
  });

  test("kill -9 mid-ingest: the restart folds exactly what a full scan of the store finds", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    const acked = new Set<string>();
    let n = 0;
    let stop = false;
    const writer = async (w: number) => {
      while (!stop) {
        const i = n++;
        const recs = [
          { thread: ENGINE_CONFIG_THREAD, actor: ACTOR, act: "LEARN", body: healthCheck(`hc-${w}-${i}`) },
          { thread: `th_work_${w}`, actor: ACTOR, act: "KNOW", body: { verdict: i % 2 ? "accept" : "reject", subject: "did:sync:user:judged" } },
          { thread: `th_work_${w}`, actor: ACTOR, act: "KNOW", body: { text: `plain ${i}` } },
        ];
        try {
          const r = await inst.socket("POST", "/v1/records/batch", { records: recs });
          if (r.status === 200 && r.json.data[0].status === "created") acked.add(`hc-${w}-${i}`);
        } catch {
          return; // the daemon is gone
        }
      }
    };
    const writers = [0, 1, 2, 3].map(writer);
    await waitFor("300 acknowledged config LEARNs", () => acked.size, { stepMs: 5, until: (n) => n >= 300 });
    process.kill(pid, "SIGKILL");
    stop = true;
    await Promise.all(writers);

    // What the store holds after the crash, counted with the folds' filters by a full scan.
    const db = new Database(inst.path("hub.db"));
    const stored = (db.query("SELECT COUNT(*) AS n FROM records WHERE thread = ? AND act = 'LEARN'").get(ENGINE_CONFIG_THREAD) as { n: number }).n;
    db.close();
    expect(stored).toBeGreaterThanOrEqual(acked.size);

    await inst.start();
    const names = await healthChecks(inst);
    for (const name of acked) expect(names).toContain(name);
    expect(names).toHaveLength(stored);
    await stopOk(inst); // INFO lines are flushed in batches; a stopped daemon has written them all
    const rebuild = logLines(inst).filter((l) => l.msg === "rebuild_from_store finished").pop();
    expect(rebuild.config_learns).toBe(stored);
    const { indexed } = assertIndexTrue(inst.path("hub.db"));
    expect(indexed).toBe(rebuild.folded);
  });

  test("a backup carries its own index; the restored store starts from it and folds its own records", async () => {
    const inst = new Instance();
    await inst.start();
    expect((await inst.socket("POST", "/v1/records", { thread: ENGINE_CONFIG_THREAD, actor: ACTOR, act: "LEARN", body: healthCheck("in-backup") })).status).toBe(201);
    const out = join(inst.root, "snap.bak");
    expect((await inst.spl(["backup", "--out", out])).code).toBe(0);
    expect((await inst.socket("POST", "/v1/records", { thread: ENGINE_CONFIG_THREAD, actor: ACTOR, act: "LEARN", body: healthCheck("after-backup") })).status).toBe(201);
    expect(await healthChecks(inst)).toEqual(["after-backup", "in-backup"]);
    await stopOk(inst);
    assertIndexTrue(out);

    const r = await inst.spl(["restore", out, "--force"]);
    expect(r.code).toBe(0);
    await inst.start();
    expect(await healthChecks(inst)).toEqual(["in-backup"]);
    await stopOk(inst);
    assertIndexTrue(inst.path("hub.db"));
  });
});

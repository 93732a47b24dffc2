// Where the microseconds of one ingested record go (issue 17 item 2). Each stage of the ingest
// path is timed on its own, many times over, on an in-process daemon (real SQLite file, real
// engine, INFO log to a real file), then the path end to end. HTTP itself is the CPU a bare
// Bun.serve spends per request under wrk (when installed).
//   bun bench/profile.ts        (standalone; `bun run bench profile` runs it with the others)
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { refuseForeign } from "../lib/daemon/origin";
import { repeatedQueryParam } from "../lib/api/query";
import type { Gate } from "../lib/daemon/access";
import { json, parseJson } from "../lib/api/http";
import { prepareRecord, sealRecord } from "../lib/records/envelope";
import { NO_QUERY, RecordInput } from "../lib/api/schema";
import { queryChecker } from "../lib/api/validate";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { toWire } from "../lib/records/wire";
import { inProcessDaemon } from "../test/app-harness";
import { benchRecord } from "./loadgen";
import { freePort, fmt, percentile } from "./lib";
import { cpuSeconds } from "./proc";
import { hasWrk, wrkLoad } from "./wrk";

const ROUNDS = 20_000;

/** Median µs per call of `f` over `rounds` calls, in 20 batches (the median batch is reported). */
function stage(rounds: number, f: (i: number) => void): number {
  const batch = rounds / 20;
  const perCall: number[] = [];
  let i = 0;
  for (let b = 0; b < 20; b++) {
    const t0 = performance.now();
    for (let j = 0; j < batch; j++) f(i++);
    perCall.push(((performance.now() - t0) * 1000) / batch);
  }
  perCall.sort((a, b) => a - b);
  return percentile(perCall, 50);
}

/** CPU µs per request of a bare Bun.serve that reads the body and answers 201 (no store). */
async function bareHttpCost(): Promise<number | null> {
  if (!hasWrk()) return null;
  const dir = mkdtempSync(join(tmpdir(), "spl-bare-"));
  const port = freePort();
  const script = join(dir, "bare.ts");
  Bun.write(script, `Bun.serve({ hostname: "127.0.0.1", port: ${port}, reusePort: false, fetch: async (r) => { await r.arrayBuffer(); return new Response('{"id":"x"}', { status: 201 }); } });`);
  const child = Bun.spawn(["bun", script], { stdout: "ignore", stderr: "ignore" });
  try {
    Bun.sleepSync(500);
    const c0 = cpuSeconds(child.pid);
    const r = await wrkLoad(`http://127.0.0.1:${port}`, 4, "bare");
    return ((cpuSeconds(child.pid) - c0) * 1e6) / r.requests;
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchProfile(): Promise<Record<string, string | number>> {
  const d = await inProcessDaemon({ logLevel: "info" });
  const { state } = d;
  try {
    const { gate } = state;
    const guarded = { cls: "record_write" as const, label: "POST /v1/records", rulesPerRecord: true };
    const headers = { host: "127.0.0.1:9100", authorization: `Bearer ${d.token}`, "content-type": "application/json" };
    const texts = Array.from({ length: ROUNDS * 2 }, (_, i) => benchRecord("prof", i));
    const bytes = texts.map((t) => new TextEncoder().encode(t));
    const requests = texts.slice(0, ROUNDS).map((body) => new Request("http://127.0.0.1:9100/v1/records", { method: "POST", headers, body }));
    const caller = gate.admit(requests[0]!, guarded) as Exclude<ReturnType<Gate["admit"]>, Response>;
    const ingestLog = state.log.child("spl::ingest");
    const db = state.db;
    const begin = db.prepare("BEGIN IMMEDIATE");
    const commit = db.prepare("COMMIT");
    const bumpThread = db.prepare("UPDATE threads SET record_count = record_count + 0, last_seen = ? WHERE thread = ?");
    const now = Math.floor(Date.now() / 1000);

    const f: [string, number][] = [];
    f.push(["Host/Origin + query checks", stage(ROUNDS, (i) => (refuseForeign(requests[i % ROUNDS]!, state.config.server.allowedHosts), repeatedQueryParam(requests[i % ROUNDS]!.url)))]);
    f.push(["auth: bearer → caller, scope", stage(ROUNDS, (i) => gate.admit(requests[i % ROUNDS]!, guarded))]);
    f.push(["parse: UTF-8, JSON.parse, I-JSON check", stage(ROUNDS, (i) => parseJson(bytes[i]!))]);
    const parsed = bytes.map((b) => parseJson(b));
    f.push(["validation + canonical body", stage(ROUNDS, (i) => prepareRecord(parsed[i]))]);
    // The ingest routes declare RecordInput for the document; envelope.ts (above) is their check.
    const noQuery = queryChecker(NO_QUERY);
    f.push(["route schema checks (ingest: query only; the body is envelope.ts's)", stage(ROUNDS, () => noQuery({}))]);
    const recordSchema = TypeCompiler.Compile(RecordInput);
    f.push(["  not run: RecordInput as a compiled TypeBox check", stage(ROUNDS, (i) => recordSchema.Check(parsed[i]))]);
    const prepared = parsed.map((p) => prepareRecord(p));
    f.push(["write checks (reserved threads, actor, freezes, rules, tasks)", stage(ROUNDS, (i) => state.ingest.check(prepared[i]!.env, { caller, route: guarded }))]);
    f.push(["clock lookup (when the client omits clock)", stage(ROUNDS, (i) => state.store.nextClock(prepared[i]!.env.thread, prepared[i]!.env.actor))]);
    f.push(["id: canonical envelope + SHA-256", stage(ROUNDS, (i) => sealRecord(prepared[i]!))]);
    // store.insert = id + records row + thread summary, then COMMIT, in groups of 32 fresh
    // records as under load; both per record, the median group.
    const fresh = Array.from({ length: ROUNDS }, (_, i) => prepareRecord(parseJson(new TextEncoder().encode(benchRecord("store", i)))));
    const inserted: ReturnType<typeof state.store.insert>[] = [];
    const insertUs: number[] = [];
    const commitUs: number[] = [];
    for (let g = 0; g + 32 <= fresh.length; g += 32) {
      begin.run();
      const t0 = performance.now();
      for (let j = g; j < g + 32; j++) inserted.push(state.store.insert(fresh[j]!, now));
      const t1 = performance.now();
      commit.run();
      insertUs.push(((t1 - t0) * 1000) / 32);
      commitUs.push(((performance.now() - t1) * 1000) / 32);
    }
    insertUs.sort((a, b) => a - b);
    commitUs.sort((a, b) => a - b);
    f.push(["store.insert: id + records row + thread summary", percentile(insertUs, 50)]);
    f.push([
      "  of which thread summary (UPDATE threads)",
      stage(ROUNDS, (i) => {
        if (i % 32 === 0) begin.run();
        bumpThread.run(now, fresh[i]!.env.thread);
        if (i % 32 === 31) commit.run();
      }),
    ]);
    if (db.inTransaction) commit.run();
    f.push(["COMMIT, group of 32, per record", percentile(commitUs, 50)]);
    const created = inserted.filter((r) => r.status === "created").map((r) => r.record);
    f.push(["commit hook: engine folds + services", stage(ROUNDS, (i) => state.engine.applyCommitted([created[i % created.length]!]))]);
    f.push(["INFO log line (record ingested)", stage(ROUNDS, (i) => ingestLog.info("record ingested", { actor: created[i % created.length]!.actor, thread: created[i % created.length]!.thread, record: created[i % created.length]!.id, act: "KNOW" }))]);
    f.push([
      "answer: record JSON, Response, route label, metrics",
      stage(ROUNDS, (i) => {
        const res = json(201, toWire(created[i % created.length]!));
        res.headers.set("x-spl-route", "POST /v1/records");
        state.metrics.request("POST /v1/records", 201, 0.0001);
      }),
    ]);

    // End to end: parsed body → committed row, one record per transaction, no tick wait.
    const e2e: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const body = parseJson(new TextEncoder().encode(benchRecord("e2e", i)));
      const t = performance.now();
      const p = state.ingest.submit([prepareRecord(body)], { caller, route: guarded });
      state.ingest.flush();
      await p;
      e2e.push((performance.now() - t) * 1000);
    }
    e2e.sort((a, b) => a - b);
    const http = await bareHttpCost();

    const out: Record<string, string | number> = {};
    const spl = f.filter(([name]) => !name.startsWith("  ")).reduce((sum, [, us]) => sum + us, 0);
    if (http !== null) out["HTTP: Bun parses the request, writes the answer (bare Bun.serve CPU/req)"] = `${fmt(http, 1)} µs`;
    for (const [name, us] of f) out[name] = `${fmt(us, 2)} µs`;
    out["sum of spl's stages (per record, group of 32)"] = `${fmt(spl, 1)} µs`;
    out["in-process ingest, parsed body → committed row, 1 record/tx, p50 / p99"] = `${fmt(percentile(e2e, 50), 1)} / ${fmt(percentile(e2e, 99), 1)} µs  (target p50 < 100)`;
    return out;
  } finally {
    d.close();
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./run");
  printFigures("profile", await benchProfile());
}

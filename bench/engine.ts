// Engine figures (issue 4, item 9): ingest with permission enforcement on (10 rules) as a ratio
// of off, the per-request permission check's p50/p99, and rebuild_from_store() over 1M records
// holding 10k config LEARNs and 100k verdicts.
import { join } from "node:path";
import { prepareRecord } from "../lib/records/envelope";
import type { StoredRecord } from "../lib/records/types";
import { openStore } from "../lib/store/open";
import { RecordStore } from "../lib/store/records";
import { EngineConfig, ENGINE_CONFIG_THREAD } from "../lib/engine/config-fold";
import { PermissionEnforcer } from "../lib/engine/enforce";
import { TrustTable } from "../lib/engine/trust";
import { scopeWith } from "../lib/engine/cel";
import { BenchHome, fmt, percentile } from "./lib";

const CLIENTS = 32;
const OP = "did:sync:user:bench";

/** Ten rules: nine that must be evaluated and do not match ordinary writes, then the operator's allow. */
function benchRules(actor: string) {
  const rules = [];
  for (let i = 0; i < 9; i++) {
    const expr = [
      `record.thread == "th_blocked_${i}"`,
      `has(record.body.blocked) && record.body.blocked == ${i}`,
      `current_actor() == "did:sync:user:mallory${i}"`,
      `record.act == "CALL" && resource == "record_write"`,
      `trust(current_actor(), "ops${i}") < 0.01`,
      `record.thread.startsWith("th_quarantine_${i}")`,
      `resource == "admin" && !current_actor().startsWith("did:sync:user:")`,
      `record.data_type == "FORMULA" && record.body.size() > 100`,
      `record.parents.exists(p, p == "deadbeef${i}")`,
    ][i]!;
    rules.push({ topic: "permission_rule", name: `deny-${i}`, action: "deny", priority: 1000 - i, expression: expr });
  }
  rules.push({
    topic: "permission_rule",
    name: "admin-self",
    action: "allow",
    priority: 10,
    expression: `current_actor() == "${actor}" && (resource == "record_write" || resource == "thread_read" || resource == "config_read" || resource == "status_read")`,
  });
  return rules;
}

const work = (w: number, i: number, tag: string) => ({ thread: `th_bench_${tag}_${w % 64}`, actor: OP, act: "KNOW", body: { text: "benchmark record", i, w } });

async function ingestRate(url: string, headers: Record<string, string>, n: number, tag: string): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, w) => {
      for (let i = next++; i < n; i = next++) {
        const res = await fetch(`${url}/v1/records`, { method: "POST", headers, body: JSON.stringify(work(w, i, tag)) });
        if (res.status !== 201) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

/** The per-request permission decision in-process, as the daemon makes it, on varied requests. */
function permissionCheckTimes(n: number) {
  const config = new EngineConfig();
  const trust = new TrustTable();
  let seq = 0;
  const learn = (body: Record<string, unknown>): StoredRecord => ({
    id: `cfg${seq}`,
    sequence: ++seq,
    created_at: 0,
    act: "LEARN",
    thread: ENGINE_CONFIG_THREAD,
    actor: OP,
    body,
    clock: seq,
    data_type: "SCALAR",
    parents: [],
    judged_by: null,
  });
  for (const r of benchRules(OP)) config.apply(learn(r));
  config.apply(learn({ topic: "permissions_enabled", enabled: true }));
  const started = Date.now();
  const enforcer = new PermissionEnforcer({
    config,
    scope: (actor) => {
      const now = Math.floor(Date.now() / 1000);
      return scopeWith(actor, now, { trust: { score: (a: string, d: string) => trust.score(a, d, now), count: (a: string, d: string) => trust.count(a, d) } });
    },
    system: () => ({ uptime_secs: Math.floor((Date.now() - started) / 1000), records_total: seq }),
  });
  const times: number[] = [];
  let allowed = 0;
  for (let i = 0; i < n + 2000; i++) {
    const record = { id: "", act: "DO" as const, actor: OP, thread: `th_app_${i % 50}`, body: { n: i, text: "x" }, clock: i, data_type: "SCALAR" as const, parents: [], judged_by: null };
    const t = performance.now();
    const d = enforcer.check(OP, i % 5 === 0 ? "thread_read" : "record_write", record);
    const dt = performance.now() - t;
    if (i >= 2000) times.push(dt * 1000); // after JIT warm-up
    if (d.allowed) allowed++;
  }
  if (allowed !== n + 2000) throw new Error("bench rules denied an ordinary request");
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p99: percentile(times, 99), max: times[times.length - 1]! };
}

/** Writes `total` records straight into a fresh store: 10k config LEARNs, 100k verdicts, the rest work records. */
function generateStore(path: string, total: number, configLearns: number, verdicts: number) {
  const { db } = openStore(path);
  const store = new RecordStore(db);
  const now = Math.floor(Date.now() / 1000);
  const workers = Array.from({ length: 200 }, (_, i) => `did:sync:agent:w${i}`);
  const judges = Array.from({ length: 20 }, (_, i) => `did:sync:user:judge${i}`);
  const domains = ["code", "ops", "data", "research", "general"];
  const topics = ["routing_rule", "permission_rule", "health_check", "fold_rule", "aitl_rule"];
  const recentWork: string[] = [];
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  let cfg = 0;
  let ver = 0;
  const t0 = performance.now();
  begin.run();
  for (let i = 0; i < total; i++) {
    let rec: Record<string, unknown>;
    // Spread evenly: the n-th config LEARN / verdict lands at about n/count of the way through.
    // (config half a step early, so the last of each never competes for the final slot).
    if (Math.floor(((i + 1 + total / configLearns / 2) * configLearns) / total) > cfg && cfg < configLearns) {
      const topic = topics[cfg % topics.length]!;
      const name = `rule-${cfg % 997}`; // ~10 versions per name: latest wins
      const expression = `record.thread == "th_${cfg}" && record.clock >= ${cfg % 100}`;
      const body: Record<string, unknown> = { topic, name, priority: cfg % 500, expression };
      if (topic === "routing_rule") body.target = workers[cfg % workers.length];
      if (topic === "permission_rule" || topic === "aitl_rule") body.action = topic === "permission_rule" ? "allow" : "present";
      if (topic === "fold_rule") {
        body.status = "active";
        body.expression = `task.status == "review" && records.size() > ${cfg % 10}`;
      }
      if (topic === "health_check") {
        body.severity = "warn";
        body.expression = `system.records_total >= ${cfg}`;
      }
      if (cfg % 50 === 7) body.expression = "record.act =="; // some refused versions
      rec = { thread: ENGINE_CONFIG_THREAD, actor: OP, act: "LEARN", body, clock: cfg };
      cfg++;
    } else if (Math.floor(((i + 1) * verdicts) / total) > ver && recentWork.length) {
      const judge = judges[ver % judges.length]!;
      const body: Record<string, unknown> = { verdict: ver % 4 === 0 ? "reject" : "accept", domain: domains[ver % domains.length] };
      const parents: string[] = [];
      if (ver % 2 === 0) body.subject = workers[ver % workers.length];
      else parents.push(recentWork[ver % recentWork.length]!);
      rec = { thread: `th_review_${ver % 1000}`, actor: judge, act: "KNOW", body, parents, clock: ver };
      ver++;
    } else {
      const actor = workers[i % workers.length]!;
      rec = { thread: `th_work_${i % 5000}`, actor, act: i % 3 === 0 ? "DO" : "INTEND", body: { text: "work item", n: i }, clock: i };
    }
    const r = store.insert(prepareRecord(rec), now - (total - i) * 5); // spread over ~2 months
    if (r.record.thread.startsWith("th_work_") && recentWork.length < 5000) recentWork.push(r.record.id);
    if (i % 50_000 === 49_999) {
      commit.run();
      begin.run();
    }
  }
  commit.run();
  const secs = (performance.now() - t0) / 1000;
  db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
  db.close();
  return { secs, cfg, ver };
}

export async function benchEngine(opts: { records?: number } = {}): Promise<Record<string, string | number>> {
  const figures: Record<string, string | number> = {};

  // 1. Ingest, enforcement off vs on: short alternating rounds (off-on, then on-off) so drift
  //    in machine load and store growth falls on both sides alike.
  const h = new BenchHome();
  try {
    h.env.USER = "bench";
    h.start();
    const url = `http://127.0.0.1:${h.port}`;
    const headers = { "content-type": "application/json", authorization: `Bearer ${h.token}` };
    const socketPost = (body: unknown) => fetch("http://localhost/v1/records", { method: "POST", headers, body: JSON.stringify(body), unix: h.socket } as RequestInit);
    const enforce = (enabled: boolean, round: number) =>
      socketPost({ thread: ENGINE_CONFIG_THREAD, actor: OP, act: "LEARN", body: { topic: "permissions_enabled", enabled, round } });
    for (const r of benchRules(OP)) await socketPost({ thread: ENGINE_CONFIG_THREAD, actor: OP, act: "LEARN", body: r });
    await enforce(true, -1);
    await ingestRate(url, headers, 5000, "warm-on");
    await enforce(false, -1);
    await ingestRate(url, headers, 5000, "warm-off");
    let offSecs = 0;
    let onSecs = 0;
    const per = 8000;
    const roundsN = 8;
    for (let round = 0; round < roundsN; round++) {
      for (const on of round % 2 ? [true, false] : [false, true]) {
        await enforce(on, round);
        const rate = await ingestRate(url, headers, per, `${on ? "on" : "off"}${round}`);
        if (on) onSecs += per / rate;
        else offSecs += per / rate;
      }
    }
    const offRate = (per * roundsN) / offSecs;
    const onRate = (per * roundsN) / onSecs;
    const daemon = JSON.parse(h.run(["config", "show", "-o", "json"])).permission_checks;
    figures["HTTP ingest, enforcement off, 32 clients (records/s)"] = fmt(offRate);
    figures["HTTP ingest, enforcement on, 10 rules (records/s)"] = fmt(onRate);
    figures["enforcement on / off"] = `${fmt(onRate / offRate, 2)}  (target ≥ 0.80)`;
    figures["permission check inside the daemon under that load, mean (µs)"] = `${fmt(daemon.avg_micros, 1)}  over ${fmt(daemon.checks)} checks`;
  } finally {
    h.cleanup();
  }

  // 2. The check itself.
  const check = permissionCheckTimes(50_000);
  figures["permission check, 10 rules, p50 / p99 / max (µs)"] = `${fmt(check.p50, 1)} / ${fmt(check.p99, 1)} / ${fmt(check.max, 0)}`;

  // 3. Rebuild over a big store.
  const total = opts.records ?? Number(process.env.SPL_BENCH_RECORDS ?? 1_000_000);
  const big = new BenchHome();
  try {
    big.env.USER = "bench";
    big.run(["init"]);
    const gen = generateStore(join(big.home, "hub.db"), total, 10_000, 100_000);
    figures["generated store"] = `${fmt(total)} records (${gen.cfg} config LEARNs, ${gen.ver} verdicts) in ${fmt(gen.secs, 1)} s`;
    // The generated store has no fold index: the first start indexes every record once, and
    // every later start reads only the indexed records.
    const t1 = performance.now();
    big.start();
    const first = performance.now() - t1;
    const firstRebuild = JSON.parse(big.run(["config", "show", "-o", "json"])).rebuild.ms;
    big.stop();
    const t0 = performance.now();
    big.start();
    const ready = performance.now() - t0;
    const cfg = JSON.parse(big.run(["config", "show", "-o", "json"]));
    figures["first start: fold index built over every record, rebuild_from_store() (ms)"] = `${fmt(firstRebuild)}  (ready after ${fmt(first)} ms)`;
    const trustRows = JSON.parse(big.run(["trust", "-o", "json"])).length;
    figures["rebuild_from_store(), 1M records (ms)"] = `${fmt(cfg.rebuild.ms)}  (folded ${fmt(cfg.rebuild.folded)}: ${fmt(cfg.rebuild.config_learns)} config LEARNs, ${fmt(cfg.rebuild.verdicts)} verdicts → ${trustRows} trust rows, ${Object.values(cfg.rules as Record<string, number>).reduce((a, b) => a + b, 0)} rules, ${cfg.refused} refused)`;
    figures["`spl serve --daemon` to ready, same store (ms)"] = `${fmt(ready)}  (includes integrity check and startup backup)`;
  } finally {
    big.cleanup();
  }
  return figures;
}

if (import.meta.main) {
  const { printFigures } = await import("./run");
  printFigures("engine", await benchEngine());
}

// Reconciler figures (issue 10, item 8): INTENDs routed and dispatched per second with 10 routing
// rules and the echo adapter, against ingest of records the reconciler ignores; and HTTP ingest of
// INTENDs it routes (default handler, or dispatched) as a ratio of KNOWs, in alternating rounds.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prepareRecord } from "../lib/records/envelope";
import { ENGINE_CONFIG_THREAD } from "../lib/records/reserved-threads";
import type { StoredRecord } from "../lib/records/types";
import { openStore } from "../lib/store/open";
import { RecordStore } from "../lib/store/records";
import { Engine } from "../lib/engine/runtime";
import { silentLogger } from "../lib/log";
import { decideRoute } from "../lib/dispatch/routing";
import { RoutingRules } from "../lib/dispatch/rules";
import { BenchHome, fmt } from "./lib";

const OP = "did:sync:user:bench";
const TARGET = "did:sync:agent:bench";
const CLIENTS = 32;

/** Ten rules: nine evaluated first that never match a bench INTEND, then the one that does. */
function benchRules() {
  const rules = [];
  for (let i = 0; i < 9; i++) {
    const expression = [
      `has(record.body.domain) && record.body.domain == "ops${i}"`,
      `record.thread.startsWith("th_urgent_${i}")`,
      `record.actor == "did:sync:agent:other${i}"`,
      `has(record.body.labels) && "label${i}" in record.body.labels`,
      `trust(record.actor, "review${i}") > 0.9`,
      `record.act == "INTEND" && has(record.body.priority) && record.body.priority == "p${i}"`,
      `record.parents.exists(p, p == "cafe${i}")`,
      `has(record.body.team) && record.body.team == "team${i}"`,
      `record.body.size() > 50 + ${i}`,
    ][i]!;
    rules.push({ topic: "routing_rule", name: `rule-${i}`, priority: 100 - i, target: `did:sync:agent:other${i}`, expression });
  }
  rules.push({ topic: "routing_rule", name: "bench", priority: 1, target: TARGET, expression: `record.act == "INTEND" && has(record.body.domain) && record.body.domain == "bench"` });
  return rules;
}

const intendBody = (i: number, domain = "bench") => ({ goal: `bench job ${i}`, domain, i });

/** The routing decision alone (10 rules, as the reconciler compiles them), in this process. */
async function decisionRate(n: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "spl-bench-route-"));
  try {
    const { db } = openStore(join(dir, "hub.db"));
    const store = new RecordStore(db);
    const engine = new Engine(store, silentLogger);
    const now = Math.floor(Date.now() / 1000);
    const insert = (rec: Record<string, unknown>): StoredRecord => store.transaction(() => store.insert(prepareRecord(rec), now)).record;
    for (const body of benchRules()) insert({ thread: ENGINE_CONFIG_THREAD, actor: OP, act: "LEARN", body });
    await engine.rebuild();
    const records = Array.from({ length: 1000 }, (_, i) => insert({ thread: `th_route_${i}`, actor: OP, act: "INTEND", body: intendBody(i) }));
    const rules = new RoutingRules(engine, Date.now(), silentLogger, new Set([TARGET]));
    const route = (k: number) => {
      const inputs = rules.inputs();
      for (let i = 0; i < k; i++) if (decideRoute(records[i % records.length]!, inputs).target !== TARGET) throw new Error("bench rule did not match");
    };
    route(2000); // JIT warm-up
    const t0 = performance.now();
    route(n);
    const rate = n / ((performance.now() - t0) / 1000);
    db.close();
    return rate;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function ingestRate(url: string, headers: Record<string, string>, n: number, act: "INTEND" | "KNOW", tag: string, domain: string): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, w) => {
      for (let i = next++; i < n; i = next++) {
        const res = await fetch(`${url}/v1/records`, { method: "POST", headers, body: JSON.stringify({ thread: `th_${tag}_${w}`, actor: OP, act, body: intendBody(i, domain) }) });
        if (res.status !== 201) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

export async function benchDispatch(): Promise<Record<string, string | number>> {
  const figures: Record<string, string | number> = {};
  const decisions = await decisionRate(50_000);
  figures["routing decision alone, 10 rules, in-process (decisions/s)"] = fmt(decisions);

  const h = new BenchHome();
  try {
    h.env.USER = "bench";
    h.start();
    const { url, headers } = h;
    const get = async (path: string) => (await fetch(`${url}${path}`, { headers })).json() as Promise<any>;
    for (const body of benchRules()) {
      const r = await fetch(`${url}/v1/records`, { method: "POST", headers, body: JSON.stringify({ thread: ENGINE_CONFIG_THREAD, actor: OP, act: "LEARN", body }) });
      if (r.status !== 201) throw new Error(`rule refused: ${await r.text()}`);
    }
    const settled = async (total: number) => {
      for (;;) {
        const d = await get("/v1/dispatches?limit=0");
        if (d.total >= total && d.active === 0) return d;
        await Bun.sleep(5);
      }
    };

    // 1. Throughput: 20,000 INTENDs in batches of 1,000; the clock stops when the last dispatch is
    //    recorded. Reference: the same batches as KNOWs, which the reconciler ignores.
    const n = 20_000;
    const batches = (act: string) =>
      Array.from({ length: n / 1000 }, (_, b) =>
        JSON.stringify({ records: Array.from({ length: 1000 }, (_, j) => ({ thread: `th_${act}_${b}_${j % 50}`, actor: OP, act, body: intendBody(b * 1000 + j) })) }),
      );
    const post = async (bodies: string[]) => {
      for (const body of bodies) {
        const res = await fetch(`${url}/v1/records/batch`, { method: "POST", headers, body });
        if (res.status !== 200) throw new Error(`batch answered ${res.status}`);
        await res.arrayBuffer();
      }
    };
    const knowBatches = batches("KNOW");
    const intendBatches = batches("INTEND");
    const tk = performance.now();
    await post(knowBatches);
    const knowRate = n / ((performance.now() - tk) / 1000);
    const t0 = performance.now();
    await post(intendBatches);
    await settled(n);
    const routed = n / ((performance.now() - t0) / 1000);
    figures["batch ingest of KNOWs, reconciler idle (records/s)"] = fmt(knowRate);
    figures["INTENDs ingested + routed + dispatched + recorded, 10 rules, echo (INTENDs/s)"] =
      `${fmt(routed)}  (${fmt(routed / knowRate, 2)}x KNOW ingest; each writes 3 more records: ${fmt((routed * 4) / knowRate, 2)}x in records/s)`;

    // 2. HTTP ingest, alternating rounds (between rounds the dispatches settle, untimed):
    //    KNOWs the reconciler ignores; INTENDs it routes through the 10 rules to the default handler
    //    (a log line, no records); INTENDs it routes and dispatches (3 records more each).
    let dispatched = n;
    const per = 4000;
    const rounds = 4;
    const secs = { KNOW: 0, routed: 0, dispatched: 0 };
    const kinds = ["KNOW", "routed", "dispatched"] as const;
    await ingestRate(url, headers, 2000, "KNOW", "warm", "bench");
    for (let round = 0; round < rounds; round++) {
      for (const kind of round % 2 ? [...kinds].reverse() : kinds) {
        const rate = await ingestRate(url, headers, per, kind === "KNOW" ? "KNOW" : "INTEND", `${kind}${round}`, kind === "routed" ? "unrouted" : "bench");
        secs[kind] += per / rate;
        if (kind === "dispatched") await settled((dispatched += per));
      }
    }
    const rate = (k: keyof typeof secs) => (per * rounds) / secs[k];
    figures["HTTP ingest, KNOWs (reconciler idle), 32 clients (records/s)"] = fmt(rate("KNOW"));
    figures["HTTP ingest, INTENDs routed to the default handler (records/s)"] = `${fmt(rate("routed"))}  (${fmt(rate("routed") / rate("KNOW"), 2)}x idle; target ≥ 0.95x)`;
    figures["HTTP ingest, INTENDs routed + dispatched (records/s)"] = `${fmt(rate("dispatched"))}  (${fmt(rate("dispatched") / rate("KNOW"), 2)}x idle; 4 records written per INTEND)`;
    const stats = (await get("/v1/dispatches?limit=0")).reconciler;
    figures["reconciler: decided / dispatched / peak concurrent adapters"] = `${stats.decided} / ${stats.dispatched} / ${stats.peak}`;
  } finally {
    h.cleanup();
  }
  return figures;
}

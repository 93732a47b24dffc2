// Ingest, health-under-load and CLI start-time figures (issue 2, item 9).
// The physical limit is the store itself: RecordStore.insert in-process with the daemon's
// durability settings; every network figure is reported as a ratio of it.
import { rmSync } from "node:fs";
import { join } from "node:path";
import { prepareRecord } from "../lib/records/envelope";
import { openStore } from "../lib/store/open";
import { RecordStore } from "../lib/store/records";
import { BenchHome, SPL, fmt, percentile } from "./lib";

const CLIENTS = 32;

function record(w: number, i: number, tag: string) {
  return { thread: `th_bench_${tag}_${w % 64}`, actor: `did:sync:user:bench${w}`, act: "KNOW", body: { text: "benchmark record", i, w } };
}

/** Inserts `n` records straight into a fresh store, `perTx` per transaction. */
function rawInsertRate(dir: string, n: number, perTx: number): number {
  const path = join(dir, `raw-${perTx}.db`);
  const { db } = openStore(path);
  const store = new RecordStore(db);
  const prepared = Array.from({ length: n }, (_, i) => prepareRecord({ ...record(i % CLIENTS, i, "raw"), clock: i }));
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  const now = Math.floor(Date.now() / 1000);
  const t0 = performance.now();
  for (let i = 0; i < n; i += perTx) {
    begin.run();
    for (let j = i; j < Math.min(n, i + perTx); j++) store.insert(prepared[j]!, now);
    commit.run();
  }
  const rate = n / ((performance.now() - t0) / 1000);
  db.close();
  for (const s of ["", "-wal", "-shm"]) rmSync(path + s, { force: true });
  return rate;
}

interface LoadResult {
  rate: number;
  p50: number;
  p99: number;
  healthP99?: number;
}

async function singleRecordLoad(send: (body: string) => Promise<Response>, n: number, tag: string, health?: () => Promise<Response>): Promise<LoadResult> {
  const latencies: number[] = [];
  let next = 0;
  let done = false;
  const healthLat: number[] = [];
  const healthLoop = health
    ? (async () => {
        while (!done) {
          const t = performance.now();
          await (await health()).arrayBuffer();
          healthLat.push(performance.now() - t);
          await Bun.sleep(2);
        }
      })()
    : Promise.resolve();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, w) => {
      for (let i = next++; i < n; i = next++) {
        const t = performance.now();
        const res = await send(JSON.stringify(record(w, i, tag)));
        if (res.status !== 201) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
        latencies.push(performance.now() - t);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  done = true;
  await healthLoop;
  latencies.sort((a, b) => a - b);
  healthLat.sort((a, b) => a - b);
  return { rate: n / secs, p50: percentile(latencies, 50), p99: percentile(latencies, 99), healthP99: health ? percentile(healthLat, 99) : undefined };
}

function coldStart(args: string[], env: Record<string, string>, runs = 25) {
  const times: number[] = [];
  for (let i = 0; i < runs + 2; i++) {
    const t = performance.now();
    Bun.spawnSync([SPL, ...args], { env, stdout: "ignore", stderr: "ignore" });
    if (i >= 2) times.push(performance.now() - t); // first runs warm the page cache
  }
  times.sort((a, b) => a - b);
  return { p50: percentile(times, 50), p90: percentile(times, 90) };
}

export async function benchIngest(): Promise<Record<string, string | number>> {
  const h = new BenchHome();
  const hb = new BenchHome();
  try {
    const rawSingle = rawInsertRate(h.root, 20_000, 1);
    const rawBatched = rawInsertRate(h.root, 100_000, 1000);

    h.start();
    const auth: Record<string, string> = h.token ? { authorization: `Bearer ${h.token}` } : {};
    const headers = { "content-type": "application/json", ...auth };
    const url = `http://127.0.0.1:${h.port}`;
    const http = await singleRecordLoad(
      (body) => fetch(`${url}/v1/records`, { method: "POST", headers, body }),
      40_000,
      "http",
      () => fetch(`${url}/health`),
    );
    const sock = await singleRecordLoad(
      (body) => fetch("http://localhost/v1/records", { method: "POST", headers, body, unix: h.socket } as RequestInit),
      40_000,
      "sock",
    );
    // Batch route: 1000 records per request, 4 clients, into a fresh store like the raw figure.
    // Bodies are serialised before the clock starts: the load generator shares this machine's
    // cores and is not what is measured.
    hb.start();
    const batchUrl = `http://127.0.0.1:${hb.port}`;
    const batchHeaders = { "content-type": "application/json", ...(hb.token ? { authorization: `Bearer ${hb.token}` } : {}) };
    const batches = 100;
    const bodies = Array.from({ length: batches }, (_, i) =>
      JSON.stringify({ records: Array.from({ length: 1000 }, (_, j) => ({ ...record(j, i * 1000 + j, "batch"), clock: i * 1000 + j })) }),
    );
    let b = 0;
    const tb = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = b++; i < batches; i = b++) {
          const res = await fetch(`${batchUrl}/v1/records/batch`, { method: "POST", headers: batchHeaders, body: bodies[i] });
          if (res.status !== 200) throw new Error(`batch answered ${res.status}`);
          await res.arrayBuffer();
        }
      }),
    );
    const batchRate = (batches * 1000) / ((performance.now() - tb) / 1000);

    const version = coldStart(["version"], h.env);
    const status = coldStart(["status"], h.env);
    return {
      "raw store insert, 1 record/tx (records/s)": fmt(rawSingle),
      "raw store insert, 1000 records/tx (records/s)": fmt(rawBatched),
      "HTTP ingest, 1 record/request, 32 clients (records/s)": `${fmt(http.rate)}  (${fmt((http.rate / rawSingle) * 100)}% of raw single-row; target ≥ 50%)`,
      "HTTP ingest latency p50 / p99 (ms)": `${fmt(http.p50, 2)} / ${fmt(http.p99, 2)}`,
      "/health p99 under that load (ms)": fmt(http.healthP99!, 2),
      "socket ingest, 1 record/request, 32 clients (records/s)": `${fmt(sock.rate)}  (${fmt((sock.rate / rawSingle) * 100)}% of raw single-row)`,
      "socket ingest latency p50 / p99 (ms)": `${fmt(sock.p50, 2)} / ${fmt(sock.p99, 2)}`,
      "batch route, 1000 records/request, 4 clients (records/s)": `${fmt(batchRate)}  (${fmt((batchRate / rawBatched) * 100)}% of raw batched; target ≥ 70%)`,
      "cold `spl version` p50 / p90 (ms)": `${fmt(version.p50, 1)} / ${fmt(version.p90, 1)}  (target < 50)`,
      "cold `spl status` p50 / p90 (ms)": `${fmt(status.p50, 1)} / ${fmt(status.p90, 1)}`,
    };
  } finally {
    h.cleanup();
    hb.cleanup();
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./run");
  printFigures("ingest", await benchIngest());
}

// Ingest figures (issue 17 item 1), every one next to references measured in the same run, on
// the same disk:
//   raw   — rows inserted in-process with a prepared INSERT, 1, 32 and 1000 per transaction,
//           into the store's own schema and pragmas (openStore: same indexes, same durability);
//   minimal server — bench/minimal-server.ts: parse, SHA-256, group commit, 201 (no spl logic),
//           once with SQLite's automatic checkpoint and once with spl's checkpoint thread (the
//           reference for spl's own per-request work, issue 29).
// spl's single-record rates (32 clients, TCP and Unix socket) are printed as ratios of each;
// the batch route as a ratio of raw 1000-per-transaction. CPU µs per request (from /proc) is
// printed beside each rate: on a shared machine it is the steadier figure.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openStore } from "../lib/store/open";
import { benchRecord } from "./loadgen";
import { BenchHome, SPL, fmt, freePort, percentile } from "./lib";
import { cpuSeconds } from "./proc";
import { bunLoad, hasWrk, type LoadFigures, tcpLoad } from "./wrk";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARM_SECONDS = 3;

/** Rows per second into a fresh store, `perTx` per transaction: the store's physical limit. */
function rawInsertRate(dir: string, n: number, perTx: number): number {
  const path = join(dir, `raw-${perTx}.db`);
  const { db } = openStore(path);
  const insert = db.prepare(
    `INSERT INTO records (id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const rows = Array.from({ length: n }, (_, i) => {
    const text = benchRecord(`raw${perTx}`, i);
    const r = JSON.parse(text);
    return [new Bun.CryptoHasher("sha256").update(text).digest("hex"), r.thread, r.actor, r.act, r.clock, r.data_type, null, "[]", JSON.stringify(r.body), 1_800_000_000] as const;
  });
  const begin = db.prepare("BEGIN IMMEDIATE");
  const commit = db.prepare("COMMIT");
  const t0 = performance.now();
  for (let i = 0; i < n; i += perTx) {
    begin.run();
    for (let j = i; j < Math.min(n, i + perTx); j++) insert.run(...rows[j]!);
    commit.run();
  }
  const rate = n / ((performance.now() - t0) / 1000);
  db.close();
  return rate;
}

/** bench/minimal-server.ts in its own process, once it listens. */
async function startMinimal(db: string, port: number, socket: string, mode?: "checkpoint-thread") {
  const proc = Bun.spawn(["bun", join(import.meta.dir, "minimal-server.ts"), db, String(port), socket, ...(mode ? [mode] : [])], { stdout: "pipe", stderr: "inherit" });
  const ready = (await (proc.stdout as ReadableStream<Uint8Array>).getReader().read()).value;
  if (!ready || !new TextDecoder().decode(ready).includes("ready")) throw new Error("the minimal server did not start");
  return { proc, port };
}

interface Measured extends LoadFigures {
  cpuUsPerRequest: number;
}

async function measured(pid: number, load: () => Promise<LoadFigures>): Promise<Measured> {
  const c0 = cpuSeconds(pid);
  const r = await load();
  if (r.errors) throw new Error(`${r.errors} requests were not answered 201`);
  return { ...r, cpuUsPerRequest: ((cpuSeconds(pid) - c0) * 1e6) / r.requests };
}

/** Polls /health every few ms while `during` runs; its p99 in ms. */
async function healthP99(url: string, during: Promise<unknown>): Promise<number> {
  const lat: number[] = [];
  let done = false;
  during.finally(() => (done = true));
  while (!done) {
    const t = performance.now();
    await (await fetch(`${url}/health`)).arrayBuffer();
    lat.push(performance.now() - t);
    await Bun.sleep(5);
  }
  lat.sort((a, b) => a - b);
  return percentile(lat, 99);
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

const line = (m: Measured) => `${fmt(m.rate)}/s  cpu ${fmt(m.cpuUsPerRequest)} µs/req  p50 ${fmt(m.p50_ms, 2)} ms  p99 ${fmt(m.p99_ms, 2)} ms`;
const ratio = (a: number, b: number) => `${fmt(a / b, 2)}x`;

export async function benchIngest(): Promise<Record<string, string | number>> {
  const dir = mkdtempSync(join(tmpdir(), "spl-bench-ingest-"));
  const h = new BenchHome();
  const hb = new BenchHome();
  const minimalPort = freePort();
  const minimalSock = join(dir, "minimal.sock");
  let minimal: Awaited<ReturnType<typeof startMinimal>> | null = null;
  let threaded: Awaited<ReturnType<typeof startMinimal>> | null = null;
  try {
    const raw1 = rawInsertRate(dir, 20_000, 1);
    const raw32 = rawInsertRate(dir, 64_000, 32);
    const raw1000 = rawInsertRate(dir, 200_000, 1000);

    minimal = await startMinimal(join(dir, "minimal.db"), minimalPort, minimalSock);
    // The minimal server with spl's checkpoint thread: what spl's own per-request work costs.
    const threadedSock = join(dir, "minimal-threaded.sock");
    threaded = await startMinimal(join(dir, "minimal-threaded.db"), freePort(), threadedSock, "checkpoint-thread");
    h.start();

    // Warm: every server first takes a short untimed load, so none is measured while JSC is still
    // compiling its code (spl, with more of it, compiles for several seconds; issue 29).
    await Promise.all([
      tcpLoad(`http://127.0.0.1:${threaded.port}`, WARM_SECONDS, "wthr"),
      tcpLoad(`http://127.0.0.1:${minimalPort}`, WARM_SECONDS, "wmin"),
    ]);
    await tcpLoad(h.url, WARM_SECONDS, "wspl", h.token);

    // Interleaved, so drift on a shared machine hits both sides alike: each spl load runs
    // between its two references.
    const tPort = threaded.port;
    const tTcp = await measured(threaded.proc.pid, () => tcpLoad(`http://127.0.0.1:${tPort}`, SECONDS, "mthr"));
    const sTcp = await measured(h.pid, () => tcpLoad(h.url, SECONDS, "stcp", h.token));
    const mTcp = await measured(minimal.proc.pid, () => tcpLoad(`http://127.0.0.1:${minimalPort}`, SECONDS, "mtcp"));
    const tSock = await measured(threaded.proc.pid, () => bunLoad(`unix:${threadedSock}`, SECONDS, "mthrs"));
    const sSock = await measured(h.pid, () => bunLoad(`unix:${h.socket}`, SECONDS, "ssock", h.token));
    const mSock = await measured(minimal.proc.pid, () => bunLoad(`unix:${minimalSock}`, SECONDS, "msock"));
    threaded.proc.kill();
    threaded = null;
    // /health under load, in a round of its own: the poller (a client on the same 2 cores) runs
    // beside no load a ratio is read from, since the references get none.
    const healthRound = tcpLoad(h.url, SECONDS, "shlt", h.token);
    const health = await healthP99(h.url, healthRound);
    await healthRound;

    // Batch route: 1000 records per request, 4 clients, into a fresh store like raw 1000/tx.
    // Bodies are serialised before the clock starts: the client is not what is measured.
    hb.start();
    const batches = 100;
    const bodies = Array.from({ length: batches }, (_, i) => `{"records":[${Array.from({ length: 1000 }, (_, j) => benchRecord("batch", i * 1000 + j)).join(",")}]}`);
    let b = 0;
    const tb = performance.now();
    await Promise.all(
      Array.from({ length: 4 }, async () => {
        for (let i = b++; i < batches; i = b++) {
          const res = await fetch(`${hb.url}/v1/records/batch`, { method: "POST", headers: hb.headers, body: bodies[i] });
          if (res.status !== 200) throw new Error(`batch answered ${res.status}`);
          await res.arrayBuffer();
        }
      }),
    );
    const batchRate = (batches * 1000) / ((performance.now() - tb) / 1000);

    const version = coldStart(["version"], h.env);
    const status = coldStart(["status"], h.env);
    return {
      "raw insert, 1 / 32 / 1000 rows per transaction (rows/s)": `${fmt(raw1)} / ${fmt(raw32)} / ${fmt(raw1000)}`,
      [`minimal server + spl's checkpoint thread, TCP, 32 clients (${hasWrk() ? "wrk" : "bun client"})`]: line(tTcp),
      "spl HTTP ingest, 1 record/request, 32 clients": line(sTcp),
      "  HTTP ratio to it (spl's own per-request work; target ≥ 0.9x)": ratio(sTcp.rate, tTcp.rate),
      "  /health p99 under the same load (ms)": fmt(health, 2),
      "minimal server (SQLite's automatic checkpoint), TCP": line(mTcp),
      "  HTTP ratio to it": ratio(sTcp.rate, mTcp.rate),
      "  HTTP ratio to raw 1 / 32 rows per transaction": `${ratio(sTcp.rate, raw1)} / ${ratio(sTcp.rate, raw32)}`,
      "minimal server + checkpoint thread, Unix socket, 32 clients (bun client)": line(tSock),
      "spl socket ingest, 1 record/request, 32 clients": line(sSock),
      "  socket ratio to it (target ≥ 0.9x)": ratio(sSock.rate, tSock.rate),
      "minimal server (automatic checkpoint), Unix socket": line(mSock),
      "  socket ratio to it": ratio(sSock.rate, mSock.rate),
      "  socket ratio to raw 1 / 32 rows per transaction": `${ratio(sSock.rate, raw1)} / ${ratio(sSock.rate, raw32)}`,
      "batch route, 1000 records/request, 4 clients (records/s)": `${fmt(batchRate)}  (${ratio(batchRate, raw1000)} raw 1000/tx; target ≥ 0.8x)`,
      "cold `spl version` p50 / p90 (ms)": `${fmt(version.p50, 1)} / ${fmt(version.p90, 1)}  (target < 50)`,
      "cold `spl status` p50 / p90 (ms)": `${fmt(status.p50, 1)} / ${fmt(status.p90, 1)}`,
    };
  } finally {
    minimal?.proc.kill();
    threaded?.proc.kill();
    h.cleanup();
    hb.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./run");
  printFigures("ingest", await benchIngest());
}

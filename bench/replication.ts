// Continuous replication figures (issue 27): the compiled daemon, file:/// remote on the same
// disk and S3 (s3rver on loopback, in this process), 32 clients on the Unix socket (loadgen.ts in
// its own process).
//   - ingest with replication on against off, in alternating rounds of the same run (ratio of
//     the medians; target >= 0.9), with the daemon's CPU per request beside each;
//   - ship lag under that load: per segment, from the commit of its first record to the moment
//     it is stored (the daemon's own measure, p50/p99 over the rounds), and the longest flush;
//   - kill -9 trials (test/kill-trial.ts): the loss window of each, the largest, and restore time.
//   BENCH_SECONDS=8 BENCH_ROUNDS=3 BENCH_KILL_TRIALS=10 bun bench/replication.ts
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { cleanupAll, Instance } from "../test/harness";
import { killTrial } from "../test/kill-trial";
import { BenchHome, fmt, percentile } from "./lib";
import { cpuSeconds, threadCpuSeconds } from "./proc";
import { bunLoad } from "./wrk";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const TRIALS = Number(process.env.BENCH_KILL_TRIALS ?? 10);

async function status(h: BenchHome): Promise<any> {
  return (await (await fetch("http://localhost/v1/status", { unix: h.socket } as RequestInit)).json()) as any;
}

async function settled(h: BenchHome, continuous: boolean) {
  for (let i = 0; i < 600; i++) {
    const o = (await status(h)).offsite;
    if (o.last_push?.ok && !o.pushing && (!continuous || o.replication?.state === "caught up")) return;
    await Bun.sleep(100);
  }
  throw new Error("the daemon did not settle (first snapshot, replication)");
}

/** One round: a fresh home, `toml` appended, loadgen for SECONDS. */
async function round(toml: string, continuous: boolean, env: Record<string, string> = {}) {
  const h = new BenchHome();
  Object.assign(h.env, env);
  try {
    h.run(["init"]);
    appendFileSync(join(h.home, "config.toml"), toml);
    h.start();
    await settled(h, continuous);
    const c0 = cpuSeconds(h.pid);
    const m0 = threadCpuSeconds(h.pid, h.pid);
    const load = await bunLoad(`unix:${h.socket}`, SECONDS, "repl", h.token);
    const cpuUs = ((cpuSeconds(h.pid) - c0) / load.requests) * 1e6;
    const mainUs = ((threadCpuSeconds(h.pid, h.pid) - m0) / load.requests) * 1e6;
    let lag = null;
    if (continuous) {
      for (let i = 0; i < 300; i++) {
        const r = (await status(h)).offsite.replication;
        if (r.state === "caught up") break;
        await Bun.sleep(100);
      }
      lag = (await status(h)).offsite.replication;
    }
    return { rate: load.rate, cpuUs, mainUs, lag };
  } finally {
    h.cleanup();
  }
}

export async function benchReplication(): Promise<Record<string, string | number>> {
  const out: Record<string, string | number> = {};
  const S3rver = (await import("s3rver")).default;
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const s3dir = mkdtempSync(join(tmpdir(), "spl-bench-s3-"));
  const s3 = new S3rver({ port: 0, address: "127.0.0.1", directory: s3dir, silent: true, configureBuckets: [{ name: "bench" }] } as any);
  const { port } = (await s3.run()) as any;
  const remote = mkdtempSync(join(tmpdir(), "spl-bench-remote-"));
  try {
    const off: number[] = [];
    const on: number[] = [];
    const cpu = { off: [] as number[], on: [] as number[] };
    const main = { off: [] as number[], on: [] as number[] };
    const lags: number[] = [];
    let flush = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const a = await round(`\n[backup.offsite]\nurl = "file://${remote}/off-${i}"\ncontinuous = false\n`, false);
      off.push(a.rate), cpu.off.push(a.cpuUs), main.off.push(a.mainUs);
      const b = await round(`\n[backup.offsite]\nurl = "file://${remote}/on-${i}"\n`, true);
      on.push(b.rate), cpu.on.push(b.cpuUs), main.on.push(b.mainUs);
      lags.push(b.lag.lag_ms.p50, b.lag.lag_ms.p99);
      flush = Math.max(flush, b.lag.ship_ms.max);
      out[`round ${i + 1}: off / on (records/s)`] = `${fmt(a.rate)} / ${fmt(b.rate)}  (p50 lag ${b.lag.lag_ms.p50} ms, p99 ${b.lag.lag_ms.p99} ms, ${b.lag.segments_shipped} segments)`;
    }
    const med = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
    out["ingest, replication off (median records/s)"] = `${fmt(med(off))} (CPU/request: ${fmt(med(cpu.off), 1)} µs, main thread ${fmt(med(main.off), 1)} µs)`;
    out["ingest, replication on, file:// (median records/s)"] = `${fmt(med(on))} (CPU/request: ${fmt(med(cpu.on), 1)} µs, main thread ${fmt(med(main.on), 1)} µs)`;
    out["ratio on / off (target >= 0.9)"] = fmt(med(on) / med(off), 2);
    out["ship lag under load, file:// (per segment, p50 / p99 of the rounds)"] = `${fmt(med(lags.filter((_, i) => i % 2 === 0)))} ms / ${fmt(Math.max(...lags.filter((_, i) => i % 2 === 1)))} ms`;
    out["longest flush (segment upload), file://"] = `${flush} ms`;

    const s = await round(`\n[backup.offsite]\nurl = "s3://bench/r"\nendpoint = "http://127.0.0.1:${port}"\n`, true, { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" }).catch((e) => ({ rate: 0, cpuUs: 0, mainUs: 0, lag: null, error: String(e) }));
    if (s.lag) out["S3 (s3rver): records/s, ship lag p50 / p99, longest flush"] = `${fmt(s.rate)}, ${s.lag.lag_ms.p50} ms / ${s.lag.lag_ms.p99} ms, ${s.lag.ship_ms.max} ms`;

    const windows: number[] = [];
    const restores: number[] = [];
    let lost = 0;
    for (let t = 0; t < TRIALS; t++) {
      const inst = new Instance();
      const dir = join(inst.root, "offsite");
      expect0((await inst.spl(["init"])).code);
      appendFileSync(inst.path("config.toml"), `\n[backup.offsite]\nurl = "file://${dir}"\n`);
      const r = await killTrial(inst, `file://${dir}`, {}, 1);
      windows.push(r.lossMs);
      restores.push(r.restoreMs);
      lost = Math.max(lost, r.missing);
    }
    windows.sort((a, b) => a - b);
    if (TRIALS > 0) out[`kill -9 trials (file://, sync_interval 1s): loss windows`] = windows.map((w) => `${w}`).join(", ") + " ms";
    if (TRIALS > 0) out["largest loss window (RPO seen)"] = `${windows[windows.length - 1]} ms (median ${percentile(windows, 50)} ms; at most ${lost} acknowledged records not off-host)`;
    if (TRIALS > 0) out["restore after a kill (small store, from the remote alone)"] = `${fmt(percentile([...restores].sort((a, b) => a - b), 50))} ms median`;
  } finally {
    await s3.close();
    rmSync(s3dir, { recursive: true, force: true });
    rmSync(remote, { recursive: true, force: true });
    cleanupAll();
  }
  return out;
}

function expect0(code: number) {
  if (code !== 0) throw new Error(`spl init failed (${code})`);
}

if (import.meta.main) {
  const { printFigures } = await import("./run");
  printFigures("replication", await benchReplication());
}

// Memory across a million ingests (issue 17 item 4): the daemon's RSS, read from /proc at every
// 100k records while single-record requests from 32 clients keep arriving. Flat means within
// ±10% of the 100k figure from there on (the first 100k warm caches and the JIT).
//   BENCH_MEMORY_RECORDS=200000 bun bench/memory.ts   (a shorter run)
import { statSync } from "node:fs";
import { join } from "node:path";
import { BenchHome, fmt } from "./lib";
import { rssBytes } from "./proc";
import { hasWrk, startWrk } from "./wrk";

const TOTAL = Number(process.env.BENCH_MEMORY_RECORDS ?? 1_000_000);
const STEP = 100_000;

/** An endless single-record load (wrk, else loadgen), for an hour at most; stopped by kill. */
function endlessLoad(h: BenchHome) {
  if (hasWrk()) {
    const wrk = startWrk(h.url, 3600, "mem", h.token);
    wrk.figures.catch(() => {}); // killed on purpose
    return wrk.proc;
  }
  return Bun.spawn(["bun", join(import.meta.dir, "loadgen.ts"), h.url, "3600", "mem", h.token ?? ""], { stdout: "ignore", stderr: "ignore" });
}

export async function benchMemory(): Promise<Record<string, string | number>> {
  const h = new BenchHome();
  let load: ReturnType<typeof Bun.spawn> | null = null;
  try {
    h.start();
    const t0 = performance.now();
    load = endlessLoad(h);
    const samples: { records: number; rss: number }[] = [];
    for (let next = STEP; next <= TOTAL; ) {
      await Bun.sleep(250);
      const { records } = (await (await fetch(`${h.url}/health`)).json()) as { records: number };
      if (records >= next) {
        samples.push({ records, rss: rssBytes(h.pid) });
        next += STEP;
      }
    }
    const secs = (performance.now() - t0) / 1000;
    load.kill();
    const base = samples[0]!.rss;
    const after = samples.slice(1).map((s) => s.rss / base - 1);
    const mib = (b: number) => `${fmt(b / 1024 / 1024, 1)} MiB`;
    const out: Record<string, string | number> = {};
    for (const s of samples) out[`RSS at ${fmt(s.records)} records`] = mib(s.rss);
    const pct = (x: number) => `${x >= 0 ? "+" : ""}${fmt(x * 100, 1)}%`;
    out["spread after the first 100k (target within ±10%)"] = `${pct(Math.min(...after))} .. ${pct(Math.max(...after))}`;
    out["ingest rate over the run (records/s)"] = fmt(samples[samples.length - 1]!.records / secs);
    out["WAL file at the end"] = mib(statSync(join(h.home, "hub.db-wal")).size);
    return out;
  } finally {
    load?.kill();
    h.cleanup();
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./run");
  printFigures("memory", await benchMemory());
}

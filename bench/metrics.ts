// Metrics overhead (issue 16, item 1): HTTP ingest into a daemon with [metrics] on (the default,
// scraped once a second like Prometheus would) against one with them off, in alternating rounds
// on the same machine so both see the same load from the rest of the system.
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { BenchHome, fmt } from "./lib";

const CLIENTS = 32;

async function ingestSecs(h: BenchHome, n: number, tag: string): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, w) => {
      for (let i = next++; i < n; i = next++) {
        const body = JSON.stringify({ thread: `th_${tag}_${w % 64}`, actor: "did:sync:user:bench", act: "KNOW", body: { text: "benchmark record", i, w } });
        const res = await fetch(`${h.url}/v1/records`, { method: "POST", headers: h.headers, body });
        if (res.status !== 201) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
      }
    }),
  );
  return (performance.now() - t0) / 1000;
}

export async function benchMetrics(): Promise<Record<string, string | number>> {
  const on = new BenchHome();
  const off = new BenchHome();
  let scraping = true;
  try {
    for (const h of [on, off]) h.env.USER = "bench";
    off.run(["init"]);
    appendFileSync(join(off.home, "config.toml"), "\n[metrics]\nenabled = false\n");
    on.start();
    off.start();
    const scraper = (async () => {
      while (scraping) {
        const res = await fetch(`${on.url}/metrics`, { headers: on.headers });
        if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
        await res.text();
        await Bun.sleep(1000);
      }
    })();
    const per = 10_000;
    const rounds = 4;
    const secs = { on: 0, off: 0 };
    await ingestSecs(on, 2000, "warm");
    await ingestSecs(off, 2000, "warm");
    for (let round = 0; round < rounds; round++) {
      const order = round % 2 ? (["off", "on"] as const) : (["on", "off"] as const);
      for (const kind of order) secs[kind] += await ingestSecs(kind === "on" ? on : off, per, `r${round}`);
    }
    scraping = false;
    await scraper;
    const rate = (k: keyof typeof secs) => (per * rounds) / secs[k];
    return {
      "HTTP ingest, metrics off, 32 clients (records/s)": fmt(rate("off")),
      "HTTP ingest, metrics on + scraped every second (records/s)": `${fmt(rate("on"))}  (${fmt(rate("on") / rate("off"), 3)}x off; target ≥ 0.97x)`,
    };
  } finally {
    scraping = false;
    on.cleanup();
    off.cleanup();
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./run");
  printFigures("metrics", await benchMetrics());
}

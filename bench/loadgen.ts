// Load generator for the single-record ingest figures: `clients` connections, each sending one
// ~300-byte KNOW record per request (the shape in perf-notes) and waiting for its answer, for
// `seconds`. Runs as its own process so it never shares the measuring process's event loop.
//   bun bench/loadgen.ts <http://host:port | unix:/path/to.sock> <seconds> <tag> [token]
// Prints one JSON line: {requests, rate, p50_ms, p99_ms, errors}.
import { percentile } from "./lib";

export const TEXT = "x".repeat(200);

/** The benchmark record: unique per (tag, n), so every request creates a record. */
export function benchRecord(tag: string, n: number): string {
  return `{"act":"KNOW","actor":"did:sync:user:${tag}","thread":"th_b${n % 100}","body":{"n":${n},"text":"${TEXT}"},"clock":${n},"data_type":"SCALAR"}`;
}

if (import.meta.main) {
  const [target, seconds, tag, token] = process.argv.slice(2);
  const clients = 32;
  const unix = target!.startsWith("unix:") ? target!.slice(5) : undefined;
  const url = unix ? "http://localhost/v1/records" : `${target}/v1/records`;
  const headers: Record<string, string> = { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const latencies: number[] = [];
  let n = 0;
  let errors = 0;
  const until = performance.now() + Number(seconds) * 1000;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (performance.now() < until) {
        const body = benchRecord(tag!, n++);
        const t = performance.now();
        const res = await fetch(url, { method: "POST", headers, body, unix } as RequestInit);
        await res.arrayBuffer();
        if (res.status !== 201) errors++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  console.log(JSON.stringify({ requests: latencies.length, rate: latencies.length / secs, p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99), errors }));
}

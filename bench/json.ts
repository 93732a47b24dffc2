// Cost of the I-JSON check (lib/records/json-text.ts) that parseJson runs after JSON.parse on every
// request body, reported as a ratio of JSON.parse on the same text in the same run.
import { jsonTextProblem } from "../lib/records/json-text";
import { fmt } from "./lib";

function microsPerCall(fn: () => unknown, n: number): number {
  for (let i = 0; i < Math.ceil(n / 10); i++) fn();
  const t0 = performance.now();
  for (let i = 0; i < n; i++) fn();
  return ((performance.now() - t0) * 1000) / n;
}

export async function benchJson(): Promise<Record<string, string | number>> {
  const record = (j: number) => ({ thread: `th_bench_${j % 64}`, actor: `did:sync:user:bench${j}`, act: "KNOW", body: { text: "benchmark record", i: j, w: j % 32 } });
  const single = JSON.stringify(record(1));
  const batch = JSON.stringify({ records: Array.from({ length: 1000 }, (_, j) => ({ ...record(j), clock: j })) });
  const out: Record<string, string | number> = {};
  for (const [name, text, n] of [["single record", single, 200_000], ["1000-record batch", batch, 300]] as const) {
    const parse = microsPerCall(() => JSON.parse(text), n);
    const check = microsPerCall(() => jsonTextProblem(text), n);
    out[`I-JSON check, ${name} (${fmt(text.length)} chars), µs`] = `${fmt(check, 2)}  (${fmt((check / parse) * 100)}% of JSON.parse's ${fmt(parse, 2)} µs)`;
  }
  return out;
}

if (import.meta.main) {
  const { printFigures } = await import("./run");
  printFigures("json", await benchJson());
}

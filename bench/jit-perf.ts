// Where a daemon's main thread spends its time under load, by JavaScript function, from `perf`
// (bench/README.md "Profiling with perf"). Bun's own --cpu-prof puts the samples JSC's optimiser
// inlined under the caller and counts an idle event loop against the last frame it ran, so the
// profiles of the issue 29 work were taken with perf instead:
//   1. start the daemon with BUN_JSC_useJITDump=1 BUN_JSC_jitDumpDirectory=<dir> (JSC writes
//      the address of every function it compiles there);
//   2. perf record -g -p <pid> while the load runs;
//   3. bun bench/jit-perf.ts <dir> <perf.data> <pid>
// Step 3 turns the dump into /tmp/perf-<pid>.map (where perf looks for the names of JIT code;
// JSC reuses code memory, so only the latest function at each address is kept), then charges
// every main-thread sample to the innermost JavaScript function on its stack: native work
// (SQLite, JSON, hashing, the allocator) counts against the function that asked for it.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const JIT_CODE_LOAD = 0;

/** The functions a jitdump file names, latest first at each address: "addr size name" lines. */
function perfMap(dump: Uint8Array): string {
  const view = new DataView(dump.buffer, dump.byteOffset, dump.byteLength);
  let loads: { start: bigint; end: bigint; line: string }[] = [];
  for (let at = view.getUint32(8, true); at + 16 <= dump.length; ) {
    const id = view.getUint32(at, true);
    const size = view.getUint32(at + 4, true);
    if (size === 0) break;
    if (id === JIT_CODE_LOAD) {
      const start = view.getBigUint64(at + 32, true);
      const end = start + view.getBigUint64(at + 40, true);
      const name = at + 56;
      const nul = dump.indexOf(0, name);
      loads = loads.filter((l) => l.end <= start || l.start >= end);
      loads.push({ start, end, line: `${start.toString(16)} ${(end - start).toString(16)} ${new TextDecoder().decode(dump.subarray(name, nul))}` });
    }
    at += size;
  }
  return `${loads.map((l) => l.line).join("\n")}\n`;
}

if (import.meta.main) {
  const [dir, data, pid] = process.argv.slice(2);
  if (!dir || !data || !pid) throw new Error("usage: bun bench/jit-perf.ts <jitdump dir> <perf.data> <pid>");
  const dump = readdirSync(dir).find((f) => new RegExp(`^jit-\\d+-${pid}\\.dump$|^jit-${pid}-\\d+\\.dump$`).test(f));
  if (!dump) throw new Error(`no jit-*-${pid}.dump in ${dir}`);
  writeFileSync(`/tmp/perf-${pid}.map`, perfMap(readFileSync(join(dir, dump))));
  const script = Bun.spawnSync(["perf", "script", "-i", data, "--tid", pid, "-F", "ip,sym"], { stderr: "ignore" }).stdout.toString();
  const by = new Map<string, number>();
  let total = 0;
  for (const sample of script.split("\n\n")) {
    const frames = sample.split("\n").map((l) => l.trim().replace(/^[0-9a-f]+\s+/, "")).filter(Boolean);
    if (!frames.length) continue;
    total++;
    const js = frames.find((f) => f.startsWith("JSC-") && !/Thunk|OSRExit|InlineCache/.test(f));
    const name = js ? js.replace(/^JSC-\w+:\s*/, "").replace(/#\w+$/, "") || "(anonymous)" : "(no JavaScript on the stack: the event loop, HTTP, the kernel)";
    by.set(name, (by.get(name) ?? 0) + 1);
  }
  console.log(`${total} main-thread samples`);
  for (const [name, n] of [...by].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`${((100 * n) / total).toFixed(1).padStart(6)}%  ${name}`);
}

// bun run bench [ingest|backup|engine ...]: builds dist/spl (via the package script) and prints
// the figures. Benchmarks print numbers; they never pass or fail on time.
import { existsSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";

export function printFigures(section: string, figures: Record<string, string | number>) {
  console.log(`\n== ${section} ==`);
  const width = Math.max(...Object.keys(figures).map((k) => k.length));
  for (const [k, v] of Object.entries(figures)) console.log(`  ${k.padEnd(width)}  ${v}`);
}

const SUITES: Record<string, { file: string; fn: string }> = {
  ingest: { file: "ingest.ts", fn: "benchIngest" },
  profile: { file: "profile.ts", fn: "benchProfile" },
  memory: { file: "memory.ts", fn: "benchMemory" },
  backup: { file: "backup.ts", fn: "benchBackup" },
  engine: { file: "engine.ts", fn: "benchEngine" },
  json: { file: "json.ts", fn: "benchJson" },
  dispatch: { file: "dispatch.ts", fn: "benchDispatch" },
  fleet: { file: "fleet.ts", fn: "benchFleet" },
  offsite: { file: "offsite.ts", fn: "benchOffsite" },
  replication: { file: "replication.ts", fn: "benchReplication" },
  metrics: { file: "metrics.ts", fn: "benchMetrics" },
  fanout: { file: "fanout.ts", fn: "benchFanout" },
};

if (import.meta.main) {
  const wanted = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(SUITES);
  console.log(`spl benchmarks — ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, bun ${Bun.version}, ${new Date().toISOString()}`);
  for (const name of wanted) {
    const suite = SUITES[name];
    if (!suite) throw new Error(`unknown suite '${name}' (have: ${Object.keys(SUITES).join(", ")})`);
    if (!existsSync(join(import.meta.dir, suite.file))) continue;
    const mod = await import(`./${suite.file}`);
    printFigures(name, await mod[suite.fn]());
  }
}

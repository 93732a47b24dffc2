// bun run build [--version X.Y.Z] [--outfile PATH] [--target bun-linux-x64[-baseline]]
// Compiles index.ts into one self-contained executable with the version, commit and build time
// baked in. The commit is SPL_COMMIT when set (container builds have no git and no .git), else
// git's HEAD when git can tell, else "unknown". Runtime autoloading of .env / bunfig.toml is off
// so a user's cwd cannot leak in.
import { parseArgs } from "node:util";
import pkg from "../package.json";

const { values } = parseArgs({
  options: { version: { type: "string" }, outfile: { type: "string" }, target: { type: "string" } },
});
const version = values.version ?? pkg.version;
const outfile = values.outfile ?? "dist/spl";
const commit = process.env.SPL_COMMIT?.trim() || gitHead() || "unknown";

function gitHead(): string | null {
  if (!Bun.which("git")) return null; // Bun.spawnSync throws when the program is missing
  const r = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: import.meta.dir, stderr: "ignore" });
  return r.exitCode === 0 ? r.stdout.toString().trim() : null;
}
const buildTime = new Date().toISOString();

const result = await Bun.build({
  // The worker runs ad-hoc CEL evaluations off the daemon's event loop (lib/engine/expr-eval.ts).
  // The progress watcher draws the live line while one long SQLite statement blocks (lib/progress).
  // The checkpoint thread copies the WAL into hub.db off the commit path (lib/store/checkpointer.ts).
  // The startup backup is written by a worker while the daemon serves (lib/backup/background.ts).
  // Continuous replication ships committed records from its own thread (lib/backup/offsite/replicator.ts).
  entrypoints: [
    new URL("../index.ts", import.meta.url).pathname,
    new URL("../lib/engine/expr-worker.ts", import.meta.url).pathname,
    new URL("../lib/progress/watch-worker.ts", import.meta.url).pathname,
    new URL("../lib/store/checkpoint-worker.ts", import.meta.url).pathname,
    new URL("../lib/backup/startup-worker.ts", import.meta.url).pathname,
    new URL("../lib/backup/offsite/ship-worker.ts", import.meta.url).pathname,
  ],
  format: "esm",
  minify: true,
  bytecode: true,
  define: {
    SPL_VERSION: JSON.stringify(version),
    SPL_COMMIT: JSON.stringify(commit),
    SPL_BUILD_TIME: JSON.stringify(buildTime),
  },
  compile: {
    outfile,
    target: (values.target ?? "bun-linux-x64") as any,
    autoloadDotenv: false,
    autoloadBunfig: false,
  },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
console.log(`built ${outfile} (spl ${version}, ${commit})`);

// Backup figures (issue 3 item 10): startup backup time and total time to ready for stores of
// 100k and 1M records, and `spl restore` time for 1M records. Drives the compiled dist/spl in
// temp homes; the stores are generated in-process through RecordStore in one transaction.
//   bun bench/backup.ts                         (standalone; prints the figures)
//   BENCH_BACKUP_SIZES=20000 bun bench/backup.ts (smaller run)
// Exports benchBackup() for bench/run.ts; it prints nothing itself.
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureInstanceDid } from "../lib/instance";
import { prepareRecord } from "../lib/records/envelope";
import { checkpoint, openStore } from "../lib/store/open";
import { RecordStore } from "../lib/store/records";
import { freePort, SPL } from "./lib";

/** Writes `n` realistic records (plus the instance genesis) into a new store at `path`. */
export function generateStore(path: string, n: number): void {
  const { db } = openStore(path, {});
  const store = new RecordStore(db);
  ensureInstanceDid(store);
  const now = Math.floor(Date.now() / 1000);
  db.transaction(() => {
    for (let i = 0; i < n; i++) {
      const p = prepareRecord({
        thread: `th_bench_${i % 1000}`,
        actor: `did:sync:user:bench${i % 7}`,
        act: i % 5 === 0 ? "INTEND" : "KNOW",
        body: { text: `benchmark record ${i} with a body of a realistic size for notes and facts`, n: i },
      });
      store.insert(p, now);
    }
  }).immediate();
  checkpoint(db);
  db.close();
}

function run(args: string[], env: Record<string, string>) {
  const t = performance.now();
  const r = Bun.spawnSync([SPL, ...args], { env, stdout: "pipe", stderr: "pipe" });
  const ms = performance.now() - t;
  if (r.exitCode !== 0) throw new Error(`spl ${args.join(" ")} failed (${r.exitCode}): ${r.stderr.toString()}${r.stdout.toString()}`);
  return { ms, stdout: r.stdout.toString() };
}

function lastLog(logPath: string, msg: string): any {
  const lines = readFileSync(logPath, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
  return lines.filter((l) => l.msg === msg).pop();
}

const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}m` : `${n / 1000}k`);
const mb = (bytes: number) => Math.round((bytes / 1024 / 1024) * 10) / 10;

export async function benchBackup(sizes = (process.env.BENCH_BACKUP_SIZES ?? "100000,1000000").split(",").map(Number)): Promise<Record<string, string | number>> {
  const out: Record<string, string | number> = {};
  const largest = Math.max(...sizes);
  for (const n of sizes) {
    const root = mkdtempSync(join(tmpdir(), "spl-bench-backup-"));
    const home = join(root, ".syncro");
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, SYNCROPEL_HOME: home, USER: "bench" };
    const port = String(freePort());
    const pids: number[] = [];
    try {
      const g = performance.now();
      generateStore(join(home, "hub.db"), n);
      const tag = label(n);
      out[`store_${tag}_generate_s`] = Math.round((performance.now() - g) / 100) / 10;
      out[`store_${tag}_mb`] = mb(statSync(join(home, "hub.db")).size);

      // First start on an existing store writes the first backup; the second is every restart's
      // steady state (rotation, .max comparison). Both are reported.
      // The backup is written while the daemon already serves; `--stop` waits for it, so its log
      // line is read after the stop.
      for (const which of ["first", "restart"] as const) {
        const s = run(["serve", "--daemon", "--port", port], env);
        pids.push(Number(/PID:\s+(\d+)/.exec(s.stdout)?.[1]));
        out[`ready_total_${tag}_${which}_ms`] = Math.round(s.ms);
        run(["serve", "--stop"], env);
        const backup = lastLog(join(home, "logs", "spl.log"), "startup backup written");
        out[`startup_backup_${tag}_${which}_ms`] = backup?.ms ?? "n/a";
      }
      const bak = /instance-[0-9a-f]{16}/.exec(readFileSync(join(home, "logs", "spl.log"), "utf8"))![0];
      const bakPath = join(root, ".local", "share", "syncropel", "backups", bak, "hub.db.bak");
      out[`backup_${tag}_mb`] = mb(statSync(bakPath).size);

      if (n === largest) {
        // The live store holds at least as many records as the backup, so restore needs --force.
        const r = run(["restore", bakPath, "--force"], env);
        out[`restore_${tag}_ms`] = Math.round(r.ms);
      }
    } finally {
      // Only if a start above left its daemon running (the pid still is that spl serve).
      for (const pid of pids) {
        try {
          if (readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("serve")) process.kill(pid, "SIGKILL");
        } catch {}
      }
      rmSync(root, { recursive: true, force: true });
    }
  }
  return out;
}

if (import.meta.main) {
  const figures = await benchBackup();
  for (const [k, v] of Object.entries(figures)) console.log(`${k.padEnd(34)} ${v}`);
}

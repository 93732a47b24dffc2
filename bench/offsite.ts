// Off-host backup figures (issues 15 and 27): `spl backup push` and `spl restore <url>` time,
// throughput and peak memory (VmHWM of the process, against the daemon's RSS on the same store
// at rest: push and restore stream, so the difference stays the same whatever the store's
// size), and the compressed size ratio, for a generated store, to a file:/// directory and to S3
// (s3rver on loopback, a dev dependency). Drives the compiled dist/spl in temp homes.
//   bun bench/offsite.ts                              (1M records, ~400 MiB)
//   BENCH_OFFSITE_SIZES=2700000 bun bench/offsite.ts  (~1 GiB)
//   BENCH_OFFSITE_SIZES=100000 bun bench/offsite.ts   (smaller run)
// Exports benchOffsite() for bench/run.ts; it prints nothing itself.
import { appendFileSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { generateStore } from "./backup";
import { peakRssBytes, rssBytes } from "./proc";

const SPL = resolve(process.env.SPL_BIN ?? join(import.meta.dir, "..", "dist", "spl"));

/** Runs spl without blocking this process (s3rver answers from this same event loop), sampling its peak RSS. */
async function run(args: string[], env: Record<string, string>) {
  const t = performance.now();
  const proc = Bun.spawn([SPL, ...args], { env, stdout: "pipe", stderr: "pipe" });
  let peak = 0;
  const sampler = setInterval(() => {
    const v = peakRssBytes(proc.pid);
    if (v > peak) peak = v;
  }, 10);
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  clearInterval(sampler);
  const ms = performance.now() - t;
  if (code !== 0) throw new Error(`spl ${args.join(" ")} failed (${code}): ${stderr}`);
  return { ms, stdout, peak };
}

/** The daemon's RSS on this home's store once it is up and idle (the baseline push and restore are held to). */
async function daemonBaseline(env: Record<string, string>): Promise<number> {
  const port = String(40000 + Math.floor(Math.random() * 20000));
  const r = await run(["serve", "--daemon", "--port", port], env);
  const pid = Number(/PID:\s+(\d+)/.exec(r.stdout)![1]);
  try {
    for (let i = 0; i < 600; i++) {
      const s = await run(["status", "-o", "json"], env).catch(() => null);
      if (s && !JSON.parse(s.stdout).backup?.outcome?.startsWith("in progress")) break;
      await Bun.sleep(200);
    }
    await Bun.sleep(2000);
    return rssBytes(pid);
  } finally {
    await run(["serve", "--stop"], env);
  }
}

const label = (n: number) => (n >= 1_000_000 ? `${n / 1_000_000}m` : `${n / 1000}k`);
const mb = (bytes: number) => bytes / 1024 / 1024;
const r1 = (n: number) => Math.round(n * 10) / 10;

export async function benchOffsite(sizes = (process.env.BENCH_OFFSITE_SIZES ?? "1000000").split(",").map(Number)): Promise<Record<string, string | number>> {
  const out: Record<string, string | number> = {};
  const S3rver = (await import("s3rver")).default;
  for (const n of sizes) {
    const root = mkdtempSync(join(tmpdir(), "spl-bench-offsite-"));
    const s3 = new S3rver({ port: 0, address: "127.0.0.1", directory: join(root, "s3"), silent: true, configureBuckets: [{ name: "bench" }] });
    const { port } = await s3.run();
    try {
      const home = join(root, ".syncro");
      generateStore(join(home, "hub.db"), n);
      const tag = label(n);
      const storeMb = mb(statSync(join(home, "hub.db")).size);
      out[`store_${tag}_mb`] = r1(storeMb);
      const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: root, SYNCROPEL_HOME: home, USER: "bench", AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };
      const baseline = await daemonBaseline(env);
      out[`daemon_${tag}_rss_mb`] = r1(mb(baseline));
      const targets = {
        file: `[backup.offsite]\nurl = "file://${join(root, "remote")}"\ncontinuous = false\n`,
        s3: `[backup.offsite]\nurl = "s3://bench/spl"\nendpoint = "http://127.0.0.1:${port}"\ncontinuous = false\n`,
      };
      for (const [kind, toml] of Object.entries(targets)) {
        const cfg = join(home, "config.toml");
        rmSync(cfg, { force: true });
        appendFileSync(cfg, toml);
        const push = await run(["backup", "push", "-o", "json"], env);
        const p = JSON.parse(push.stdout);
        out[`${kind}_${tag}_push_s`] = r1(push.ms / 1000);
        out[`${kind}_${tag}_push_mb_per_s`] = r1(storeMb / (push.ms / 1000));
        out[`${kind}_${tag}_push_phases_ms`] = `snapshot ${p.ms.snapshot}, compress and upload ${p.ms.upload}`;
        out[`${kind}_${tag}_push_peak_rss_mb`] = `${r1(mb(push.peak))} (daemon baseline + ${r1(mb(push.peak - baseline))})`;
        out[`${kind}_${tag}_compressed_ratio`] = `${Math.round((p.compressed_bytes / p.bytes) * 1000) / 10}% (${r1(mb(p.compressed_bytes))} MB)`;
        // Restore into a fresh home: download, checksum, decompress, verify, install.
        const fresh = join(root, `.restore-${kind}`);
        const restore = await run(["restore", p.url, "-o", "json"], { ...env, SYNCROPEL_HOME: fresh, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` });
        const r = JSON.parse(restore.stdout);
        if (r.records !== p.records) throw new Error(`restored ${r.records} records, pushed ${p.records}`);
        out[`${kind}_${tag}_restore_s`] = r1(restore.ms / 1000);
        out[`${kind}_${tag}_restore_peak_rss_mb`] = `${r1(mb(restore.peak))} (daemon baseline + ${r1(mb(restore.peak - baseline))})`;
        out[`${kind}_${tag}_restore_mb_per_s`] = r1(storeMb / (restore.ms / 1000));
        rmSync(fresh, { recursive: true, force: true });
      }
    } finally {
      await s3.close();
      rmSync(root, { recursive: true, force: true });
    }
  }
  return out;
}

if (import.meta.main) {
  const { printFigures } = await import("./run");
  printFigures("offsite", await benchOffsite());
}

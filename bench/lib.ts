// Shared benchmark plumbing: temp homes, the compiled binary, latency percentiles.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

export const SPL = resolve(process.env.SPL_BIN ?? join(import.meta.dir, "..", "dist", "spl"));

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** A throwaway instance home; `cleanup()` stops its daemon (by pid) and removes it. */
export class BenchHome {
  root = mkdtempSync(join(tmpdir(), "spl-bench-"));
  home = join(this.root, ".syncro");
  port = freePort();
  pid = 0;
  env: Record<string, string> = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: this.root, SYNCROPEL_HOME: this.home, SPL_LOG: "info" };

  run(args: string[]) {
    const r = Bun.spawnSync([SPL, ...args], { env: this.env });
    if (r.exitCode !== 0) throw new Error(`spl ${args.join(" ")} failed: ${r.stderr}`);
    return r.stdout.toString();
  }

  start(extra: string[] = []) {
    const out = this.run(["serve", "--daemon", "--port", String(this.port), ...extra]);
    this.pid = Number(/PID:\s+(\d+)/.exec(out)![1]);
  }

  stop() {
    if (this.pid) this.run(["serve", "--stop"]);
    this.pid = 0;
  }

  get token(): string | undefined {
    try {
      return readFileSync(join(this.home, "token"), "utf8").trim() || undefined;
    } catch {
      return undefined;
    }
  }

  get socket() {
    return join(this.home, "run", "spl.sock");
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** JSON request headers with the operator's token. */
  get headers(): Record<string, string> {
    return { "content-type": "application/json", ...(this.token ? { authorization: `Bearer ${this.token}` } : {}) };
  }

  cleanup() {
    try {
      this.stop();
    } catch {
      if (this.pid) process.kill(this.pid, "SIGKILL");
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}

export const fmt = (n: number, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

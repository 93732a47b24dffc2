// Adapters hand a routed INTEND to whoever does the work and report how it went. They never
// write records themselves: the dispatcher turns an Outcome into the fulfilling KNOW.
import type { StoredRecord } from "../records/types";

export interface DispatchJob {
  record: StoredRecord;
  target: string;
  goal: string;
  /** Aborted when the daemon stops: the adapter gives up and its work is ended. */
  signal?: AbortSignal;
}

export type Outcome =
  | { ok: true; summary: string }
  | { ok: false; verdict: "reject" | "timeout" | "failed" | "cancelled"; reason: string; summary?: string };

export interface Adapter {
  readonly kind: string;
  run(job: DispatchJob): Promise<Outcome>;
}

/** How much of a command's stdout becomes the KNOW's summary: its tail, where results usually are. */
export const SUMMARY_BYTES = 4096;

export function tail(text: string, bytes = SUMMARY_BYTES): string {
  const buf = Buffer.from(text, "utf8");
  if (buf.length <= bytes) return text;
  // Cut on a character boundary: skip UTF-8 continuation bytes at the start of the slice.
  let start = buf.length - bytes;
  while (start < buf.length && (buf[start]! & 0xc0) === 0x80) start++;
  return buf.subarray(start).toString("utf8");
}

/** Accepts every job after a delay: the default target, and the stand-in worker for local fleets. */
export class EchoAdapter implements Adapter {
  readonly kind = "echo";
  constructor(private readonly delayMs = 0) {}
  async run(job: DispatchJob): Promise<Outcome> {
    if (this.delayMs > 0) {
      const { promise, resolve } = Promise.withResolvers<void>();
      const timer = setTimeout(resolve, this.delayMs);
      job.signal?.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
      await promise;
    }
    return { ok: true, summary: `echo: ${job.goal}` };
  }
}

export interface ExecSpec {
  command: string[];
  timeoutSecs: number;
  cwd?: string;
  /** Names of the daemon's environment variables the target's config passes on (`pass_env`). */
  passEnv?: string[];
}

/**
 * What a dispatched command inherits from the daemon (README "Dispatch"): an allowlist, never the
 * rest. The daemon's environment holds its own credentials (SPL_TOKEN, AWS_* for off-host
 * backups, whatever the service manager set), and a command's output becomes a KNOW that any
 * `records:read` token can read.
 */
export const INHERITED_ENV = ["PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR"];

function commandEnv(passEnv: readonly string[] = []): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of [...INHERITED_ENV, ...passEnv]) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}

/**
 * SPL_GOAL, cut at GOAL_ENV_BYTES: the kernel refuses to start a program with an environment
 * string over 128 KiB, and a fan-out goal may be 256 KiB. A cut goal says so in
 * SPL_GOAL_TRUNCATED=1; the whole record (goal included) is always on stdin.
 */
export const GOAL_ENV_BYTES = 64 * 1024;
function goalEnv(goal: string): Record<string, string> {
  if (Buffer.byteLength(goal, "utf8") <= GOAL_ENV_BYTES) return { SPL_GOAL: goal };
  const cut = Buffer.from(goal, "utf8").subarray(0, GOAL_ENV_BYTES).toString("utf8").replace(/\uFFFD$/, "");
  return { SPL_GOAL: cut, SPL_GOAL_TRUNCATED: "1" };
}

/** Runs a command (argv, never a shell) with the goal in env and the record as JSON on stdin. */
export class ExecAdapter implements Adapter {
  readonly kind = "exec";
  constructor(private readonly spec: ExecSpec) {}

  async run(job: DispatchJob): Promise<Outcome> {
    const { command, timeoutSecs, cwd, passEnv } = this.spec;
    let proc;
    try {
      proc = Bun.spawn(command, {
        cwd,
        stdin: "pipe",
        stdout: "pipe",
        stderr: "pipe",
        env: { ...commandEnv(passEnv), ...goalEnv(job.goal), SPL_RECORD_ID: job.record.id, SPL_THREAD: job.record.thread, SPL_TARGET: job.target },
      });
    } catch (err) {
      return { ok: false, verdict: "reject", reason: `cannot run ${command[0]}: ${(err as Error).message}` };
    }
    try {
      proc.stdin.write(JSON.stringify(job.record));
      proc.stdin.end();
    } catch {} // a command that does not read stdin may close it first
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      proc.kill("SIGKILL");
    }, timeoutSecs * 1000);
    const stop = () => proc.kill("SIGTERM");
    job.signal?.addEventListener("abort", stop, { once: true });
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    job.signal?.removeEventListener("abort", stop);
    const summary = tail(stdout);
    if (job.signal?.aborted) return { ok: false, verdict: "failed", reason: "the daemon stopped while it ran", summary };
    if (timedOut) return { ok: false, verdict: "timeout", reason: `${command[0]} ran past its ${timeoutSecs} s timeout and was killed`, summary };
    if (code !== 0) {
      const why = tail(stderr, 512).trim().split("\n").pop() || `exit status ${code}`;
      return { ok: false, verdict: "reject", reason: `${command[0]} exited ${code}: ${why}`, summary };
    }
    return { ok: true, summary };
  }
}

/** Caps concurrent dispatches; excess jobs wait their turn, never fail. */
export class Semaphore {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  /** The most that ever ran at once (tests and /metrics read it). */
  peak = 0;

  constructor(private readonly limit: number) {}

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    this.peak = Math.max(this.peak, this.active);
    try {
      return await fn();
    } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

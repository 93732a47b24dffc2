// End-to-end test harness: every test gets its own HOME / SYNCROPEL_HOME and free ports, drives
// the compiled binary (dist/spl, built by `bun run test`), and ends only processes it started.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

const REPO = resolve(import.meta.dir, "..");
export const SPL = resolve(process.env.SPL_BIN ?? join(REPO, "dist", "spl"));

/** Source files compiled into dist/spl: index.ts and every non-test .ts under lib/ and commands/. */
function* sources(repo: string): Generator<string> {
  yield join(repo, "index.ts");
  for (const dir of ["lib", "commands"]) {
    for (const f of readdirSync(join(repo, dir), { recursive: true }) as string[]) {
      if (f.endsWith(".ts") && !f.endsWith(".test.ts")) yield join(repo, dir, f);
    }
  }
}

/**
 * Why `bin` cannot be trusted to hold the code in `repo` (missing, or older than a source file),
 * or null. The end-to-end tests drive the binary, so a stale one would test yesterday's code.
 */
export function staleBinary(bin: string, repo: string): string | null {
  let built: number;
  try {
    built = statSync(bin).mtimeMs;
  } catch {
    return `${bin} does not exist — run \`bun run build\` (\`bun run test\` builds first)`;
  }
  for (const f of sources(repo)) {
    if (statSync(f).mtimeMs > built) {
      return `${bin} is older than ${relative(repo, f)}: the end-to-end tests would run stale code — run \`bun run build\` (\`bun run test\` builds first)`;
    }
  }
  return null;
}

let binaryChecked = false;
/** Refuses (once per run) to drive a dist/spl built before the current sources. SPL_BIN opts out. */
function assertFreshBinary() {
  if (binaryChecked || process.env.SPL_BIN) return;
  const why = staleBinary(SPL, REPO);
  if (why) throw new Error(why);
  binaryChecked = true;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A free TCP port on loopback (bind port 0, read it, close). */
export function freePort(): number {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

const started = new Set<number>();
const tempDirs: string[] = [];

function isOurs(pid: number): boolean {
  try {
    const homes = readFileSync(`/proc/${pid}/environ`, "utf8")
      .split("\0")
      .filter((e) => e.startsWith("SYNCROPEL_HOME=") || e.startsWith("HOME="))
      .map((e) => e.slice(e.indexOf("=") + 1));
    return homes.some((h) => tempDirs.some((d) => h === d || h.startsWith(`${d}/`)));
  } catch {
    return false; // gone, or not ours to read
  }
}

/** Remembers a pid so afterAll can end it if a test failed before stopping it. */
export function track(pid: number) {
  started.add(pid);
}

/**
 * Ends anything a failed test left running and removes the temp homes. test/setup.ts (preloaded
 * by bunfig.toml) runs it once after every test file's own afterAll has stopped its daemons.
 */
export function cleanupAll() {
  for (const pid of started) {
    // A pid is reused once its process has gone (pid_max may be 32768): kill it only while it is
    // still a process of ours, one whose home is one of this run's temp dirs.
    if (!isOurs(pid)) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {}
  }
  started.clear();
  if (!process.env.KEEP_TEMP) for (const d of tempDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

export class Instance {
  readonly root: string;
  readonly home: string;
  readonly splHome: string;
  port: number;
  env: Record<string, string>;
  /** The binary this instance runs (dist/spl unless a test built its own). */
  readonly bin: string;

  constructor(opts: { port?: number; env?: Record<string, string>; bin?: string } = {}) {
    if (!opts.bin) assertFreshBinary();
    this.bin = opts.bin ?? SPL;
    this.root = mkdtempSync(join(tmpdir(), "spl-test-"));
    tempDirs.push(this.root);
    this.home = this.root;
    this.splHome = join(this.root, ".syncro");
    this.port = opts.port ?? freePort();
    this.env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.home,
      SYNCROPEL_HOME: this.splHome,
      USER: "tester",
      ...opts.env,
    };
  }

  path(...parts: string[]) {
    return join(this.splHome, ...parts);
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /**
   * Runs `spl <args>` to completion. A verb that starts the daemon (serve --daemon, start, restart)
   * returns once the startup backup it writes while serving is done, unless `waitForBackup` is false.
   */
  async spl(args: string[], opts: { env?: Record<string, string>; stdin?: string; timeoutMs?: number; waitForBackup?: boolean } = {}): Promise<Run> {
    const proc = Bun.spawn([this.bin, ...args], {
      env: { ...this.env, ...opts.env },
      stdin: opts.stdin !== undefined ? new Blob([opts.stdin]) : "ignore",
      stdout: "pipe",
      stderr: "pipe",
      cwd: this.root,
    });
    const limitMs = opts.timeoutMs ?? 60_000;
    let killed = false;
    const timer = setTimeout(() => ((killed = true), proc.kill("SIGKILL")), limitMs);
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    if (code === 0 && opts.waitForBackup !== false && startsDaemon(args)) await this.backupSettled();
    // A test that checks the code then shows this: the run was cut, not refused.
    const cut = killed ? `\n[test harness: spl ${args.join(" ")} did not exit within ${limitMs / 1000} s and was killed]\n` : "";
    return { code, stdout, stderr: stderr + cut };
  }

  /**
   * `spl serve --daemon --port N`; fails the test if it does not start. Returns the daemon pid.
   * Waits until the startup backup (written while the daemon already serves) is no longer in
   * progress, unless `waitForBackup` is false.
   */
  async start(extra: string[] = [], opts: { waitForBackup?: boolean } = {}): Promise<number> {
    const r = await this.spl(["serve", "--daemon", "--port", String(this.port), ...extra], opts);
    if (r.code !== 0) throw new Error(`spl serve --daemon failed (${r.code}): ${r.stderr}${r.stdout}`);
    const pid = Number(/PID:\s+(\d+)/.exec(r.stdout)?.[1]);
    track(pid);
    return pid;
  }

  /** The daemon's startup backup once it is written or failed (null: none, or status not readable). */
  async backupSettled(timeoutMs = 120_000): Promise<{ path: string; outcome: string; records: number | null } | null> {
    // `spl status` as the test's env sees the daemon (its socket, or SPL_SERVE_URL).
    const found = await waitFor(
      "the startup backup to settle (spl status: backup.outcome no longer 'in progress')",
      async () => {
        const r = await this.spl(["status", "-o", "json"], { waitForBackup: false });
        if (r.code !== 0) return { backup: null, settled: true }; // not running, or permission rules hide status
        const backup = JSON.parse(r.stdout).backup ?? null;
        return { backup, settled: !backup?.outcome?.startsWith("in progress") };
      },
      { timeoutMs, stepMs: 100, until: (s) => s.settled },
    );
    return found.backup;
  }

  /** Waits until the daemon answers GET /health with 200 on its TCP port (a foreground start). */
  async healthy(): Promise<void> {
    await waitFor(`GET ${this.url}/health to answer 200`, async () => (await this.http("GET", "/health")).status, { until: (s) => s === 200 });
  }

  async stop(): Promise<Run> {
    return this.spl(["serve", "--stop"]);
  }

  /** The admin token `spl init` wrote to <home>/token, if any. */
  get token(): string | undefined {
    try {
      return require("node:fs").readFileSync(this.path("token"), "utf8").trim() || undefined;
    } catch {
      return undefined;
    }
  }

  /** HTTP to the daemon's TCP port, with the home's token unless `headers` sets authorization. */
  async http(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; text: string }> {
    const auth: Record<string, string> = this.token && !("authorization" in headers) ? { authorization: `Bearer ${this.token}` } : {};
    const res = await fetch(this.url + path, {
      method,
      headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...auth, ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    return answerOf(res);
  }

  /** HTTP over the daemon's Unix socket. */
  async socket(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
    const res = await fetch(`http://localhost${path}`, {
      method,
      unix: this.path("run", "spl.sock"),
      headers: body !== undefined ? { "content-type": "application/json" } : {},
      body: body === undefined ? undefined : JSON.stringify(body),
    } as RequestInit);
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : null };
  }
}

/** `spl serve --daemon`, `spl start`, `spl restart`, `spl serve --restart`. */
function startsDaemon(args: string[]): boolean {
  const [verb, ...rest] = args;
  return verb === "start" || verb === "restart" || (verb === "serve" && (rest.includes("--daemon") || rest.includes("--restart")));
}

/** A response's status and text, and its JSON when the text parses (else null). */
export async function answerOf(res: Response): Promise<{ status: number; json: any; text: string }> {
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, text };
}

export interface WaitOptions<T> {
  /** How long to keep looking (generous by default: the machine may be loaded). */
  timeoutMs?: number;
  /** Pause between looks. */
  stepMs?: number;
  /** When given, the probe's value is what was seen and `until` decides whether it is the one. */
  until?: (seen: T) => boolean;
  /** What of a value seen the failure message shows (default: all of it, cut to a line or so). */
  show?: (seen: T) => unknown;
}

export const WAIT_MS = 30_000;

/** What a wait saw, for its failure message: JSON, or an error's message, cut to a line or so. */
export function describeSeen(v: unknown): string {
  let text: string;
  if (v instanceof Error) text = `${v.name}: ${v.message}`;
  else if (typeof v === "string") text = JSON.stringify(v.length > 600 ? `…${v.slice(-600)}` : v);
  else {
    try {
      text = JSON.stringify(v) ?? String(v);
    } catch {
      text = String(v);
    }
  }
  return text.length > 800 ? `${text.slice(0, 800)}…` : text;
}

/**
 * Waits for an event: polls `probe` until it returns a truthy value (or, with `until`, a value
 * `until` accepts) and returns that value. No wall-clock assertion: the bound is only how long
 * to keep looking. A probe that throws has not seen it yet. On timeout the error names what it
 * waited for and the last thing it saw (a value, or the probe's error), so a failure in CI
 * explains itself from the log.
 */
export async function waitFor<T>(what: string, probe: () => T | Promise<T>, opts?: WaitOptions<T>): Promise<NonNullable<T>>;
/** The short form: the probe's own source names what was waited for. */
export async function waitFor<T>(probe: () => T | Promise<T>, timeoutMs?: number, stepMs?: number): Promise<NonNullable<T>>;
export async function waitFor<T>(a: string | (() => T | Promise<T>), b?: (() => T | Promise<T>) | number, c?: WaitOptions<T> | number): Promise<NonNullable<T>> {
  if (typeof a === "function") {
    const source = a.toString().replace(/\s+/g, " ");
    return waitFor(`${source.length > 200 ? `${source.slice(0, 200)}…` : source}`, a, { timeoutMs: (b as number | undefined) ?? WAIT_MS, stepMs: (c as number | undefined) ?? 50 });
  }
  const what = a;
  const probe = b as () => T | Promise<T>;
  const opts = (c ?? {}) as WaitOptions<T>;
  const { timeoutMs = WAIT_MS, stepMs = 50, until, show } = opts;
  const deadline = Date.now() + timeoutMs;
  let seen: unknown = "(nothing yet)";
  for (let looks = 1; ; looks++) {
    try {
      const v = await probe();
      seen = show ? show(v) : v;
      if (until ? until(v) : v) return v as NonNullable<T>;
    } catch (err) {
      seen = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000} s (${looks} looks) waiting for ${what}; last saw: ${describeSeen(seen)}`);
    await Bun.sleep(stepMs);
  }
}

/**
 * Reads a stream (a process's stdout) until `done(text so far)` holds and returns the text; throws
 * naming what it waited for and the text it saw if the stream ends or the bound passes first.
 */
export async function readUntil(stream: ReadableStream<Uint8Array>, what: string, done: (text: string) => boolean, timeoutMs = WAIT_MS): Promise<string> {
  const reader = stream.getReader();
  const dec = new TextDecoder();
  const deadline = Date.now() + timeoutMs;
  let text = "";
  try {
    while (!done(text)) {
      const left = deadline - Date.now();
      const next = left > 0 ? await Promise.race([reader.read(), Bun.sleep(left).then(() => null)]) : null;
      if (!next || next.done) throw new Error(`${next ? "the output ended" : `timed out after ${timeoutMs / 1000} s`} while waiting for ${what}; saw: ${describeSeen(text)}`);
      text += dec.decode(next.value, { stream: true });
    }
    return text;
  } finally {
    reader.releaseLock();
  }
}

/** Waits until process `pid` has exited (a kill landed, a stop finished). */
export async function processGone(pid: number, timeoutMs = WAIT_MS): Promise<void> {
  await waitFor(`process ${pid} to exit`, () => !isAlive(pid), { timeoutMs });
}

/**
 * Runs `fn` and measures the CPU time this process spent on it (user + system, ms). A "this is
 * fast" check uses it rather than wall time: other work on a loaded machine stretches the wall
 * clock, not the work done.
 */
export function cpuTimeMs<T>(fn: () => T): { value: T; ms: number } {
  const before = process.cpuUsage();
  const value = fn();
  const { user, system } = process.cpuUsage(before);
  return { value, ms: (user + system) / 1000 };
}

/** A live, non-zombie process (some sandboxes' pid 1 never reaps orphans). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = require("node:fs").readFileSync(`/proc/${pid}/stat`, "utf8") as string;
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

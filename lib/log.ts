// The daemon's JSON-lines log: one object per line with ts, level, target, msg and any
// structured fields (actor, thread, record...). Writes are buffered and flushed every 50 ms (at
// once for WARN/ERROR) so per-record lines stay cheap; the file rotates at 10 MiB keeping 7.
// A foreground daemon (systemd, Docker) also writes its lines to stderr: the same JSON when
// stderr is not a terminal, a readable line when it is, and under systemd (stderr is the journal
// JOURNAL_STREAM names) each JSON line after a `<N>` syslog priority, so `journalctl -p warning`
// selects by level. Per-record lines ("record ingested", one per write) stay in the file unless
// `[log] records_to_stderr = true`: at thousands a second they would pass journald's rate limit,
// which then drops lines, WARN and ERROR ones among them.
// Logging never throws: a write that fails (a full disk) is counted and retried (LogWriteStatus,
// shown by `spl status` and `spl doctor` through the storage status), never logged about again.
import { createConsola, type LogObject } from "consola";
import { appendFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync, truncateSync } from "node:fs";
import { dirname } from "node:path";

export const LEVELS = ["error", "warn", "info", "debug", "trace"] as const;
export type Level = (typeof LEVELS)[number];
const CONSOLA_LEVEL: Record<Level, number> = { error: 0, warn: 1, info: 3, debug: 4, trace: 5 };
const NAME_OF: Record<number, string> = { 0: "ERROR", 1: "WARN", 2: "INFO", 3: "INFO", 4: "DEBUG", 5: "TRACE" };
/** syslog priorities (sd-daemon(3)) by level: err, warning, info, debug. */
const PRIORITY_OF: Record<number, string> = { 0: "<3>", 1: "<4>", 2: "<6>", 3: "<6>", 4: "<7>", 5: "<7>" };

export const ROTATE_BYTES = 10 * 1024 * 1024;
export const ROTATE_KEEP = 7;

export type Fields = Record<string, unknown>;

export interface Logger {
  error(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  debug(msg: string, fields?: Fields): void;
  trace(msg: string, fields?: Fields): void;
  enabled(level: Level): boolean;
  /** A logger for `target`; `perRecord` marks lines written once per record (file only by default). */
  child(target: string, opts?: { perRecord?: boolean }): Logger;
  flush(): void;
  /** Stop copying WARN/ERROR to stderr (a detached daemon, once its parent has gone). */
  stopMirroring(): void;
  /** Start a fresh file at the log's path after logrotate moved it (SIGHUP). */
  reopen(): void;
  /** Whether lines reach their destinations, and what was lost when they did not. */
  writeStatus(): LogWriteStatus;
}

/** What a logger could not write (its file, or stderr): for `spl status`, doctor and /metrics. */
export interface LogWriteStatus {
  /** false while writes are failing (retried every RETRY_MS). */
  ok: boolean;
  /** Writes that failed since start (each one a buffer of lines, or one stderr write). */
  failed_writes: number;
  /** Lines lost: they did not fit in the buffer kept for the retry. */
  dropped_lines: number;
  /** The latest failure. */
  last_error: { at: string; message: string } | null;
  /** When the current run of failures began; null while writes succeed. */
  since: string | null;
}

/** How long a failed log write waits before it is tried again (no syscall per line meanwhile). */
export const RETRY_MS = 1000;

/** Counts failures for one logger (shared by its file and stderr, and by every child). */
class WriteFailures {
  failed = 0;
  dropped = 0;
  lastError: LogWriteStatus["last_error"] = null;
  since: string | null = null;
  /** The run of failures was reported on stderr. */
  private reported = false;
  /** `dropped` when the run began. */
  private droppedBefore = 0;

  /**
   * A write failed: counted, and reported once on stderr per run of failures. A failed stderr
   * write is only counted (it is retried with the next line, and reporting it there is moot).
   */
  note(what: string, err: unknown): void {
    this.failed++;
    const at = new Date().toISOString();
    const message = `${what}: ${err instanceof Error ? err.message : String(err)}`;
    // While the file fails, its error is the one to report: the line saying so on stderr (a
    // detached daemon's daemon.out, often on the same full disk) failing too says nothing new.
    if (what === "stderr") {
      if (this.since === null) this.lastError = { at, message };
      return;
    }
    this.lastError = { at, message };
    if (this.since === null) {
      this.since = at;
      this.droppedBefore = this.dropped;
    }
    if (this.reported) return;
    this.reported = true;
    stderrWrite(`spl: cannot write ${message}; log lines wait in memory and are retried every ${RETRY_MS / 1000} s (see 'spl status')\n`);
  }

  /** A write succeeded: the run is over. Returns the run that ended (for one line about it), or null. */
  recovered(): { since: string; dropped: number } | null {
    if (this.since === null) return null;
    const run = { since: this.since, dropped: this.dropped - this.droppedBefore };
    this.since = null;
    this.reported = false;
    return run;
  }

  status(): LogWriteStatus {
    return { ok: this.since === null, failed_writes: this.failed, dropped_lines: this.dropped, last_error: this.lastError, since: this.since };
  }
}

// A failed write to process.stderr (a full disk under daemon.out) arrives later as an 'error'
// event; unhandled, it becomes an uncaught exception, which is logged, which writes to stderr
// again: a loop at 100% CPU. The listener takes those errors, counted by whoever is listening.
let stderrFailed: ((err: unknown) => void) | null = null;
let stderrListening = false;
function stderrWrite(text: string): void {
  if (!stderrListening) {
    stderrListening = true;
    process.stderr.on("error", (err) => stderrFailed?.(err));
  }
  try {
    process.stderr.write(text);
  } catch (err) {
    stderrFailed?.(err);
  }
}

export function levelFromEnv(value = process.env.SPL_LOG): Level {
  const v = (value || "info").toLowerCase();
  return (LEVELS as readonly string[]).includes(v) ? (v as Level) : "info";
}

const encoder = new TextEncoder();

/**
 * Appends lines to a file, rotating it to file.1..file.N when it would pass maxBytes. Lines are
 * encoded into one reusable buffer as they come, so a line per ingested record leaves no string
 * behind to outlive a garbage collection while it waits for the next write (measured: holding
 * them cost ~10 µs per record under load).
 */
class RotatingFile {
  private size: number;
  private readonly buf = new Uint8Array(128 * 1024);
  private used = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  /** While appends fail: no attempt before this time (Date.now() ms); lines wait in buf. */
  private retryAt = 0;

  constructor(
    readonly path: string,
    private readonly failures: WriteFailures,
    readonly maxBytes = ROTATE_BYTES,
    readonly keep = ROTATE_KEEP,
  ) {
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      this.size = existsSync(path) ? statSync(path).size : 0;
    } catch (err) {
      this.size = 0;
      this.failed(err);
    }
  }

  write(line: string, urgent: boolean): void {
    const room = line.length * 3; // UTF-8 bytes at most
    if (this.used + room > this.buf.length) this.flush();
    if (this.used + room <= this.buf.length) this.used += encoder.encodeInto(line, this.buf.subarray(this.used)).written;
    else if (this.used > 0 || Date.now() < this.retryAt || !this.append(encoder.encode(line))) {
      // The buffer holds lines waiting for the file to take writes again; this one is lost.
      this.failures.dropped++;
      return;
    }
    if (urgent) this.flush();
    else this.schedule(50);
  }

  flush() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.used) return;
    const wait = this.retryAt - Date.now();
    if (wait > 0) return this.schedule(wait);
    if (this.append(this.buf.subarray(0, this.used))) this.used = 0;
    else this.schedule(RETRY_MS);
  }

  private schedule(ms: number) {
    if (this.timer || !this.used) return;
    this.timer = setTimeout(() => this.flush(), ms);
    this.timer.unref?.();
  }

  private append(bytes: Uint8Array): boolean {
    try {
      if (this.size > 0 && this.size + bytes.length > this.maxBytes) this.rotate();
      appendFileSync(this.path, bytes, { mode: 0o600 });
      this.size += bytes.length;
    } catch (err) {
      // Disk full, or the file became unwritable: cut off a partly written line so the file stays
      // whole lines, keep the lines for the retry.
      try {
        if (existsSync(this.path) && statSync(this.path).size > this.size) truncateSync(this.path, this.size);
      } catch {}
      this.failed(err);
      return false;
    }
    if (this.retryAt) this.resumed();
    return true;
  }

  private failed(err: unknown) {
    this.retryAt = Date.now() + RETRY_MS;
    this.failures.note(`log ${this.path}`, err);
  }

  /** The first append after failures: one line says what was lost, in the file itself. */
  private resumed() {
    this.retryAt = 0;
    const run = this.failures.recovered();
    if (!run) return;
    const line = jsonLine(isoNow(), "WARN", "spl::log", "the log file could not be written for a while; lines that did not fit in memory were dropped", { path: this.path, since: run.since, dropped_lines: run.dropped });
    try {
      appendFileSync(this.path, line, { mode: 0o600 });
      this.size += Buffer.byteLength(line);
    } catch {}
  }

  /** The file may have been moved away (logrotate): appends recreate it, sized from scratch. */
  reopen() {
    this.flush();
    try {
      this.size = existsSync(this.path) ? statSync(this.path).size : 0;
    } catch {
      this.size = 0;
    }
  }

  private rotate() {
    rmSync(`${this.path}.${this.keep}`, { force: true });
    for (let i = this.keep - 1; i >= 1; i--) {
      if (existsSync(`${this.path}.${i}`)) renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
    }
    if (existsSync(this.path)) renameSync(this.path, `${this.path}.1`);
    this.size = 0;
  }
}

/** Lines for stderr, batched like the file's so a line per record stays cheap. */
class StderrLines {
  private pending = "";
  private timer: ReturnType<typeof setTimeout> | null = null;

  write(line: string, urgent: boolean) {
    this.pending += line;
    if (urgent || this.pending.length > 64 * 1024) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), 50);
      this.timer.unref?.();
    }
  }

  flush() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.pending) return;
    stderrWrite(this.pending);
    this.pending = "";
  }
}

/** `2026-11-27T11:48:40.006Z INFO  spl::http  msg  key=value ...` for a person at a terminal. */
function readableLine(ts: string, level: string, target: string, msg: string, fields: Fields | undefined): string {
  let out = `${ts.slice(11, 23)} ${level.padEnd(5)} ${target}  ${msg}`;
  for (const [k, v] of Object.entries(fields ?? {})) {
    if (v !== undefined) out += ` ${k}=${typeof v === "string" ? v : v instanceof Error ? v.message : JSON.stringify(v)}`;
  }
  return out + "\n";
}

/** Keys every line has; a field of the same name (a dispatch's `target` DID) goes under "fields". */
const LINE_KEYS = new Set(["ts", "level", "target", "msg", "fields"]);

/** One JSON line: built as an object and stringified once (2-3x faster than joining parts). */
function jsonLine(ts: string, level: string, target: string, msg: string, fields: Fields | undefined): string {
  const line: Record<string, unknown> = { ts, level, target, msg };
  let nested: Fields | null = null;
  for (const k in fields) {
    const v = fields[k];
    if (v === undefined) continue;
    const value = v instanceof Error ? v.message : v;
    if (LINE_KEYS.has(k)) (nested ??= {})[k] = value;
    else line[k] = value;
  }
  if (nested) line.fields = nested;
  return JSON.stringify(line) + "\n";
}

// One Date formatting per millisecond: under load many lines share their timestamp.
let lastMs = 0;
let lastIso = "";
function isoNow(): string {
  const ms = Date.now();
  if (ms !== lastMs) {
    lastMs = ms;
    lastIso = new Date(ms).toISOString();
  }
  return lastIso;
}

export interface FileLoggerOptions {
  level?: Level;
  /** Also print WARN and ERROR lines to stderr as `warn: msg` (a detached daemon until ready). */
  mirrorToStderr?: boolean;
  /**
   * Lines to stderr too: "json" (docker logs, a pipe), "journal" (JSON after a `<N>` priority:
   * systemd) or "text" (a terminal).
   */
  stderr?: "json" | "journal" | "text";
  /** Per-record lines (child(…, {perRecord})) to stderr as well (`[log] records_to_stderr`). */
  stderrRecords?: boolean;
  maxBytes?: number;
}

/** A logger writing JSON lines to `path` (null: no file, `[log] file = false`) and as opts say. */
export function createFileLogger(path: string | null, opts: FileLoggerOptions = {}): Logger {
  const failures = new WriteFailures();
  stderrFailed = (err) => failures.note("stderr", err);
  const file = path === null ? null : new RotatingFile(path, failures, opts.maxBytes);
  const stderr = opts.stderr ? new StderrLines() : null;
  const text = opts.stderr === "text" ? terminalLines(stderr!) : null;
  const threshold = CONSOLA_LEVEL[opts.level ?? levelFromEnv()];
  // The line is built here rather than through consola: a log call per ingested record must cost
  // about what formatting the line costs (consola's per-call bookkeeping was ~8% of ingest CPU).
  const journal = opts.stderr === "journal";
  const write = (level: number, target: string, msg: string, fields: Fields | undefined, perRecord: boolean) => {
    if (level > threshold) return;
    const ts = isoNow();
    const name = NAME_OF[level]!;
    const urgent = level <= 1;
    try {
      const line = jsonLine(ts, name, target, String(msg), fields);
      file?.write(line, urgent);
      if (perRecord && !urgent && !opts.stderrRecords) return;
      if (text) text(level, target, String(msg), fields);
      else if (stderr) stderr.write(journal ? PRIORITY_OF[level] + line : line, urgent);
      else if (opts.mirrorToStderr && urgent) stderrWrite(`${name.toLowerCase()}: ${msg}\n`);
    } catch (err) {
      failures.note("log line", err); // a field JSON cannot encode (a BigInt, a cycle)
    }
  };
  const make = (target: string, perRecord = false): Logger => ({
    error: (m, f) => write(0, target, m, f, perRecord),
    warn: (m, f) => write(1, target, m, f, perRecord),
    info: (m, f) => write(3, target, m, f, perRecord),
    debug: (m, f) => write(4, target, m, f, perRecord),
    trace: (m, f) => write(5, target, m, f, perRecord),
    enabled: (l) => CONSOLA_LEVEL[l] <= threshold,
    child: (t, o) => make(t, o?.perRecord === true),
    flush: () => {
      file?.flush();
      stderr?.flush();
    },
    stopMirroring: () => {
      opts.mirrorToStderr = false;
    },
    reopen: () => file?.reopen(),
    writeStatus: () => failures.status(),
  });
  return make("spl");
}

/** A foreground daemon at a terminal: consola renders each line for a person (batched like the file). */
function terminalLines(out: StderrLines) {
  const reporter = {
    log(obj: LogObject) {
      const [target, msg, fields] = obj.args as [string, string, Fields | undefined];
      out.write(readableLine(obj.date.toISOString(), NAME_OF[obj.level] ?? "INFO", target, msg, fields), obj.level <= 1);
    },
  };
  const consola = createConsola({ level: CONSOLA_LEVEL.trace, throttle: 0, reporters: [reporter] });
  const byLevel: Record<number, (...args: unknown[]) => void> = { 0: consola.error, 1: consola.warn, 3: consola.info, 4: consola.debug, 5: consola.trace };
  return (level: number, target: string, msg: string, fields: Fields | undefined) => byLevel[level]!(target, msg, fields);
}

/** A logger that discards everything (CLI code paths that share daemon modules). */
export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  trace() {},
  enabled: () => false,
  child: () => silentLogger,
  flush() {},
  stopMirroring() {},
  reopen() {},
  writeStatus: () => ({ ok: true, failed_writes: 0, dropped_lines: 0, last_error: null, since: null }),
};

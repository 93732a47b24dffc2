// The daemon's JSON-lines log: one object per line with ts, level, target, msg and any
// structured fields (actor, thread, record...). Writes are buffered and flushed every 50 ms (at
// once for WARN/ERROR) so per-record lines stay cheap; the file rotates at 10 MiB keeping 7.
import { createConsola, type ConsolaInstance, type LogObject } from "consola";
import { appendFileSync, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname } from "node:path";

export const LEVELS = ["error", "warn", "info", "debug", "trace"] as const;
export type Level = (typeof LEVELS)[number];
const CONSOLA_LEVEL: Record<Level, number> = { error: 0, warn: 1, info: 3, debug: 4, trace: 5 };
const NAME_OF: Record<number, string> = { 0: "ERROR", 1: "WARN", 2: "INFO", 3: "INFO", 4: "DEBUG", 5: "TRACE" };

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
  child(target: string): Logger;
  flush(): void;
  /** Stop copying WARN/ERROR to stderr (a detached daemon, once its parent has gone). */
  stopMirroring(): void;
}

export function levelFromEnv(value = process.env.SPL_LOG): Level {
  const v = (value || "info").toLowerCase();
  return (LEVELS as readonly string[]).includes(v) ? (v as Level) : "info";
}

/** Appends lines to a file, rotating it to file.1..file.N when it would pass maxBytes. */
class RotatingFile {
  private size: number;
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private failing = false;

  constructor(
    readonly path: string,
    readonly maxBytes = ROTATE_BYTES,
    readonly keep = ROTATE_KEEP,
  ) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.size = existsSync(path) ? statSync(path).size : 0;
  }

  write(line: string, urgent: boolean) {
    this.pending.push(line);
    this.pendingBytes += Buffer.byteLength(line);
    if (urgent || this.pendingBytes > 64 * 1024) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), 50);
      this.timer.unref?.();
    }
  }

  flush() {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (!this.pending.length) return;
    const text = this.pending.join("");
    this.pending = [];
    this.pendingBytes = 0;
    try {
      if (this.size > 0 && this.size + Buffer.byteLength(text) > this.maxBytes) this.rotate();
      appendFileSync(this.path, text, { mode: 0o600 });
      this.size += Buffer.byteLength(text);
      this.failing = false;
    } catch (err) {
      // Disk full, or the file became unwritable: the lines go to stderr instead (the console,
      // the journal, docker logs), so the error that caused it is not lost with them.
      if (!this.failing) process.stderr.write(`spl: cannot write log ${this.path}: ${(err as Error).message}; logging to stderr until it works again\n`);
      this.failing = true;
      process.stderr.write(text);
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

/** Keys every line has; a field of the same name (a dispatch's `target` DID) goes under "fields". */
const LINE_KEYS = new Set(["ts", "level", "target", "msg", "fields"]);

function serializeFields(fields: Fields | undefined): string {
  if (!fields) return "";
  let out = "";
  let nested: Fields | null = null;
  for (const [k, v] of Object.entries(fields)) {
    if (v === undefined) continue;
    const value = v instanceof Error ? v.message : v;
    if (LINE_KEYS.has(k)) (nested ??= {})[k] = value;
    else out += `,${JSON.stringify(k)}:${JSON.stringify(value)}`;
  }
  return nested ? `${out},"fields":${JSON.stringify(nested)}` : out;
}

export interface FileLoggerOptions {
  level?: Level;
  /** Also print WARN and ERROR lines to stderr (foreground `spl serve`). */
  mirrorToStderr?: boolean;
  maxBytes?: number;
}

export function createFileLogger(path: string, opts: FileLoggerOptions = {}): Logger {
  const file = new RotatingFile(path, opts.maxBytes);
  const reporter = {
    log(obj: LogObject) {
      const [msg, fields] = obj.args as [string, Fields | undefined];
      const level = NAME_OF[obj.level] ?? "INFO";
      const line =
        `{"ts":${JSON.stringify(obj.date.toISOString())},"level":"${level}","target":${JSON.stringify(obj.tag || "spl")}` +
        `,"msg":${JSON.stringify(String(msg))}${serializeFields(fields)}}\n`;
      file.write(line, obj.level <= 1);
      if (opts.mirrorToStderr && obj.level <= 1) process.stderr.write(`${level.toLowerCase()}: ${msg}\n`);
    },
  };
  const level = opts.level ?? levelFromEnv();
  const root = createConsola({ level: CONSOLA_LEVEL[level], throttle: 0, reporters: [reporter] });
  const wrap = (c: ConsolaInstance): Logger => ({
    error: (m, f) => c.error(m, f),
    warn: (m, f) => c.warn(m, f),
    info: (m, f) => c.info(m, f),
    debug: (m, f) => c.debug(m, f),
    trace: (m, f) => c.trace(m, f),
    enabled: (l) => CONSOLA_LEVEL[l] <= CONSOLA_LEVEL[level],
    child: (target) => wrap(root.withTag(target)),
    flush: () => file.flush(),
    stopMirroring: () => {
      opts.mirrorToStderr = false;
    },
  });
  return wrap(root.withTag("spl"));
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
};

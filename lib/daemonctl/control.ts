// Controlling a daemon from the CLI: find it (pid file, else socket, else the port named in the
// store lock or config.toml) and stop it with SIGTERM. Starting one is start.ts.
import { existsSync, realpathSync, rmSync } from "node:fs";
import { loadConfig } from "../config";
import { UserError } from "../errors";
import { homePaths, type HomePaths } from "../paths";
import { request, resolveTarget } from "../client";
import { readPid } from "./pidfile";
import { isAlive, isSplServe, waitForExit } from "./proc";
import { readLockHolder } from "./store-lock";

const STOP_TIMEOUT_MS = 15_000;
/** A daemon still writing its startup backup finishes it before it exits (lib/daemon/serve.ts). */
const STOP_DURING_BACKUP_TIMEOUT_MS = 10 * 60_000;

/** argv prefix that re-runs this same spl (compiled binary, or bun + script in development). */
export function selfCommand(): string[] {
  const script = process.argv[1] ?? "";
  const compiled = script.startsWith("/$bunfs/") || script.startsWith("B:/~BUN/");
  return compiled ? [process.execPath] : [process.execPath, script];
}

export async function socketHealth(p: HomePaths): Promise<{ status: number; body: any } | null> {
  if (!existsSync(p.socket)) return null;
  try {
    return await request("GET", "/health", undefined, { socket: p.socket, url: "http://localhost", describe: p.socket }, 2000);
  } catch {
    return null;
  }
}

export interface RunningDaemon {
  pid: number;
  via: "pid file" | "socket" | "port" | "store lock";
  /** Where it answers HTTP when found by its port (its socket did not answer). */
  url?: string;
}

export function sameHome(a: string, b: string): boolean {
  try {
    return realpathSync(a) === realpathSync(b);
  } catch {
    return a === b;
  }
}

/** A wildcard bind is reached on loopback. */
function connectHost(host: string | null): string {
  if (!host || host === "0.0.0.0" || host === "::" || host === "localhost") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * This home's daemon on TCP, for when its socket is gone: the address the store lock's holder
 * wrote (it is held for the daemon's life), else config.toml's port. Confirmed by /health's pid
 * and home, so a stale lock entry or another home's daemon never matches.
 */
export async function daemonByPort(p = homePaths()): Promise<{ pid: number; url: string } | null> {
  const candidates: string[] = [];
  const holder = readLockHolder(p.store);
  if (holder?.command === "serve" && holder.port && isSplServe(holder.pid)) candidates.push(`http://${connectHost(holder.host)}:${holder.port}`);
  try {
    candidates.push(`http://127.0.0.1:${loadConfig(p.config).server.port}`);
  } catch {
    candidates.push("http://127.0.0.1:9100");
  }
  for (const url of new Set(candidates)) {
    try {
      const r = await request("GET", "/health", undefined, { url, describe: url }, 2000);
      if (r.body?.pid && r.body.home && sameHome(r.body.home, p.home)) return { pid: r.body.pid, url };
    } catch {}
  }
  return null;
}

/** Finds this home's daemon even when its pid file (or all of run/) was lost. */
export async function findDaemon(p = homePaths()): Promise<RunningDaemon | null> {
  const pid = readPid(p.pidFile);
  if (pid !== null && isSplServe(pid)) return { pid, via: "pid file" };
  const viaSocket = await socketHealth(p);
  if (viaSocket?.body?.pid && sameHome(viaSocket.body.home, p.home)) return { pid: viaSocket.body.pid, via: "socket" };
  const viaPort = await daemonByPort(p);
  return viaPort ? { ...viaPort, via: "port" } : null;
}

export interface StopResult {
  stopped: boolean;
  pid?: number;
  via?: string;
}

export async function stopDaemon(opts: { force?: boolean } = {}): Promise<StopResult> {
  const p = homePaths();
  const found = await findDaemon(p);
  if (!found) {
    // Nothing answers: leftovers from a crash are safe to clear.
    const pid = readPid(p.pidFile);
    if (pid !== null && !isAlive(pid)) rmSync(p.pidFile, { force: true });
    return { stopped: false };
  }
  const backup = await backupInProgress(found);
  if (backup) process.stderr.write(`note: spl serve (pid ${found.pid}) finishes its startup backup (${backup}) before it exits; waiting for it\n`);
  const timeout = backup ? STOP_DURING_BACKUP_TIMEOUT_MS : STOP_TIMEOUT_MS;
  process.kill(found.pid, "SIGTERM");
  if (!(await waitForExit(found.pid, timeout))) {
    if (!opts.force) {
      throw new UserError(
        `spl serve (pid ${found.pid}) did not stop within ${timeout / 1000} s`,
        "wait and retry, or 'spl serve --stop --force' to SIGKILL it",
      );
    }
    process.kill(found.pid, "SIGKILL");
    await waitForExit(found.pid, 5000);
    if (readPid(p.pidFile) === found.pid) rmSync(p.pidFile, { force: true });
    rmSync(p.socket, { force: true });
  }
  return { stopped: true, pid: found.pid, via: found.via };
}

/** The running daemon's startup backup outcome while it is still being written, else null. */
async function backupInProgress(found: RunningDaemon): Promise<string | null> {
  try {
    const r = await request("GET", "/v1/status", undefined, resolveTarget(found.url), 2000);
    const outcome = r.status === 200 ? r.body?.backup?.outcome : undefined;
    return typeof outcome === "string" && outcome.startsWith("in progress") ? outcome : null;
  } catch {
    return null;
  }
}

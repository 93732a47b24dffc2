// Controlling a daemon from the CLI: start it detached and wait until it is ready, find it
// (pid file, else socket, else the port named in the store lock or config.toml) and stop it
// with SIGTERM.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { loadConfig } from "../config";
import { UserError } from "../errors";
import { ensureHome } from "../home";
import { homePaths, type HomePaths } from "../paths";
import { request, resolveTarget } from "../client";
import { renderBanner } from "./banner";
import { readPid } from "./pidfile";
import { cmdline, isAlive, isSplServe, waitForExit } from "./proc";
import { readLockHolder } from "./store-lock";

const READY_TIMEOUT_MS = 10 * 60_000;
const STOP_TIMEOUT_MS = 15_000;
/** A daemon still writing its startup backup finishes it before it exits (lib/daemon/serve.ts). */
const STOP_DURING_BACKUP_TIMEOUT_MS = 10 * 60_000;

/** argv prefix that re-runs this same spl (compiled binary, or bun + script in development). */
export function selfCommand(): string[] {
  const script = process.argv[1] ?? "";
  const compiled = script.startsWith("/$bunfs/") || script.startsWith("B:/~BUN/");
  return compiled ? [process.execPath] : [process.execPath, script];
}

async function socketHealth(p: HomePaths): Promise<{ status: number; body: any } | null> {
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

export interface StartFlags {
  port?: string;
  host?: string;
  extra?: string[];
}

function readFrom(path: string, offset: number): string {
  try {
    return readFileSync(path).subarray(offset).toString("utf8");
  } catch {
    return "";
  }
}

/** `spl serve --daemon`: spawn a detached `spl serve`, wait for /health, print the banner. */
export async function startDetached(flags: StartFlags): Promise<string> {
  const p = homePaths();
  ensureHome(p);
  const running = await findDaemon(p);
  if (running) throw new UserError(`spl serve is already running (pid ${running.pid})`, "stop it with 'spl serve --stop', or check it with 'spl status'");
  process.stdout.write("Starting Syncropel instance...\n"); // only once nothing refuses the start

  const args = ["serve"];
  if (flags.port !== undefined) args.push("--port", flags.port);
  if (flags.host !== undefined) args.push("--host", flags.host);
  args.push(...(flags.extra ?? []));
  const offset = existsSync(p.daemonOut) ? statSync(p.daemonOut).size : 0;
  const outFd = openSync(p.daemonOut, "a", 0o600);
  const [cmd, ...pre] = selfCommand();
  const child = spawn(cmd!, [...pre, ...args], { detached: true, stdio: ["ignore", outFd, outFd], env: { ...process.env, SPL_DETACHED: "1" } });
  closeSync(outFd);
  let exited: number | null = null;
  child.on("exit", (code) => (exited = code ?? 1));
  child.unref();

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited !== null) {
      // The child's last `error:` line is the CLI's one-line report of why it stopped.
      const last = readFrom(p.daemonOut, offset)
        .split("\n")
        .filter((l) => l.startsWith("error:"))
        .pop();
      const output = `the daemon's output is in ${p.daemonOut}`;
      if (last) {
        const [what, ...fix] = last.replace(/^error: /, "").split(" — ");
        throw new UserError(what!, [...fix, output].join("; "));
      }
      throw new UserError(`spl serve exited with code ${exited} during startup`, `see ${p.log}; ${output}`);
    }
    const h = await socketHealth(p);
    if (h?.status === 200 && h.body?.pid === child.pid) {
      // The detached child's warnings (unknown config keys, a store that looks lost) went to its
      // output file; show them here, where the operator is looking.
      for (const line of readFrom(p.daemonOut, offset).split("\n")) if (line.startsWith("warn: ")) process.stderr.write(`${line}\n`);
      const status = await request("GET", "/v1/status", undefined, resolveTarget());
      if (status.status !== 200) {
        // e.g. permission rules that do not allow the operator status_read: the daemon is up all the same.
        const bind = `${flags.host ?? "127.0.0.1"}:${flags.port ?? loadConfig(p.config).server.port}`;
        const why = { path: `(not shown: /v1/status answered ${status.status} ${status.body?.code ?? ""})`.replace(" )", ")"), outcome: "see the log" };
        return renderBanner({ store: h.body.store, backup: why, bind, socket: p.socket, pid: h.body.pid, instance_did: h.body.instance_did });
      }
      return renderBanner({ ...status.body, store: status.body.store, pid: status.body.pid });
    }
    await Bun.sleep(30);
  }
  throw new UserError(`spl serve (pid ${child.pid}) did not become ready within ${READY_TIMEOUT_MS / 60000} minutes`, `see ${p.log}`);
}

/** Flags the running daemon was started with, so a restart keeps its port and host. */
export function runningFlags(pid: number): StartFlags {
  const argv = (cmdline(pid) ?? "").split(" ");
  const value = (name: string) => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : argv.find((a) => a.startsWith(`${name}=`))?.slice(name.length + 1);
  };
  return { port: value("--port"), host: value("--host"), extra: argv.includes("--insecure-localhost") ? ["--insecure-localhost"] : [] };
}

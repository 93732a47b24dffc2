// `spl serve --daemon` (alias `spl start`): spawn a detached `spl serve` in a new session, wait
// until it answers /health as ready, print its banner; or print the child's error and exit 1.
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, statSync } from "node:fs";
import { loadConfig } from "../config";
import { UserError } from "../errors";
import { ensureHome } from "../home";
import { homePaths } from "../paths";
import { request, resolveTarget } from "../client";
import { renderBanner } from "./banner";
import { findDaemon, selfCommand, socketHealth } from "./control";
import { cmdline } from "./proc";

const READY_TIMEOUT_MS = 10 * 60_000;

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

// [dispatch] in config.toml: the concurrency cap and one adapter per target DID.
//   [dispatch]
//   concurrency = 4
//   [dispatch.targets."did:sync:agent:builder"]
//   adapter = "exec"            # or "echo" (the default for targets not listed)
//   command = ["./build.sh"]    # argv, never a shell
//   timeout_secs = 600
//   cwd = "/srv/work"
// A broken target entry does not stop the daemon: dispatches to it fail with the fix in the
// reason and an ERROR log line, and every other target keeps working.
import { existsSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { type Adapter, EchoAdapter, ExecAdapter } from "./adapters";

export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_TIMEOUT_SECS = 600;

export interface DispatchConfig {
  concurrency: number;
  /** Raw target tables, checked when a dispatch needs them. */
  targets: Record<string, unknown>;
}

/** Reads [dispatch] from parsed TOML; returns an error message for a bad concurrency. */
export function readDispatchConfig(raw: unknown): DispatchConfig | string {
  const d = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  const c = d.concurrency === undefined ? DEFAULT_CONCURRENCY : Number(d.concurrency);
  if (!Number.isInteger(c) || c < 1 || c > 256) return "[dispatch] concurrency must be an integer from 1 to 256";
  const targets = d.targets && typeof d.targets === "object" && !Array.isArray(d.targets) ? (d.targets as Record<string, unknown>) : {};
  return { concurrency: c, targets };
}

/** Whether argv[0] names something we can execute (a path, or a name on PATH). */
function findCommand(cmd: string, cwd?: string): boolean {
  if (cmd.includes("/")) {
    const p = isAbsolute(cmd) ? cmd : join(cwd ?? process.cwd(), cmd);
    return existsSync(p) && statSync(p).isFile();
  }
  return Bun.which(cmd) !== null;
}

/** The adapter for `target`, or a one-line error naming the fix. Unlisted targets get echo. */
export function adapterFor(config: DispatchConfig, target: string): Adapter | string {
  const entry = config.targets[target];
  if (entry === undefined) return new EchoAdapter(0);
  const where = `[dispatch.targets."${target}"] in config.toml`;
  if (!entry || typeof entry !== "object") return `${where} must be a table — give it adapter = "echo" or "exec"`;
  const e = entry as Record<string, unknown>;
  if (e.adapter === undefined) return `${where} has no adapter — add adapter = "echo" or adapter = "exec" with command = [...]`;
  if (e.adapter === "echo") {
    const delay = e.delay_ms === undefined ? 0 : Number(e.delay_ms);
    if (!Number.isFinite(delay) || delay < 0) return `${where}: delay_ms must be a number >= 0`;
    return new EchoAdapter(delay);
  }
  if (e.adapter !== "exec") return `${where}: unknown adapter ${JSON.stringify(e.adapter)} — use "echo" or "exec"`;
  const command = e.command;
  if (!Array.isArray(command) || command.length === 0 || !command.every((x) => typeof x === "string" && x !== "")) {
    return `${where}: command must be a non-empty list of strings (argv), e.g. command = ["./run.sh", "--fast"]`;
  }
  const timeout = e.timeout_secs === undefined ? DEFAULT_TIMEOUT_SECS : Number(e.timeout_secs);
  if (!Number.isFinite(timeout) || timeout <= 0) return `${where}: timeout_secs must be a number > 0`;
  const cwd = e.cwd === undefined ? undefined : String(e.cwd);
  if (cwd !== undefined && !(existsSync(cwd) && statSync(cwd).isDirectory())) return `${where}: cwd ${cwd} is not a directory — create it or fix cwd`;
  if (!findCommand(command[0] as string, cwd)) return `${where}: command ${command[0]} not found — give its full path, or install it`;
  return new ExecAdapter({ command: command as string[], timeoutSecs: timeout, cwd });
}

// [dispatch] in config.toml: the concurrency cap and one adapter per target DID.
//   [dispatch]
//   concurrency = 4
//   [dispatch.targets."did:sync:agent:builder"]
//   adapter = "exec"            # or "echo" (the default for targets not listed)
//   command = ["./build.sh"]    # argv, never a shell
//   timeout_secs = 600
//   cwd = "/srv/work"
//   pass_env = ["GITHUB_TOKEN"] # daemon environment variables the command gets besides the allowlist
//   verdicts = true             # its outcomes are trust verdicts (default: recorded, never trust)
// A value of the wrong shape is a startup error naming the key. What can change while the daemon
// runs (a command installed later, a cwd created later) and a target table that names no adapter
// are checked per dispatch instead: that dispatch fails with the fix in its reason and the log,
// and every other target keeps working.
import { existsSync, statSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { UserError } from "../errors";
import { type Adapter, EchoAdapter, ExecAdapter } from "./adapters";

export const DEFAULT_CONCURRENCY = 4;
export const DEFAULT_TIMEOUT_SECS = 600;

export interface TargetConfig {
  adapter?: "echo" | "exec";
  command?: string[];
  timeoutSecs: number;
  cwd?: string;
  delayMs: number;
  /** `pass_env`: names of the daemon's environment variables passed to the command (adapters.ts). */
  passEnv?: string[];
  /** The adapter's accept/reject is a trust verdict about the target (README "Dispatch"). */
  verdicts: boolean;
}

export interface DispatchConfig {
  concurrency: number;
  targets: Record<string, TargetConfig>;
}

export const defaultDispatchConfig = (): DispatchConfig => ({ concurrency: DEFAULT_CONCURRENCY, targets: {} });

const TARGET_KEYS = ["adapter", "command", "timeout_secs", "cwd", "delay_ms", "pass_env", "verdicts"];
const isTable = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** Reads the [dispatch] table of a parsed config.toml; a malformed value is a UserError naming its key. */
export function parseDispatchConfig(raw: unknown, path: string): DispatchConfig {
  const bad = (key: string, want: string, fix = "edit the file and try again"): never => {
    throw new UserError(`${path}: ${key} must be ${want}`, fix);
  };
  const config = defaultDispatchConfig();
  if (raw === undefined) return config;
  if (!isTable(raw)) bad("[dispatch]", "a table");
  const d = raw as Record<string, unknown>;
  for (const key of Object.keys(d)) {
    if (key !== "concurrency" && key !== "targets") bad(`[dispatch] ${key}`, "one of concurrency, targets (unknown key)", `remove it, or use [dispatch.targets."<did>"] for a target`);
  }
  if (d.concurrency !== undefined) {
    if (!Number.isInteger(d.concurrency) || (d.concurrency as number) < 1 || (d.concurrency as number) > 256) bad("[dispatch] concurrency", "an integer from 1 to 256", "e.g. concurrency = 4");
    config.concurrency = d.concurrency as number;
  }
  if (d.targets === undefined) return config;
  if (!isTable(d.targets)) bad("[dispatch] targets", 'a table of targets', 'write each as [dispatch.targets."did:sync:agent:name"]');
  for (const [did, entry] of Object.entries(d.targets as Record<string, unknown>)) {
    const where = `[dispatch.targets."${did}"]`;
    if (!did.startsWith("did:")) bad(`${where}`, "named by an actor DID", `e.g. [dispatch.targets."did:sync:agent:builder"]`);
    if (!isTable(entry)) bad(where, "a table", `give it adapter = "echo" or adapter = "exec"`);
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) if (!TARGET_KEYS.includes(key)) bad(`${where} ${key}`, `one of ${TARGET_KEYS.join(", ")} (unknown key)`, "remove it or fix its spelling");
    const t: TargetConfig = { timeoutSecs: DEFAULT_TIMEOUT_SECS, delayMs: 0, verdicts: false };
    if (e.adapter !== undefined) {
      if (e.adapter !== "echo" && e.adapter !== "exec") bad(`${where} adapter`, '"echo" or "exec"', `e.g. adapter = "exec"`);
      t.adapter = e.adapter as "echo" | "exec";
    }
    if (e.command !== undefined) {
      const c = e.command;
      if (!Array.isArray(c) || c.length === 0 || !c.every((x) => typeof x === "string" && x !== "")) bad(`${where} command`, "a non-empty list of strings (argv, no shell)", `e.g. command = ["./run.sh", "--fast"]`);
      t.command = c as string[];
    }
    if (t.adapter === "exec" && !t.command) bad(`${where} command`, 'given for adapter = "exec"', `add command = ["/path/to/program", "arg"]`);
    if (e.timeout_secs !== undefined) {
      if (typeof e.timeout_secs !== "number" || !(e.timeout_secs > 0)) bad(`${where} timeout_secs`, "a number of seconds > 0", "e.g. timeout_secs = 600");
      t.timeoutSecs = e.timeout_secs as number;
    }
    if (e.delay_ms !== undefined) {
      if (typeof e.delay_ms !== "number" || !(e.delay_ms >= 0)) bad(`${where} delay_ms`, "a number of milliseconds >= 0", "e.g. delay_ms = 100");
      t.delayMs = e.delay_ms as number;
    }
    if (e.verdicts !== undefined) {
      if (typeof e.verdicts !== "boolean") bad(`${where} verdicts`, "true or false", "e.g. verdicts = true (its outcomes become trust verdicts)");
      t.verdicts = e.verdicts as boolean;
    }
    if (e.cwd !== undefined) {
      if (typeof e.cwd !== "string" || e.cwd === "") bad(`${where} cwd`, "a directory path", `e.g. cwd = "/srv/work"`);
      t.cwd = e.cwd as string;
    }
    if (e.pass_env !== undefined) {
      const p = e.pass_env;
      if (!Array.isArray(p) || !p.every((x) => typeof x === "string" && /^[A-Za-z_][A-Za-z0-9_]*$/.test(x))) bad(`${where} pass_env`, "a list of environment variable names", `e.g. pass_env = ["GITHUB_TOKEN"]`);
      t.passEnv = p as string[];
    }
    config.targets[did] = t;
  }
  return config;
}

/** Whether argv[0] names a file we could execute (a path, or a name on PATH). */
function findCommand(cmd: string, cwd?: string): boolean {
  if (cmd.includes("/")) {
    const p = isAbsolute(cmd) ? cmd : join(cwd ?? process.cwd(), cmd);
    return existsSync(p) && statSync(p).isFile();
  }
  return Bun.which(cmd) !== null;
}

/** The adapter for `target`, or a one-line error naming the fix. Targets not listed get echo. */
export function adapterFor(config: DispatchConfig, target: string): Adapter | string {
  const t = config.targets[target];
  if (!t) return new EchoAdapter(0);
  const where = `[dispatch.targets."${target}"] in config.toml`;
  if (!t.adapter) return `${where} has no adapter — add adapter = "echo", or adapter = "exec" with command = [...], and restart`;
  if (t.adapter === "echo") return new EchoAdapter(t.delayMs);
  const command = t.command!;
  if (t.cwd !== undefined && !(existsSync(t.cwd) && statSync(t.cwd).isDirectory())) return `${where}: cwd ${t.cwd} is not a directory — create it, or fix cwd and restart`;
  if (!findCommand(command[0]!, t.cwd)) return `${where}: command ${command[0]} not found — install it, or give its full path in command and restart`;
  return new ExecAdapter({ command, timeoutSecs: t.timeoutSecs, cwd: t.cwd, passEnv: t.passEnv });
}

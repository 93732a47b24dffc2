// Runs the citty command tree with operator-grade edges: unknown commands, options and extra
// arguments are usage errors (exit 2); UserErrors print one line `error: <what> — <fix>`; no
// stack traces unless SPL_LOG=debug.
import { type ArgsDef, type CommandDef, runCommand, showUsage } from "citty";
import { UsageError, UserError } from "../errors";
import { errorPrefix } from "../journal";
import { suggestion } from "./suggest";

type AnyCommand = CommandDef<any>;

const resolve = async <T>(v: T | (() => T | Promise<T>) | Promise<T>): Promise<T> =>
  typeof v === "function" ? await (v as () => T | Promise<T>)() : await v;

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c) => c.toUpperCase());
const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

interface FlagInfo {
  takesValue: boolean;
}

function flagTable(args: ArgsDef): Map<string, FlagInfo> {
  const table = new Map<string, FlagInfo>();
  for (const [name, def] of Object.entries(args)) {
    if (def.type === "positional") continue;
    const info = { takesValue: def.type === "string" || def.type === "enum" };
    const aliases = Array.isArray((def as any).alias) ? (def as any).alias : (def as any).alias ? [(def as any).alias] : [];
    for (const n of [name, camel(name), kebab(name), ...aliases]) table.set(n, info);
  }
  table.set("help", { takesValue: false });
  table.set("h", { takesValue: false });
  return table;
}

/** Positionals of argv for one command level, skipping values of its string options. */
function positionals(argv: string[], flags: Map<string, FlagInfo>): { index: number; value: string }[] {
  const found: { index: number; value: string }[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      for (let j = i + 1; j < argv.length; j++) found.push({ index: j, value: argv[j]! });
      break;
    }
    if (a.startsWith("-") && a.length > 1) {
      const name = a.replace(/^-{1,2}/, "").split("=")[0]!;
      if (!a.includes("=") && flags.get(name)?.takesValue) i++;
      continue;
    }
    found.push({ index: i, value: a });
  }
  return found;
}

async function findSub(cmd: AnyCommand, name: string): Promise<AnyCommand | undefined> {
  const subs = (await resolve(cmd.subCommands)) as Record<string, any> | undefined;
  if (!subs) return undefined;
  if (name in subs) return resolve(subs[name]);
  for (const s of Object.values(subs)) {
    const c = (await resolve(s)) as AnyCommand;
    const meta = await resolve(c.meta);
    const alias = meta?.alias;
    if (alias === name || (Array.isArray(alias) && alias.includes(name))) return c;
  }
  return undefined;
}

function checkLeafArgs(argv: string[], args: ArgsDef, path: string) {
  const flags = flagTable(args);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") break;
    if (!a.startsWith("-") || a.length === 1 || /^-\d/.test(a)) continue;
    let name = a.replace(/^-{1,2}/, "").split("=")[0]!;
    if (name.startsWith("no-") && flags.has(name.slice(3)) && !flags.get(name.slice(3))!.takesValue) name = name.slice(3);
    const info = flags.get(name);
    if (!info) {
      const longNames = Object.entries(args).filter(([, d]) => d.type !== "positional").map(([n]) => `--${kebab(n)}`);
      throw new UsageError(`unknown option '${a.split("=")[0]}' for '${path}'`, suggestion(`--${name}`, longNames, path));
    }
    if (info.takesValue && !a.includes("=")) {
      if (i + 1 >= argv.length) throw new UsageError(`option '${a}' needs a value`, `see '${path} --help'`);
      i++;
    }
  }
  const declared = Object.values(args).filter((d) => d.type === "positional").length;
  const given = positionals(argv, flags);
  if (given.length > declared) {
    throw new UsageError(`unexpected argument '${given[declared]!.value}' for '${path}'`, `see '${path} --help'`);
  }
}

/** citty prints "<parent name> <name>"; give it the whole path so usage reads `spl config add-rule`. */
const usageParent = (path: string): AnyCommand | undefined =>
  path.includes(" ") ? { meta: { name: path.slice(0, path.lastIndexOf(" ")) } } : undefined;

export async function runCli(root: AnyCommand, argv: string[]): Promise<void> {
  let cmd = root;
  let rest = argv;
  let path = "spl";
  try {
    // Walk down the sub-command tree.
    for (;;) {
      const args = ((await resolve(cmd.args)) ?? {}) as ArgsDef;
      const subs = await resolve(cmd.subCommands);
      if (!subs || !Object.keys(subs).length) break;
      const first = positionals(rest, flagTable(args))[0];
      const wantsHelp = rest.includes("--help") || rest.includes("-h");
      if (!first) {
        if (cmd.run && !wantsHelp) break;
        await showUsage(cmd, usageParent(path));
        process.exit(wantsHelp ? 0 : 2);
      }
      const sub = await findSub(cmd, first.value);
      if (!sub) {
        if (cmd.run) break;
        throw new UsageError(`unknown command '${first.value}' for '${path}'`, suggestion(first.value, Object.keys(subs), path));
      }
      cmd = sub;
      path = `${path} ${first.value}`;
      rest = [...rest.slice(0, first.index), ...rest.slice(first.index + 1)];
    }
    if (rest.includes("--help") || rest.includes("-h")) {
      await showUsage(cmd, usageParent(path));
      return;
    }
    checkLeafArgs(rest, ((await resolve(cmd.args)) ?? {}) as ArgsDef, path);
    // The walk above chose this command; citty must not look for sub-commands again (a verb with
    // both, like `task fan-out <alias>` and `task fan-out cancel`, would take the alias for one).
    await runCommand({ ...cmd, subCommands: undefined }, { rawArgs: rest });
  } catch (err) {
    process.exitCode = reportError(err, path);
  }
}

export function reportError(err: unknown, path = "spl"): number {
  // Under systemd (a daemon that refuses to start), the line is an error to `journalctl -p err`.
  const at = errorPrefix();
  if (err instanceof UserError) {
    process.stderr.write(`${at}error: ${err.oneLine}\n`);
    return err.exitCode;
  }
  const e = err as Error;
  if (e?.name === "CLIError") {
    const msg = e.message.replace(/\u001b\[[0-9;]*m/g, "");
    process.stderr.write(`${at}error: ${msg.charAt(0).toLowerCase()}${msg.slice(1)} — see '${path} --help'\n`);
    return 2;
  }
  process.stderr.write(`${at}error: ${e?.message ?? String(err)}\n`);
  if ((process.env.SPL_LOG ?? "").match(/debug|trace/i) && e?.stack) process.stderr.write(`${e.stack}\n`);
  return 1;
}

// CLI side of engine config: check a rule exactly as the daemon's fold will (same code, so a rule
// the CLI accepts is one the daemon keeps), and write it as a LEARN on th_engine_config through
// the daemon so it applies on the next request. The add-* verbs come from the rule-kind table.
import { defineCommand } from "citty";
import { call, DaemonError, resolveTarget, urlArg } from "../client";
import { loadConfig } from "../config";
import { UsageError } from "../errors";
import { homePaths } from "../paths";
import { ENGINE_CONFIG_THREAD } from "../records/reserved-threads";
import { configBodyProblem } from "../engine/config-validate";
import { RULE_KINDS, type RuleKind, type RuleTopic } from "../engine/rule-kinds";
import { out } from "./output";

export function operatorActor(): string {
  return loadConfig(homePaths().config).identity.actor;
}

export function parsePriority(value: string | undefined, fallback = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new UsageError(`--priority must be an integer, got '${value}'`, "e.g. --priority 100");
  return n;
}

export function requireFlag(value: string | undefined, flag: string, example: string): string {
  if (value === undefined || value.trim() === "") throw new UsageError(`${flag} is required`, `e.g. ${flag} ${example}`);
  return value;
}

/** Checks the candidate as the daemon's fold will; a refusal becomes a one-line error with the column. */
export function validateRule(topic: RuleTopic, body: Record<string, unknown>): void {
  const problem = configBodyProblem({ topic, ...body });
  if (problem) {
    throw new UsageError(`${topic} "${body.name ?? body.id ?? ""}" not written: ${problem.error}`, `check it with: spl expr check '<expr>' --context ${RULE_KINDS[topic].context}`);
  }
}

/** Posts one config LEARN as the operator's actor; answers the stored record. */
export async function writeConfig(body: Record<string, unknown>, url?: string, clock?: number): Promise<any> {
  const record: Record<string, unknown> = { thread: ENGINE_CONFIG_THREAD, actor: operatorActor(), act: "LEARN", body };
  if (clock !== undefined) record.clock = clock;
  return call("POST", "/v1/records", record, resolveTarget(url));
}

/** Adds the way out to a 403 on a config verb. */
export function lockoutHint(err: unknown): never {
  if (err instanceof DaemonError && err.code === "PERMISSION_DENIED") {
    throw err.withFix("if the rules lock you out: spl serve --stop; spl config permissions-unlock; spl serve --daemon");
  }
  throw err;
}

type Flags = Record<string, string | undefined>;

const stringArg = (description: string, valueHint?: string) => ({ type: "string" as const, description, ...(valueHint ? { valueHint } : {}) });

function ruleName(kind: RuleKind, args: Flags): string {
  const alias = kind.nameAlias ? args[kind.nameAlias] : undefined;
  if (alias !== undefined && args.name !== undefined && alias !== args.name) throw new UsageError(`--${kind.nameAlias} and --name differ`, "give one of them");
  return requireFlag(args.name ?? alias, "--name", kind.example.name);
}

function ruleExpression(kind: RuleKind, args: Flags): string {
  const sugar = kind.sugar;
  if (!sugar) return requireFlag(args.expression, "--expression", kind.example.expression);
  const sugarFlags = Object.keys(sugar.flags);
  const given = Object.fromEntries(sugarFlags.filter((f) => args[f] !== undefined).map((f) => [f, args[f]!]));
  const list = sugarFlags.map((f) => `--${f}`);
  if (args.expression !== undefined) {
    if (Object.keys(given).length) throw new UsageError(`--expression cannot be combined with ${list.join("/")}`, "use one form");
    return args.expression;
  }
  if (!Object.keys(given).length) throw new UsageError(`give --expression, or ${list.join(" and/or ")}`, `e.g. ${sugar.example}`);
  return sugar.compile(given);
}

/** `spl config <verb>` for one rule kind: flags from its fields, checked like the fold, then written. */
export function addRuleCommand(topic: RuleTopic) {
  const kind = RULE_KINDS[topic];
  const args = {
    name: stringArg("Rule name (the latest LEARN per name wins)"),
    expression: stringArg("CEL expression (must type-check to bool)", "cel"),
    priority: stringArg("Higher is evaluated first (default 0)", "int"),
    ...Object.fromEntries(kind.fields.map((f) => [f.name, stringArg(f.description, f.oneOf?.join("|"))])),
    ...Object.fromEntries(Object.entries(kind.sugar?.flags ?? {}).map(([flag, description]) => [flag, stringArg(description)])),
    ...(kind.nameAlias ? { [kind.nameAlias]: stringArg("Same as --name") } : {}),
    ...urlArg,
  };
  return defineCommand({
    meta: { name: kind.verb, description: kind.description },
    args,
    async run({ args }) {
      const flags = args as Flags;
      const name = ruleName(kind, flags);
      const fields: Record<string, string> = {};
      for (const f of kind.fields) fields[f.name] = f.required ? requireFlag(flags[f.name], `--${f.name}`, f.example ?? "...") : (flags[f.name] ?? "");
      const expression = ruleExpression(kind, flags);
      const priority = parsePriority(flags.priority);
      const body = { name, ...fields, priority, expression };
      validateRule(topic, body);
      const rec = await writeConfig({ topic, ...body }, flags.url).catch(lockoutHint);
      out(`added ${topic} "${name}" (${kind.effect(body)}, priority ${priority}) — record ${rec.id}`);
    },
  });
}

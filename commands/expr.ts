// spl expr check|eval '<cel>' --context X: compile locally (no daemon), or evaluate against live state.
import { defineCommand } from "citty";
import { call, resolveTarget, urlArg } from "../lib/client";
import { CEL_CONTEXTS } from "../lib/engine/vocabulary";
import { out, outputArgs, printJson, wantsJson } from "../lib/cli/output";
import { UsageError, UserError } from "../lib/errors";

const CONTEXTS: readonly string[] = CEL_CONTEXTS;

function contextOf(value: string | undefined): string {
  if (value === undefined) throw new UsageError("--context is required", `one of ${CONTEXTS.join(", ")}`);
  if (!CONTEXTS.includes(value)) throw new UsageError(`unknown --context '${value}'`, `use one of ${CONTEXTS.join(", ")}`);
  return value;
}

function jsonFlag(value: string | undefined, flag: string): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new UsageError(`${flag} is not valid JSON: ${(err as Error).message}`, `e.g. ${flag} '{"act":"DO","body":{}}'`);
  }
}

const check = defineCommand({
  meta: { name: "check", description: "Type-check an expression in a rule context (it must be bool)" },
  args: {
    expression: { type: "positional", required: true, description: "CEL expression" },
    context: { type: "string", description: `One of ${CONTEXTS.join(", ")}` },
    ...outputArgs,
  },
  async run({ args }) {
    const json = wantsJson(args);
    const context = contextOf(args.context);
    const { checkExpression } = await import("../lib/engine/cel");
    const r = checkExpression(context as any, args.expression);
    if (json) printJson({ context, expression: args.expression, ...r });
    if (!r.ok) {
      if (json) process.exitCode = 1;
      else throw new UserError(`invalid ${context} expression: ${r.error}`, "fix it and check again");
      return;
    }
    if (!json) out(`ok: valid bool expression in context ${context}`);
  },
});

const evalCmd = defineCommand({
  meta: { name: "eval", description: "Evaluate an expression against the daemon's live state" },
  args: {
    expression: { type: "positional", required: true, description: "CEL expression" },
    context: { type: "string", description: `One of ${CONTEXTS.join(", ")}` },
    record: { type: "string", description: "JSON record bound as `record`", valueHint: "json" },
    resource: { type: "string", description: "Route class bound as `resource` (permission context)" },
    ...urlArg,
    ...outputArgs,
  },
  async run({ args }) {
    const json = wantsJson(args);
    const context = contextOf(args.context);
    const body: Record<string, unknown> = { expression: args.expression, context };
    const record = jsonFlag(args.record, "--record");
    if (record !== undefined) body.record = record;
    if (args.resource !== undefined) body.resource = args.resource;
    const r = await call("POST", "/v1/engine/expr/eval", body, resolveTarget(args.url));
    if (json) return printJson(r);
    out(typeof r.value === "string" ? JSON.stringify(r.value) : JSON.stringify(r.value));
  },
});

export default defineCommand({
  meta: { name: "expr", description: "Check and evaluate CEL rule expressions" },
  subCommands: { check, eval: evalCmd },
});

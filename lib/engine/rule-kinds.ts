// The kinds of engine rule, in one table: the config topic, the CEL context its expression is
// checked and run in, the `spl config` verb that writes it and the fields (= flags) beyond
// name / expression / priority. The config fold validates with it, list-rules shows its effect,
// the CLI builds its add-* verbs and `spl expr --context` from it. A new kind is one more entry.
import type { CelContextName } from "./vocabulary";

export interface RuleField {
  /** Body field, and the CLI flag of the same name. */
  name: string;
  description: string;
  /** The allowed values; absent for free text. */
  oneOf?: readonly string[];
  /** Required fields must be present and non-empty; optional ones default to "". */
  required: boolean;
  /** What a missing or empty required free-text value is called out as. */
  missing?: string;
  /** For the CLI's "is required — e.g. ..." hint. */
  example?: string;
}

export interface RuleKind {
  /** Short name in summaries (`spl config show`). */
  label: string;
  context: CelContextName;
  verb: string;
  description: string;
  /** Hints for the CLI when --name / --expression are missing. */
  example: { name: string; expression: string };
  fields: readonly RuleField[];
  /** What the rule does, for list-rules' EFFECT column. */
  effect(rule: Record<string, unknown>): string;
  /** Another body field / flag accepted for the name (fold rules are written with --id). */
  nameAlias?: string;
  /** Flags that compile to an expression when --expression is not given (routing's --domain/--act). */
  sugar?: {
    flags: Record<string, string>;
    compile(values: Record<string, string>): string;
    example: string;
  };
}

const action = (values: readonly string[]): RuleField => ({
  name: "action",
  description: values.join(" or "),
  oneOf: values,
  required: true,
  example: values[values.length - 1],
});

const KINDS = {
  permission_rule: {
    label: "permission",
    context: "permission",
    verb: "add-permission-rule",
    description: "Add or replace a permission rule (allow|deny)",
    example: { name: "admin-self", expression: `'current_actor() == "did:sync:user:you"'` },
    fields: [{ ...action(["allow", "deny"]), example: "allow" }],
    effect: (r) => String(r.action),
  },
  routing_rule: {
    label: "routing",
    context: "routing",
    verb: "add-rule",
    description: "Add or replace a routing rule (--expression, or --domain/--act)",
    example: { name: "code-to-claude", expression: `'record.act == "INTEND"'` },
    fields: [
      { name: "target", description: "Actor DID to dispatch matching records to", required: true, missing: "target must be a non-empty string (an actor DID)", example: "did:sync:agent:claude" },
    ],
    effect: (r) => `-> ${r.target}`,
    sugar: {
      flags: { domain: "Match record.body.domain (instead of --expression)", act: "Match record.act (instead of --expression)" },
      // Every criterion given must match; one left out matches anything.
      compile(v) {
        const parts: string[] = [];
        if (v.act !== undefined) parts.push(`record.act == ${JSON.stringify(v.act)}`);
        if (v.domain !== undefined) parts.push(`has(record.body.domain) && record.body.domain == ${JSON.stringify(v.domain)}`);
        return parts.join(" && ");
      },
      example: "--domain code --act INTEND",
    },
  },
  fold_rule: {
    label: "fold",
    context: "fold_rule",
    verb: "add-fold-rule",
    description: "Add or replace a fold rule (forces a task status when it matches)",
    example: { name: "default", expression: "'true'" },
    fields: [{ name: "status", description: "Status the rule yields", required: true, missing: "status must be a non-empty string", example: "active" }],
    effect: (r) => `status=${r.status}`,
    nameAlias: "id",
  },
  health_check: {
    label: "health",
    context: "health_check",
    verb: "add-health",
    description: "Add or replace a health check (an invariant: true = healthy)",
    example: { name: "store-not-empty", expression: "'system.records_total > 0'" },
    fields: [
      { name: "severity", description: "warn or critical", oneOf: ["warn", "critical"], required: true, example: "critical" },
      { name: "description", description: "What the check guards", required: false },
    ],
    effect: (r) => (r.description ? `${r.severity}: ${r.description}` : String(r.severity)),
  },
  aitl_rule: {
    label: "aitl",
    context: "aitl",
    verb: "add-aitl-rule",
    description: "Add or replace an AITL decision rule (auto_apply|present)",
    example: { name: "confident", expression: "'proposal_confidence > 0.9'" },
    fields: [action(["auto_apply", "present"])],
    effect: (r) => String(r.action),
  },
} satisfies Record<string, RuleKind>;

export type RuleTopic = keyof typeof KINDS;
export const RULE_KINDS: Readonly<Record<RuleTopic, RuleKind>> = KINDS;
export const RULE_TOPICS = Object.keys(KINDS) as RuleTopic[];

export function isRuleTopic(value: unknown): value is RuleTopic {
  return typeof value === "string" && Object.hasOwn(KINDS, value);
}

/** The kind's own fields of `body`, validated; or why the fold refuses it. */
export function parseRuleFields(kind: RuleKind, body: Record<string, unknown>): { ok: true; value: Record<string, string> } | { ok: false; error: string } {
  const value: Record<string, string> = {};
  for (const f of kind.fields) {
    const v = body[f.name];
    if (f.oneOf) {
      if (typeof v !== "string" || !f.oneOf.includes(v)) return { ok: false, error: `${f.name} must be ${f.oneOf.join(" or ")}, got ${JSON.stringify(v)}` };
    } else if (f.required) {
      if (typeof v !== "string" || v === "") return { ok: false, error: f.missing ?? `${f.name} must be a non-empty string` };
    } else if (v !== undefined && typeof v !== "string") {
      return { ok: false, error: `${f.name} must be a string` };
    }
    value[f.name] = (v as string | undefined) ?? "";
  }
  return { ok: true, value };
}

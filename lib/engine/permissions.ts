// CEL permission decisions: descending priority, first match decides, no match denies.
// An evaluation error never opens a door: an allow rule that errors does not match,
// a deny rule that errors matches.

import type { Envelope } from "../records/types";
import { bindContextDefaults, evaluateBool, toCelVars, type CelScope, type CelVars } from "./cel";
import { compareRules, ENGINE_CONFIG_THREAD, type PermissionRule } from "./config-fold";

/** Every HTTP route declares one of these beside its definition (lib/daemon/route.ts). */
export const ROUTE_CLASSES = ["record_write", "record_read", "thread_read", "config_read", "config_write", "status_read", "fleet_read", "admin"] as const;
export type RouteClass = (typeof ROUTE_CLASSES)[number];

/**
 * What the operator must keep once enforcement is on: the disable path (read the thread state,
 * write the LEARN, list rules) plus what the runbook verifies with (`spl status`, `spl trust`).
 */
export const PREFLIGHT_RESOURCES: readonly RouteClass[] = ["record_write", "thread_read", "config_read", "status_read"];

export interface PermissionRequest {
  actor: string;
  /** A route class (or any resource string a rule may test, e.g. "tool:<name>"). */
  resource: string;
  /** The record being written; GETs get a synthetic record (see syntheticRecord). */
  record?: Partial<Envelope> & { id?: string };
  /** The `system` map, when the caller has it. */
  system?: Record<string, unknown>;
}

export interface Decision {
  allowed: boolean;
  /** The resource decided on (a route class), so a client can name what to allow. */
  resource: string;
  /** The rule that decided and its priority; absent when nothing matched. */
  rule?: string;
  priority?: number;
  reason: string;
}

/** A permission rule the engine proposes as a fix; the CLI renders it as `spl config add-permission-rule`. */
export interface RuleDraft {
  name: string;
  action: "allow";
  priority: number;
  expression: string;
}

export interface Preflight {
  ok: boolean;
  missing: RouteClass[];
  /** An allow rule covering the missing resources; null when ok. */
  fixRule: RuleDraft | null;
}

/** The stand-in `record` for requests that carry none, so rules can read `record.*` safely. */
export function syntheticRecord(actor: string, thread = ""): Partial<Envelope> & { id: string } {
  return { id: "", act: "GET", actor, thread, body: {}, clock: 0, data_type: "VOID", parents: [], judged_by: null };
}

function isSorted(rules: readonly PermissionRule[]): boolean {
  for (let i = 1; i < rules.length; i++) if (compareRules(rules[i - 1]!, rules[i]!) > 0) return false;
  return true;
}

/** Evaluates one rule's expression; throws on evaluation errors (decide() turns them into fail-closed). */
export type RuleEvaluator = (rule: PermissionRule, vars: CelVars, scope: CelScope) => boolean;

const evaluateRule: RuleEvaluator = (rule, vars, scope) => evaluateBool("permission", rule.expression, vars, scope);

/**
 * Decides one request. `scope.actor` is replaced by `req.actor` for current_actor().
 * `evaluate` lets a hot path supply precompiled rules; the semantics stay here.
 */
export function decide(rules: readonly PermissionRule[], req: PermissionRequest, scope: CelScope, evaluate: RuleEvaluator = evaluateRule): Decision {
  const ordered = isSorted(rules) ? rules : [...rules].sort(compareRules);
  const vars: CelVars = bindContextDefaults(
    "permission",
    toCelVars({
      record: req.record ?? syntheticRecord(req.actor),
      resource: req.resource,
      ...(req.system ? { system: req.system } : {}),
    }),
  );
  const callerScope: CelScope = scope.actor === req.actor ? scope : { ...scope, actor: req.actor };

  for (const rule of ordered) {
    let matched: boolean;
    let failure = "";
    try {
      matched = evaluate(rule, vars, callerScope);
    } catch (err) {
      matched = rule.action === "deny"; // fail closed
      failure = ` (evaluation error: ${(err as Error).message})`;
    }
    if (!matched) continue;
    const allowed = rule.action === "allow";
    return {
      allowed,
      resource: req.resource,
      rule: rule.name,
      priority: rule.priority,
      reason: `${allowed ? "allowed" : "denied"} by ${rule.action} rule "${rule.name}" (priority ${rule.priority})${failure}`,
    };
  }
  return { allowed: false, resource: req.resource, reason: `no permission rule allows ${req.actor} ${req.resource} (fail-closed)` };
}

/**
 * Would `actor` still be able to verify the daemon and switch enforcement off once it is on?
 * Evaluates every PREFLIGHT_RESOURCES class (record_write with the disabling LEARN).
 */
export function preflight(rules: readonly PermissionRule[], actor: string, scope: CelScope): Preflight {
  const missing = PREFLIGHT_RESOURCES.filter((resource) => !decide(rules, preflightRequest(actor, resource), scope).allowed);
  if (missing.length === 0) return { ok: true, missing, fixRule: null };
  return { ok: false, missing: [...missing], fixRule: fixRule(rules, actor) };
}

function preflightRequest(actor: string, resource: RouteClass): PermissionRequest {
  if (resource === "record_write") {
    const record: Partial<Envelope> = {
      act: "LEARN",
      actor,
      thread: ENGINE_CONFIG_THREAD,
      body: { topic: "permissions_enabled", enabled: false },
      clock: 0,
      data_type: "SCALAR",
      parents: [],
      judged_by: null,
    };
    return { actor, resource, record };
  }
  return { actor, resource, record: syntheticRecord(actor, resource === "thread_read" ? ENGINE_CONFIG_THREAD : "") };
}

/**
 * An allow rule for every PREFLIGHT_RESOURCES class, placed above every existing rule
 * (so no deny rule can shadow it) under a name no existing rule uses.
 */
export function fixRule(rules: readonly PermissionRule[], actor: string): RuleDraft {
  const top = rules.reduce((max, r) => Math.max(max, r.priority), 0);
  const names = new Set(rules.map((r) => r.name));
  let name = "admin-self";
  for (let i = 2; names.has(name); i++) name = `admin-self-${i}`;
  const resources = PREFLIGHT_RESOURCES.map((r) => `resource == "${r}"`).join(" || ");
  return { name, action: "allow", priority: Math.max(10000, top + 1), expression: `current_actor() == ${celString(actor)} && (${resources})` };
}

/** The rule that lets `actor` do `resource`, ranked above the rule that refused it (if one did). */
export function allowRule(actor: string, resource: string, deniedAtPriority: number | null): RuleDraft {
  return {
    name: `allow-${resource}-${actor.split(":").pop()!.replace(/[^A-Za-z0-9_-]/g, "_")}`,
    action: "allow",
    priority: deniedAtPriority === null ? 100 : deniedAtPriority + 1,
    expression: `current_actor() == ${celString(actor)} && resource == ${celString(resource)}`,
  };
}

/** A CEL double-quoted string literal (JSON escaping is valid CEL escaping). */
function celString(s: string): string {
  return JSON.stringify(s);
}

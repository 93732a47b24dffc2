// The routing cascade for one INTEND, cheapest first, the first hit ends it:
//   explicit body.to → routing rules (descending priority) → trust fallback → default (log only).
// Pure: the caller supplies rule evaluation and the trust lookup, so the reconciler decides the
// same way in a test as in the daemon.
import type { StoredRecord } from "../records/types";

export interface RouteDecision {
  /** The rule that decided: a routing rule's name, or explicit | trust_fallback | default. */
  rule: string;
  /** The actor to dispatch to; null for the default handler (logged, not dispatched). */
  target: string | null;
}

export interface RoutingRuleLike {
  name: string;
  target: string;
}

export interface RouteInputs<R extends RoutingRuleLike> {
  /** Active routing rules in evaluation order. */
  rules: readonly R[];
  /** Whether a rule matches the record; a rule that errors does not match. */
  matches(rule: R, record: StoredRecord): boolean;
  /**
   * The highest-trust actor with evidence in a domain that can take work (it has a dispatch
   * target) and is not `requester`: nobody is handed their own INTEND back.
   */
  trusted(domain: string, requester: string): string | undefined;
}

/** Why the reconciler leaves a record alone, or null when it routes it. */
export function skipReason(rec: StoredRecord, isSystemActor: (did: string) => boolean): string | null {
  if (rec.act !== "INTEND") return "not an INTEND";
  if (isSystemActor(rec.actor)) return "system record";
  const b = rec.body;
  if (b.dispatch_handled === true) return "already handled";
  if (b.fulfills != null || b.cancels != null) return "fulfils or cancels another record";
  if (Array.isArray(b.subtasks)) return "a fan-out parent (its join fulfils it)";
  return null;
}

export function decideRoute<R extends RoutingRuleLike>(rec: StoredRecord, inputs: RouteInputs<R>): RouteDecision {
  const to = rec.body.to;
  if (typeof to === "string" && to !== "") return { rule: "explicit", target: to };
  for (const rule of inputs.rules) if (inputs.matches(rule, rec)) return { rule: rule.name, target: rule.target };
  const domain = typeof rec.body.domain === "string" && rec.body.domain !== "" ? rec.body.domain : "general";
  const trusted = inputs.trusted(domain, rec.actor);
  if (trusted) return { rule: "trust_fallback", target: trusted };
  return { rule: "default", target: null };
}

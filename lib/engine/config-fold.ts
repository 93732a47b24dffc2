// Engine config = fold of LEARN records on th_engine_config, dispatched on body.topic.
//
// Latest record per (topic, name) in store order wins; `enabled:false` removes a rule.
// A malformed rule, or one whose expression does not type-check to bool, is REFUSED:
// it stays visible with its error while the previous good version stays in force.

import type { JsonObject, StoredRecord } from "../records/types";
import { checkExpression, type CelContextName } from "./cel";
import { isRuleTopic, parseRuleFields, RULE_KINDS, RULE_TOPICS, type RuleTopic } from "./rule-kinds";
import { DEFAULT_TRUST_PARAMS, validateTrustParams, type TrustParams } from "./trust";
import { ENGINE_CONFIG_THREAD } from "../records/reserved-threads";

export { ENGINE_CONFIG_THREAD, isRuleTopic, RULE_TOPICS, type RuleTopic };

export const SWITCH_TOPICS = ["permissions_enabled", "auth_required", "trust_params"] as const;
export type SwitchTopic = (typeof SWITCH_TOPICS)[number];
export type ConfigTopic = RuleTopic | SwitchTopic;
export const CONFIG_TOPICS: readonly ConfigTopic[] = [...RULE_TOPICS, ...SWITCH_TOPICS];

/** The CEL context each rule topic's expression is checked and evaluated in. */
export const TOPIC_CONTEXT = Object.fromEntries(RULE_TOPICS.map((t) => [t, RULE_KINDS[t].context])) as Record<RuleTopic, CelContextName>;

interface RuleBase {
  name: string;
  expression: string;
  priority: number;
  /** The LEARN that set this version, and its store sequence. */
  record_id: string;
  sequence: number;
}
export interface PermissionRule extends RuleBase { action: "allow" | "deny" }
export interface RoutingRule extends RuleBase { target: string }
export interface FoldRule extends RuleBase { status: string }
export interface HealthCheck extends RuleBase { severity: "warn" | "critical"; description: string }
export interface AitlRule extends RuleBase { action: "auto_apply" | "present" }

interface RuleByTopic {
  permission_rule: PermissionRule;
  routing_rule: RoutingRule;
  fold_rule: FoldRule;
  health_check: HealthCheck;
  aitl_rule: AitlRule;
}
type AnyRule = RuleByTopic[RuleTopic];

export interface RefusedConfig {
  topic: ConfigTopic;
  /** Rule name; the topic for singletons; "" when the body had no usable name. */
  name: string;
  error: string;
  column?: number;
  record_id: string;
  sequence: number;
}

export interface SkippedLearns {
  count: number;
  /** The most recent skipped LEARNs (newest last). */
  recent: Array<{ id: string; topic: string | null }>;
}

/** One line of `spl config list-rules`. */
export interface RuleRow {
  topic: RuleTopic;
  name: string;
  status: "active" | "REFUSED";
  priority: number | null;
  expression: string | null;
  /** What the rule does: allow/deny, -> target, status=..., severity: description, auto_apply/present. */
  effect: string;
  record_id: string;
  error?: string;
  column?: number;
}

export interface ApplyResult {
  changed: boolean;
  /** Set when the record was skipped or refused; the caller logs it at WARN. */
  warning?: string;
}

const RECENT_SKIPPED = 10;

type Parsed<T> = { ok: true; value: T } | { ok: false; error: string; column?: number };
type RuleFields<T extends RuleTopic> = Omit<RuleByTopic[T], "record_id" | "sequence">;

export class EngineConfig {
  private readonly rules: { [T in RuleTopic]: Map<string, RuleByTopic[T]> } = {
    permission_rule: new Map(),
    routing_rule: new Map(),
    fold_rule: new Map(),
    health_check: new Map(),
    aitl_rule: new Map(),
  };
  private readonly sortedCache = new Map<RuleTopic, readonly AnyRule[]>();
  private readonly refusedByKey = new Map<string, RefusedConfig>();
  private readonly lastSequence = new Map<string, number>();
  private skippedCount = 0;
  private readonly skippedRecent: Array<{ id: string; topic: string | null }> = [];
  private permissionsOn = false;
  private authSetting: boolean | null = null;
  private trust: TrustParams = { ...DEFAULT_TRUST_PARAMS };
  /** Bumped on every change, so callers can cache derived views. */
  generation = 0;

  /** Folds one record; records that are not LEARNs on th_engine_config are ignored. */
  apply(rec: StoredRecord): ApplyResult {
    if (rec.act !== "LEARN" || rec.thread !== ENGINE_CONFIG_THREAD) return { changed: false };
    const body: JsonObject = rec.body && typeof rec.body === "object" ? rec.body : {};
    const topic = body.topic;
    if (typeof topic !== "string" || !(CONFIG_TOPICS as readonly string[]).includes(topic)) {
      return this.skip(rec.id, typeof topic === "string" ? topic : null);
    }
    if (isRuleTopic(topic)) return this.applyRule(topic, rec, body);
    return this.applySwitch(topic as SwitchTopic, rec, body);
  }

  get permissionRules(): readonly PermissionRule[] {
    return this.sorted("permission_rule");
  }
  get routingRules(): readonly RoutingRule[] {
    return this.sorted("routing_rule");
  }
  get foldRules(): readonly FoldRule[] {
    return this.sorted("fold_rule");
  }
  get healthChecks(): readonly HealthCheck[] {
    return this.sorted("health_check");
  }
  get aitlRules(): readonly AitlRule[] {
    return this.sorted("aitl_rule");
  }
  /** Permission enforcement switch; off unless a LEARN turned it on. */
  get permissionsEnabled(): boolean {
    return this.permissionsOn;
  }
  /** The auth_required switch, or null when no LEARN set it (the daemon applies its default). */
  get authRequired(): boolean | null {
    return this.authSetting;
  }
  get trustParams(): Readonly<TrustParams> {
    return this.trust;
  }

  getRule<T extends RuleTopic>(topic: T, name: string): RuleByTopic[T] | undefined {
    return this.rules[topic].get(name) as RuleByTopic[T] | undefined;
  }

  refused(): RefusedConfig[] {
    return [...this.refusedByKey.values()].sort((a, b) => a.sequence - b.sequence);
  }

  skipped(): SkippedLearns {
    return { count: this.skippedCount, recent: [...this.skippedRecent] };
  }

  /** Active and REFUSED rules, by topic, then descending priority, then name. */
  listRules(topic?: RuleTopic): RuleRow[] {
    const rows: RuleRow[] = [];
    for (const t of RULE_TOPICS) {
      if (topic && t !== topic) continue;
      const topicRows: RuleRow[] = this.sorted(t).map((rule) => ({
        topic: t,
        name: rule.name,
        status: "active" as const,
        priority: rule.priority,
        expression: rule.expression,
        effect: effectOf(t, rule),
        record_id: rule.record_id,
      }));
      for (const r of this.refusedByKey.values()) {
        if (r.topic !== t) continue;
        const row: RuleRow = { topic: t, name: r.name, status: "REFUSED", priority: null, expression: null, effect: "", record_id: r.record_id, error: r.error };
        if (r.column !== undefined) row.column = r.column;
        topicRows.push(row);
      }
      rows.push(...topicRows.sort(compareRows));
    }
    return rows;
  }

  /** Summary for `spl config show`. */
  show(): {
    permissions_enabled: boolean;
    auth_required: boolean | null;
    trust_params: TrustParams;
    rules: Record<RuleTopic, number>;
    refused: number;
    skipped: number;
  } {
    const rules = Object.fromEntries(RULE_TOPICS.map((t) => [t, this.rules[t].size])) as Record<RuleTopic, number>;
    return {
      permissions_enabled: this.permissionsOn,
      auth_required: this.authSetting,
      trust_params: { ...this.trust },
      rules,
      refused: this.refusedByKey.size,
      skipped: this.skippedCount,
    };
  }

  // -------------------------------------------------------------------------

  private skip(id: string, topic: string | null): ApplyResult {
    this.skippedCount++;
    this.skippedRecent.push({ id, topic });
    if (this.skippedRecent.length > RECENT_SKIPPED) this.skippedRecent.shift();
    const why = topic === null ? "no body.topic" : `unknown topic ${JSON.stringify(topic)}`;
    return { changed: false, warning: `skipped LEARN ${id} on ${ENGINE_CONFIG_THREAD}: ${why}` };
  }

  /** Store order decides "latest"; an older or repeated record for the same key is a no-op. */
  private isStale(key: string, rec: StoredRecord): boolean {
    const last = this.lastSequence.get(key);
    if (last !== undefined && rec.sequence <= last) return true;
    this.lastSequence.set(key, rec.sequence);
    return false;
  }

  private applyRule<T extends RuleTopic>(topic: T, rec: StoredRecord, body: JsonObject): ApplyResult {
    const rawName = typeof body.name === "string" ? body.name : body.id; // fold rules are also written with --id
    const name = typeof rawName === "string" ? rawName.trim() : "";
    if (name === "") return this.refuse(topic, "", `record:${rec.id}`, rec, { error: "rule has no name (body.name must be a non-empty string)" });
    const key = `${topic}\u0000${name}`;
    if (this.isStale(key, rec)) return { changed: false };

    if (body.enabled === false) {
      this.refusedByKey.delete(key);
      this.rules[topic].delete(name);
      return this.changed(topic);
    }
    const parsed = body.enabled !== undefined && typeof body.enabled !== "boolean"
      ? { ok: false as const, error: `enabled must be true or false, got ${JSON.stringify(body.enabled)}` }
      : parseRule(topic, name, body);
    if (!parsed.ok) return this.refuse(topic, name, key, rec, parsed);

    this.refusedByKey.delete(key);
    const rule = { ...parsed.value, record_id: rec.id, sequence: rec.sequence } as RuleByTopic[T];
    (this.rules[topic] as Map<string, RuleByTopic[T]>).set(name, rule);
    return this.changed(topic);
  }

  private applySwitch(topic: SwitchTopic, rec: StoredRecord, body: JsonObject): ApplyResult {
    if (this.isStale(topic, rec)) return { changed: false };
    if (topic === "trust_params") {
      // The newest record replaces the whole value; `enabled:false` restores the defaults.
      const next: TrustParams = { ...DEFAULT_TRUST_PARAMS };
      if (body.enabled !== false) {
        for (const field of Object.keys(DEFAULT_TRUST_PARAMS) as Array<keyof TrustParams>) {
          if (body[field] !== undefined) next[field] = body[field] as number;
        }
      }
      const error = validateTrustParams(next);
      if (error) return this.refuse(topic, topic, topic, rec, { error });
      this.trust = next;
    } else {
      if (typeof body.enabled !== "boolean") {
        return this.refuse(topic, topic, topic, rec, { error: `enabled must be true or false, got ${JSON.stringify(body.enabled)}` });
      }
      if (topic === "permissions_enabled") this.permissionsOn = body.enabled;
      else this.authSetting = body.enabled;
    }
    this.refusedByKey.delete(topic);
    return this.changed();
  }

  private refuse(topic: ConfigTopic, name: string, key: string, rec: StoredRecord, why: { error: string; column?: number }): ApplyResult {
    const entry: RefusedConfig = { topic, name, error: why.error, record_id: rec.id, sequence: rec.sequence };
    if (why.column !== undefined) entry.column = why.column;
    this.refusedByKey.set(key, entry);
    this.generation++;
    const kept = isRuleTopic(topic) && this.rules[topic].has(name) ? "the previous version stays in force" : "nothing was applied";
    const label = name && name !== topic ? `${topic} ${JSON.stringify(name)}` : topic;
    return { changed: true, warning: `refused ${label} from record ${rec.id}: ${why.error}; ${kept}` };
  }

  private changed(topic?: RuleTopic): ApplyResult {
    if (topic) this.sortedCache.delete(topic);
    this.generation++;
    return { changed: true };
  }

  private sorted<T extends RuleTopic>(topic: T): readonly RuleByTopic[T][] {
    let list = this.sortedCache.get(topic);
    if (!list) {
      list = Object.freeze([...this.rules[topic].values()].sort(compareRules));
      this.sortedCache.set(topic, list);
    }
    return list as readonly RuleByTopic[T][];
  }
}

/** Descending priority, ties by name: the order rules are evaluated in. */
export function compareRules(a: { priority: number; name: string }, b: { priority: number; name: string }): number {
  if (a.priority !== b.priority) return b.priority - a.priority;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

function compareRows(a: RuleRow, b: RuleRow): number {
  if (a.status !== b.status) return a.status === "active" ? -1 : 1;
  return compareRules({ priority: a.priority ?? 0, name: a.name }, { priority: b.priority ?? 0, name: b.name });
}

function effectOf(topic: RuleTopic, rule: AnyRule): string {
  return RULE_KINDS[topic].effect(rule as unknown as Record<string, unknown>);
}

// ---------------------------------------------------------------------------
// Body validation

function parseRule<T extends RuleTopic>(topic: T, name: string, body: JsonObject): Parsed<RuleFields<T>> {
  const expression = body.expression;
  if (typeof expression !== "string" || expression.trim() === "") return fail("expression must be a non-empty string");
  const priority = body.priority ?? 0;
  if (typeof priority !== "number" || !Number.isSafeInteger(priority)) return fail(`priority must be an integer, got ${JSON.stringify(body.priority)}`);

  const extra = parseRuleFields(RULE_KINDS[topic], body);
  if (!extra.ok) return extra;

  const checked = checkExpression(TOPIC_CONTEXT[topic], expression);
  if (!checked.ok) {
    const error = `invalid ${TOPIC_CONTEXT[topic]} expression: ${checked.error}`;
    return checked.column === undefined ? { ok: false, error } : { ok: false, error, column: checked.column };
  }
  return { ok: true, value: { name, expression, priority, ...extra.value } as unknown as RuleFields<T> };
}

function fail(error: string): { ok: false; error: string } {
  return { ok: false, error };
}

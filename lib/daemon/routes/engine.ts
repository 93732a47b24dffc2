// Derived-state reads: trust, engine config and rules, the pre-flight for
// permissions-enable, health checks, the expression cache, and CEL evaluation against live state.
import { CelCostError, CelEvaluationError, contextVariables, evaluateBool, expressionCacheStats, CEL_CONTEXTS, toCelVars, type RawCelVars } from "../../engine/cel";
import { evaluateAdHoc } from "../../engine/expr-eval";
import { ENGINE_CONFIG_THREAD, RULE_TOPICS } from "../../engine/config-fold";
import { configBodyProblem } from "../../engine/config-validate";
import { prepareRecord } from "../../records/envelope";
import { toWire } from "../../records/wire";
import { PREFLIGHT_RESOURCES, preflight } from "../../engine/permissions";
import type { DaemonState } from "../state";
import { ApiError, json } from "../../api/http";
import { route } from "../../api/route";
import { AnyObject, NO_QUERY, RecordSchema, T, listOf, nullable, oneOf } from "../../api/schema";
import { TASK_FACTS } from "../../tasks/capability";

const round = (x: number, places: number) => Math.round(x * 10 ** places) / 10 ** places;
const nowSecs = () => Math.floor(Date.now() / 1000);

export function trustRows(state: DaemonState) {
  return state.engine.trust.rows(nowSecs()).map((r) => ({ ...r, trust: round(r.trust, 4) }));
}

export interface HealthResult {
  name: string;
  severity: "warn" | "critical";
  description: string;
  status: "pass" | "fail" | "error";
  detail: string;
}

/** Runs every health check; an expression that cannot be evaluated counts as failing. */
export function runHealthChecks(state: DaemonState): { status: "ok" | "warn" | "critical"; checks: HealthResult[] } {
  const now = Math.floor(Date.now() / 1000);
  const scope = state.engine.scope(state.config.identity.actor, now);
  const tasks = scope
    .facts(TASK_FACTS)
    .list()
    .map((t) => ({ ...t }));
  const vars = toCelVars({ system: state.engine.system(state.startedAt), tasks });
  const checks: HealthResult[] = [];
  let status: "ok" | "warn" | "critical" = "ok";
  for (const h of state.engine.config.healthChecks) {
    let result: HealthResult["status"];
    let detail: string;
    try {
      result = evaluateBool("health_check", h.expression, vars, scope) ? "pass" : "fail";
      detail = result === "pass" ? "holds" : `does not hold: ${h.expression}`;
    } catch (err) {
      result = "error";
      detail = (err as Error).message;
    }
    if (result !== "pass" && status !== "critical") status = h.severity;
    checks.push({ name: h.name, severity: h.severity, description: h.description, status: result, detail });
  }
  return { status, checks };
}

export function engineRoutes(state: DaemonState) {
  const { engine } = state;
  return [
    route(
      { method: "GET", path: "/v1/trust", cls: "status_read", summary: "Trust per actor and domain", query: NO_QUERY, answers: { 200: { description: "trust rows", schema: listOf(TrustRow) } } },
      () => json(200, { object: "list", data: trustRows(state) }),
    ),
    route(
      {
        method: "GET",
        path: "/v1/config",
        cls: "config_read",
        summary: "The folded engine config",
        query: NO_QUERY,
        answers: { 200: { description: "the engine config, the config.toml sections and the permission counters", schema: EngineConfig } },
      },
      () =>
        json(200, {
          object: "engine_config",
          ...engine.config.show(),
          refused_rules: engine.config.refused(),
          skipped_learns: engine.config.skipped(),
          identity_actor: state.config.identity.actor,
          tcp_auth_required: state.tcpAuthRequired(),
          insecure_localhost: state.auth.insecureLocalhost,
          tokens_active: engine.tokens.activeCount,
          rebuild: engine.lastRebuild,
          // config.toml as this daemon read it, table by table (`spl config show`).
          sections: state.sectionsShown(),
          permission_checks: {
            checks: engine.permissions.stats.checks,
            denied: engine.permissions.stats.denied,
            avg_micros: engine.permissions.stats.checks ? Math.round((engine.permissions.stats.micros / engine.permissions.stats.checks) * 10) / 10 : 0,
          },
        }),
    ),
    route(
      {
        method: "GET",
        path: "/v1/config/rules",
        cls: "config_read",
        summary: "Engine rules",
        query: T.Object({ topic: T.Optional(oneOf(RULE_TOPICS, { description: "only rules of this topic" })) }),
        answers: { 200: { description: "the rules", schema: listOf(AnyObject) } },
      },
      ({ query }) => json(200, { object: "list", data: engine.config.listRules(query.topic) }),
    ),
    route(
      {
        method: "GET",
        path: "/v1/config/permission-rules",
        cls: "config_read",
        summary: "Permission rules and whether enforcement is on",
        query: NO_QUERY,
        answers: { 200: { description: "the permission rules", schema: listOf(AnyObject, { permissions_enabled: T.Boolean() }) } },
      },
      () => json(200, { object: "list", permissions_enabled: engine.config.permissionsEnabled, data: engine.config.listRules("permission_rule") }),
    ),
    route(
      {
        method: "POST",
        path: "/v1/config/rules",
        cls: "config_write",
        maxBody: 256 * 1024,
        rulesPerRecord: true,
        summary: "Write an engine rule (a LEARN on th_engine_config), checked first",
        query: NO_QUERY,
        body: T.Object(
          { topic: T.String({ description: "permission_rule, routing_rule, fold_rule, health_check, aitl_rule" }), name: T.String({ minLength: 1 }) },
          { additionalProperties: true, description: "a rule: topic, name, and the topic's fields (expression, priority, action, target...)" },
        ),
        answers: { 201: { description: "the LEARN record written", schema: RecordSchema }, 200: { description: "the same rule was already written: that record", schema: RecordSchema } },
        errors: { 400: "INVALID_RULE: the rule does not parse (the message names the field or the column)" },
      },
      async ({ json: body, caller, as }) => {
        // Validate first (400 with the column), then write the LEARN as the caller.
        const problem = configBodyProblem(body);
        if (problem) throw new ApiError(400, "INVALID_RULE", problem.error);
        const [r] = await state.ingest.submit([prepareRecord({ thread: ENGINE_CONFIG_THREAD, actor: caller.actor, act: "LEARN", body })], as);
        if (r!.status === "error") throw new ApiError(r!.error.status, r!.error.code, r!.error.message);
        return json(r!.status === "created" ? 201 : 200, toWire(r!.record));
      },
    ),
    route(
      {
        method: "GET",
        path: "/v1/config/health-checks",
        cls: "config_read",
        summary: "Health check rules",
        query: NO_QUERY,
        answers: { 200: { description: "the health check rules", schema: listOf(AnyObject) } },
      },
      () => json(200, { object: "list", data: engine.config.listRules("health_check") }),
    ),
    route(
      {
        method: "GET",
        path: "/v1/config/permissions/preflight",
        cls: "config_read",
        summary: "Would this actor keep what it needs once enforcement is on?",
        query: T.Object({ actor: T.Optional(T.String({ description: "the actor to check (default [identity] actor)" })) }),
        answers: { 200: { description: "what the actor would keep", schema: Preflight } },
      },
      ({ query }) => {
        const actor = query.actor || state.config.identity.actor;
        const r = preflight(engine.config.permissionRules, actor, engine.scope(actor));
        return json(200, { object: "preflight", actor, ok: r.ok, required: PREFLIGHT_RESOURCES, missing: r.missing, fix_rule: r.fixRule });
      },
    ),
    route(
      {
        method: "GET",
        path: "/v1/engine/expression_cache/stats",
        cls: "status_read",
        summary: "CEL expression cache counters",
        query: NO_QUERY,
        answers: { 200: { description: "the counters", schema: CacheStats } },
      },
      () => json(200, expressionCacheStats()),
    ),
    route(
      {
        method: "GET",
        path: "/v1/engine/health",
        cls: "status_read",
        summary: "Run the health checks",
        query: NO_QUERY,
        answers: { 200: { description: "each check's result and the worst severity failing", schema: HealthChecks } },
      },
      () => json(200, { object: "health_checks", ...runHealthChecks(state) }),
    ),
    // Evaluating an expression against live state changes nothing: a read, like the engine GETs.
    route(
      {
        method: "POST",
        path: "/v1/engine/expr/eval",
        cls: "status_read",
        maxBody: 1024 * 1024,
        summary: "Evaluate a CEL expression against live state",
        query: NO_QUERY,
        body: T.Object(
          { expression: T.String({ minLength: 1, pattern: "\\S", "x-expected": "a non-empty string" }), context: oneOf(CEL_CONTEXTS) },
          { additionalProperties: true, description: "the expression, its context, and values for the variables of that context (record, system...)" },
        ),
        answers: {
          200: { description: "the value and its CEL type", schema: T.Object({ object: T.Literal("expr_result"), context: T.String(), actor: T.String(), type: T.String(), value: T.Unknown() }) },
        },
        errors: { 400: "EXPRESSION_ERROR (does not compile or evaluate), EXPRESSION_TOO_COSTLY (over the cost bound)" },
      },
      async ({ json: input, caller }) => {
        const { expression, context } = input;
        const declared = new Set(contextVariables(context).map((v) => v.name));
        const raw: RawCelVars = {};
        const given = input as RawCelVars & Record<string, unknown>;
        for (const name of declared) if (given[name] !== undefined) (raw as any)[name] = given[name];
        if (declared.has("system") && raw.system === undefined) raw.system = engine.system(state.startedAt);
        if (declared.has("record") && raw.record === undefined) raw.record = { act: "GET", actor: caller.actor, thread: "", body: {}, clock: 0, data_type: "VOID", parents: [] };
        try {
          const { type, value } = await evaluateAdHoc(context, expression, raw, engine.scopeSnapshot(caller.actor));
          return json(200, { object: "expr_result", context, actor: caller.actor, type, value });
        } catch (err) {
          if (err instanceof CelCostError) throw new ApiError(400, "EXPRESSION_TOO_COSTLY", err.message);
          if (err instanceof CelEvaluationError) throw new ApiError(400, "EXPRESSION_ERROR", err.message);
          throw err;
        }
      },
    ),
  ];
}

const TrustRow = T.Object({ actor: T.String(), domain: T.String(), success: T.Number(), total: T.Number(), trust: T.Number({ minimum: 0, maximum: 1 }) });

const EngineConfig = T.Object(
  {
    object: T.Literal("engine_config"),
    refused_rules: T.Array(AnyObject),
    skipped_learns: T.Object({ count: T.Integer(), recent: T.Array(AnyObject) }),
    identity_actor: T.String(),
    tcp_auth_required: T.Boolean(),
    insecure_localhost: T.Boolean(),
    tokens_active: T.Integer(),
    rebuild: T.Unknown(),
    sections: AnyObject,
    permission_checks: T.Object({ checks: T.Integer(), denied: T.Integer(), avg_micros: T.Number() }),
  },
  { additionalProperties: true },
);

const Preflight = T.Object({ object: T.Literal("preflight"), actor: T.String(), ok: T.Boolean(), required: T.Array(T.String()), missing: T.Array(T.String()), fix_rule: nullable(AnyObject) });

const CacheStats = T.Object({
  hits: T.Integer(),
  misses: T.Integer(),
  compile_errors: T.Integer(),
  hit_rate_pct: T.Number(),
  avg_compile_micros: T.Number(),
  size: T.Integer(),
  capacity: T.Integer(),
});

const HealthChecks = T.Object({
  object: T.Literal("health_checks"),
  status: oneOf(["ok", "warn", "critical"]),
  checks: T.Array(T.Object({ name: T.String(), severity: oneOf(["warn", "critical"]), description: T.String(), status: oneOf(["pass", "fail", "error"]), detail: T.String() })),
});

// CEL hosting for engine rules on @marcbachmann/cel-js (SPEC 9).
//
// One Environment per rule context, built lazily: the library is loaded with a
// lazy require so CLI commands that never evaluate CEL do not pay for it.
// Compiled (parsed + type-checked) expressions live in a 1024-entry LRU.

import type * as CelJs from "@marcbachmann/cel-js";
import type { Envelope } from "../records/types";
import { LruMap } from "./lru";

export const CEL_CONTEXTS = ["permission", "routing", "fold_rule", "health_check", "aitl"] as const;
export type CelContextName = (typeof CEL_CONTEXTS)[number];

export function isCelContext(value: unknown): value is CelContextName {
  return typeof value === "string" && (CEL_CONTEXTS as readonly string[]).includes(value);
}

/** Per-evaluation caller state behind the zero-argument and lookup functions. */
export interface CelScope {
  actor: string;
  nowSecs: number;
  trust(actor: string, domain: string): number;
  trustCount(actor: string, domain: string): number;
}

export type CheckResult = { ok: true } | { ok: false; error: string; column?: number };

/** A record as CEL sees it: ints are BigInt, body is a CEL-ready map. */
export interface CelRecord {
  id: string;
  act: string;
  actor: string;
  thread: string;
  body: Record<string, unknown>;
  clock: bigint;
  data_type: string;
  parents: string[];
  judged_by: string | null;
}

/** Raw (JSON-shaped) inputs a caller may bind; `toCelVars` converts them once per request. */
export interface RawCelVars {
  record?: Partial<Envelope> & { id?: string };
  records?: Array<Partial<Envelope> & { id?: string }>;
  resource?: string;
  system?: Record<string, unknown>;
  task?: Record<string, unknown>;
  tasks?: Array<Record<string, unknown>>;
  proposal_confidence?: number;
  meta_trust?: Record<string, unknown>;
}

export type CelVars = Record<string, unknown>;

const RECORD_TYPE = "Record";
const RECORD_FIELDS = {
  id: "string",
  act: "string",
  actor: "string",
  thread: "string",
  body: "map",
  clock: "int",
  data_type: "string",
  parents: "list<string>",
  judged_by: "dyn", // string or null
};

// Keys that hold money, scores or ratios: they stay double even when integral,
// so `system.today.cost_usd * 1.5` does not hit cel-js's missing int*double overload.
const DOUBLE_KEYS = new Set(["cost_usd", "confidence", "proposal_confidence", "wilson_lb", "trust", "score", "hit_rate_pct"]);

const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63;

export function emptyCelRecord(): CelRecord {
  return { id: "", act: "GET", actor: "", thread: "", body: {}, clock: 0n, data_type: "VOID", parents: [], judged_by: null };
}

function emptySystem(): Record<string, unknown> {
  return toCelValue({
    uptime_secs: 0,
    records_total: 0,
    threads_total: 0,
    daemon_version: "",
    active_dispatches: [],
    today: { dispatches: 0, cost_usd: 0, tasks_completed: 0 },
  }) as Record<string, unknown>;
}

function emptyTask(): Record<string, unknown> {
  return toCelValue({ status: "", priority: "", assigned_to: "", age_secs: 0, cost_usd: 0, exists: false }) as Record<string, unknown>;
}

function emptyMetaTrust(): Record<string, unknown> {
  return toCelValue({ wilson_lb: 0, total_proposals: 0, accepted: 0, rejected: 0 }) as Record<string, unknown>;
}

interface VariableSpec {
  type: string;
  /** Bound when the caller does not supply the variable (cel-js would fail with unknown_variable). */
  empty: () => unknown;
}

const VAR_RECORD: VariableSpec = { type: RECORD_TYPE, empty: emptyCelRecord };
// Built once: CEL only reads bound values, and the permission path binds this on every request.
let sharedEmptySystem: Record<string, unknown> | undefined;
const VAR_SYSTEM: VariableSpec = { type: "map", empty: () => (sharedEmptySystem ??= emptySystem()) };

/** Variables per context (following the engine reference's binding table). */
const CONTEXT_VARIABLES: Record<CelContextName, Record<string, VariableSpec>> = {
  permission: { record: VAR_RECORD, resource: { type: "string", empty: () => "" }, system: VAR_SYSTEM },
  routing: { record: VAR_RECORD, system: VAR_SYSTEM },
  fold_rule: { records: { type: `list<${RECORD_TYPE}>`, empty: () => [] }, task: { type: "map", empty: emptyTask } },
  health_check: { system: VAR_SYSTEM, tasks: { type: "list", empty: () => [] } },
  aitl: {
    record: VAR_RECORD,
    system: VAR_SYSTEM,
    proposal_confidence: { type: "double", empty: () => 0 },
    meta_trust: { type: "map", empty: emptyMetaTrust },
  },
};

/** Names and CEL types of the variables a context binds (for `spl expr` help). */
export function contextVariables(context: CelContextName): Array<{ name: string; type: string }> {
  return Object.entries(CONTEXT_VARIABLES[context]).map(([name, spec]) => ({ name, type: spec.type }));
}

/** Functions bound in every context. */
export const CEL_FUNCTIONS = [
  "current_actor(): string",
  "now(): int",
  "trust(string, string): double",
  "trust_count(string, string): int",
] as const;

// ---------------------------------------------------------------------------
// JSON -> CEL value conversion

/**
 * Converts a JSON value for CEL: integral numbers become BigInt (CEL int) so that
 * `record.body.n * 2` works; fractional numbers stay double. Objects are copied into
 * null-prototype objects so a `__proto__` key in a body stays an ordinary key.
 */
export function toCelValue(value: unknown, key?: string): unknown {
  switch (typeof value) {
    case "number":
      if (Number.isInteger(value) && value >= INT64_MIN && value < INT64_MAX && !(key && DOUBLE_KEYS.has(key))) return BigInt(value);
      return value;
    case "object": {
      if (value === null) return null;
      if (Array.isArray(value)) return value.map((item) => toCelValue(item));
      const out: Record<string, unknown> = Object.create(null);
      for (const k of Object.keys(value)) out[k] = toCelValue((value as Record<string, unknown>)[k], k);
      return out;
    }
    default:
      return value;
  }
}

/** Converts a record (stored, envelope, or partial) to the typed CEL `record`. */
export function toCelRecord(rec: Partial<Envelope> & { id?: string }): CelRecord {
  return {
    id: typeof rec.id === "string" ? rec.id : "",
    act: typeof rec.act === "string" ? rec.act : "",
    actor: typeof rec.actor === "string" ? rec.actor : "",
    thread: typeof rec.thread === "string" ? rec.thread : "",
    body: rec.body && typeof rec.body === "object" ? (toCelValue(rec.body) as Record<string, unknown>) : Object.create(null),
    clock: typeof rec.clock === "number" && Number.isInteger(rec.clock) ? BigInt(rec.clock) : 0n,
    data_type: typeof rec.data_type === "string" ? rec.data_type : "SCALAR",
    parents: Array.isArray(rec.parents) ? rec.parents.filter((p): p is string => typeof p === "string") : [],
    judged_by: typeof rec.judged_by === "string" ? rec.judged_by : null,
  };
}

/** Converts the raw inputs a caller has into CEL variables (do it once per request). */
export function toCelVars(raw: RawCelVars): CelVars {
  const vars: CelVars = {};
  if (raw.record !== undefined) vars.record = toCelRecord(raw.record);
  if (raw.records !== undefined) vars.records = raw.records.map(toCelRecord);
  if (raw.resource !== undefined) vars.resource = raw.resource;
  if (raw.system !== undefined) vars.system = toCelValue(raw.system);
  if (raw.task !== undefined) vars.task = toCelValue(raw.task);
  if (raw.tasks !== undefined) vars.tasks = toCelValue(raw.tasks);
  if (raw.proposal_confidence !== undefined) vars.proposal_confidence = Number(raw.proposal_confidence);
  if (raw.meta_trust !== undefined) vars.meta_trust = toCelValue(raw.meta_trust);
  return vars;
}

/** Turns a CEL result into plain JSON-safe data (BigInt -> number or string) for printing. */
export function celToJson(value: unknown): unknown {
  if (typeof value === "bigint") return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (Array.isArray(value)) return value.map(celToJson);
  if (value instanceof Map) return Object.fromEntries([...value].map(([k, v]) => [String(k), celToJson(v)]));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(value)) out[k] = celToJson((value as Record<string, unknown>)[k]);
    return out;
  }
  return value;
}

// ---------------------------------------------------------------------------
// Environments (lazy)

type CelModule = typeof CelJs;
type Environment = CelJs.Environment;
type Compiled = (context: CelVars) => unknown;

let celModule: CelModule | undefined;
let baseEnv: Environment | undefined;
const environments = new Map<CelContextName, Environment>();

/** The caller scope of the evaluation in progress; cel-js handlers get no context, only arguments. */
let activeScope: CelScope | null = null;

function scope(name: string): CelScope {
  if (!activeScope) throw new Error(`${name}() needs a caller scope, none is set`);
  return activeScope;
}

function cel(): CelModule {
  // Lazy require: keeps cel-js off the startup path of commands that never evaluate.
  celModule ??= require("@marcbachmann/cel-js") as CelModule;
  return celModule;
}

function buildBase(): Environment {
  const env = new (cel().Environment)();
  env.registerType(RECORD_TYPE, { fields: RECORD_FIELDS });
  env.registerFunction("current_actor(): string", () => scope("current_actor").actor);
  env.registerFunction("now(): int", () => BigInt(Math.floor(scope("now").nowSecs)));
  env.registerFunction("trust(string, string): double", (actor: string, domain: string) => Number(scope("trust").trust(actor, domain)));
  env.registerFunction("trust_count(string, string): int", (actor: string, domain: string) =>
    BigInt(Math.trunc(scope("trust_count").trustCount(actor, domain))),
  );
  return env;
}

function environment(context: CelContextName): Environment {
  let env = environments.get(context);
  if (env) return env;
  if (!isCelContext(context)) throw new Error(`unknown CEL context "${String(context)}" (expected one of ${CEL_CONTEXTS.join(", ")})`);
  baseEnv ??= buildBase();
  env = baseEnv.clone();
  for (const [name, spec] of Object.entries(CONTEXT_VARIABLES[context])) env.registerVariable(name, spec.type);
  environments.set(context, env);
  return env;
}

// ---------------------------------------------------------------------------
// Compile, check, cache

export const EXPRESSION_CACHE_CAPACITY = 1024;
const cache = new LruMap<string, Compiled>(EXPRESSION_CACHE_CAPACITY);
let compileErrors = 0;
let compiles = 0;
let compileMicrosTotal = 0;

type CompileResult = { ok: true; fn: Compiled } | { ok: false; error: string; column?: number };

interface CelErrorLike {
  summary?: string;
  message?: string;
  range?: { start: number; end: number };
}

/** One-line description of a cel-js error, with a 1-based column when it carries a range. */
function describeError(err: unknown, expr: string): { error: string; column?: number } {
  const e = (err ?? {}) as CelErrorLike;
  const text = String(e.summary || e.message || err).split("\n")[0]!.trim();
  const start = e.range?.start;
  if (typeof start !== "number") return { error: text };
  const lineStart = expr.lastIndexOf("\n", start - 1) + 1;
  const column = start - lineStart + 1;
  const line = expr.slice(0, lineStart).split("\n").length;
  const where = expr.includes("\n") ? `line ${line}, column ${column}` : `column ${column}`;
  return { error: `${text} (${where})`, column };
}

function compileUncached(context: CelContextName, expr: string, requireBool: boolean): CompileResult {
  if (!isCelContext(context)) return { ok: false, error: `unknown CEL context "${String(context)}" (expected one of ${CEL_CONTEXTS.join(", ")})` };
  if (typeof expr !== "string" || expr.trim() === "") return { ok: false, error: "expression is empty" };
  const env = environment(context);
  try {
    const fn = env.parse(expr);
    const checked = fn.check();
    if (!checked.valid) return { ok: false, ...describeError(checked.error, expr) };
    if (requireBool && checked.type !== "bool") {
      const hint = checked.type === "dyn" ? ` (compare it explicitly, e.g. \`(${expr}) == true\`)` : "";
      return { ok: false, error: `expression has type ${checked.type}, expected bool${hint}` };
    }
    return { ok: true, fn: fn as Compiled };
  } catch (err) {
    return { ok: false, ...describeError(err, expr) };
  }
}

function compile(context: CelContextName, expr: string): CompileResult {
  const key = `${context}:${expr}`;
  const cached = cache.get(key);
  if (cached) return { ok: true, fn: cached };
  const t0 = performance.now();
  const result = compileUncached(context, expr, true);
  compileMicrosTotal += (performance.now() - t0) * 1000;
  compiles++;
  if (result.ok) cache.set(key, result.fn);
  else compileErrors++;
  return result;
}

/** Valid only if `expr` parses and type-checks to bool in `context`. Warms the cache on success. */
export function checkExpression(context: CelContextName, expr: string): CheckResult {
  const result = compile(context, expr);
  if (result.ok) return { ok: true };
  return result.column === undefined ? { ok: false, error: result.error } : { ok: false, error: result.error, column: result.column };
}

/** Thrown when an expression cannot be compiled or its evaluation fails. */
export class CelEvaluationError extends Error {
  override readonly name = "CelEvaluationError";
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

function bindDefaults(context: CelContextName, vars: CelVars): CelVars {
  const specs = CONTEXT_VARIABLES[context];
  let bound: CelVars | undefined;
  for (const name in specs) {
    if (vars[name] === undefined) {
      bound ??= { ...vars };
      bound[name] = specs[name]!.empty();
    }
  }
  return bound ?? vars;
}

function run(context: CelContextName, expr: string, fn: Compiled, vars: CelVars, celScope: CelScope): unknown {
  const ctx = bindDefaults(context, vars);
  const previous = activeScope;
  activeScope = celScope;
  try {
    return fn(ctx);
  } catch (err) {
    const { error } = describeError(err, expr);
    const code = typeof (err as { code?: unknown })?.code === "string" ? (err as { code: string }).code : "evaluation_error";
    throw new CelEvaluationError(`${context} expression failed: ${error}`, code);
  } finally {
    activeScope = previous;
  }
}

/**
 * Evaluates a bool expression (compiled once, then served from the cache).
 * `vars` must already be CEL values (see `toCelVars`); missing context variables get empty defaults.
 * Throws CelEvaluationError on compile or evaluation failure.
 */
export function evaluateBool(context: CelContextName, expr: string, vars: CelVars, celScope: CelScope): boolean {
  const compiled = compile(context, expr);
  if (!compiled.ok) throw new CelEvaluationError(`${context} expression does not compile: ${compiled.error}`, "compile_error");
  const result = run(context, expr, compiled.fn, vars, celScope);
  if (typeof result !== "boolean") throw new CelEvaluationError(`${context} expression returned ${typeof result}, expected bool`, "not_bool");
  return result;
}

/** A bool expression compiled once, for hot paths that evaluate the same rule on every request. */
export type BoolEvaluator = (vars: CelVars, celScope: CelScope) => boolean;

/**
 * Compiles `expr` (through the cache, so it counts there) and returns an evaluator with
 * evaluateBool's semantics. `vars` should bind every variable of the context (see
 * `bindContextDefaults`) so no per-call copy is needed. Throws CelEvaluationError if it does not compile.
 */
export function compileBool(context: CelContextName, expr: string): BoolEvaluator {
  const compiled = compile(context, expr);
  if (!compiled.ok) throw new CelEvaluationError(`${context} expression does not compile: ${compiled.error}`, "compile_error");
  const fn = compiled.fn;
  return (vars, celScope) => {
    const result = run(context, expr, fn, vars, celScope);
    if (typeof result !== "boolean") throw new CelEvaluationError(`${context} expression returned ${typeof result}, expected bool`, "not_bool");
    return result;
  };
}

/** `vars` with every variable of `context` bound (missing ones get their empty defaults). */
export function bindContextDefaults(context: CelContextName, vars: CelVars): CelVars {
  return bindDefaults(context, vars);
}

/** Evaluates an expression of any type (for `spl expr eval`); not cached. */
export function evaluateValue(context: CelContextName, expr: string, vars: CelVars, celScope: CelScope): unknown {
  const compiled = compileUncached(context, expr, false);
  if (!compiled.ok) throw new CelEvaluationError(`${context} expression does not compile: ${compiled.error}`, "compile_error");
  return run(context, expr, compiled.fn, vars, celScope);
}

export interface ExpressionCacheStats {
  hits: number;
  misses: number;
  compile_errors: number;
  hit_rate_pct: number;
  avg_compile_micros: number;
  size: number;
  capacity: number;
}

export function expressionCacheStats(): ExpressionCacheStats {
  const lookups = cache.hits + cache.misses;
  return {
    hits: cache.hits,
    misses: cache.misses,
    compile_errors: compileErrors,
    hit_rate_pct: lookups === 0 ? 0 : Math.round((cache.hits / lookups) * 10000) / 100,
    avg_compile_micros: compiles === 0 ? 0 : Math.round((compileMicrosTotal / compiles) * 10) / 10,
    size: cache.size,
    capacity: cache.capacity,
  };
}

/** Empties the cache and zeroes its counters (tests, and `spl` admin tooling). */
export function resetExpressionCache(): void {
  cache.clear();
  cache.resetStats();
  compileErrors = 0;
  compiles = 0;
  compileMicrosTotal = 0;
}

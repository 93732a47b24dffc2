// CEL hosting for engine rules on @marcbachmann/cel-js.
//
// One Environment per rule context, built lazily from the vocabulary (vocabulary.ts): the
// library is loaded with a lazy require so CLI commands that never evaluate CEL do not pay for
// it. Compiled (parsed + type-checked) expressions live in a 1024-entry LRU. Every evaluation
// runs under a cost budget (cel-cost.ts); `matches()` runs RE2 (cel-regex.ts).

import type * as CelJs from "@marcbachmann/cel-js";
import { LruMap } from "./lru";
import { instrument, staticCostProblem, withBudget } from "./cel-cost";
import { useRe2 } from "./cel-regex";
import { CelCostError, CelEvaluationError, CelRecordValue, toCelRecord } from "./cel-values";
import {
  CEL_CONTEXTS,
  CEL_TYPES,
  CONTEXT_VARIABLES,
  RECORD_TYPE,
  celFunctions,
  VARIABLES,
  type CelContextName,
  type CelScope,
  type RawCelVars,
  type VariableName,
} from "./vocabulary";

export { CelCostError, CelEvaluationError, celToJson, celType, emptyCelRecord, toCelRecord, toCelValue, type CelRecord } from "./cel-values";
export { CEL_CONTEXTS, scopeWith, type CelContextName, type CelScope, type RawCelVars } from "./vocabulary";

export function isCelContext(value: unknown): value is CelContextName {
  return typeof value === "string" && Object.hasOwn(CONTEXT_VARIABLES, value);
}

export type CheckResult = { ok: true } | { ok: false; error: string; column?: number };

export type CelVars = Record<string, unknown>;

/** Names and CEL types of the variables a context binds (for `spl expr` help). */
export function contextVariables(context: CelContextName): Array<{ name: string; type: string }> {
  return CONTEXT_VARIABLES[context].map((name) => ({ name, type: VARIABLES[name].type }));
}


/** Converts the raw inputs a caller has into CEL variables (do it once per request). */
export function toCelVars(raw: RawCelVars): CelVars {
  const vars: CelVars = {};
  for (const name of Object.keys(raw) as VariableName[]) {
    const value = raw[name];
    if (value !== undefined && Object.hasOwn(VARIABLES, name)) vars[name] = VARIABLES[name].convert(value);
  }
  return vars;
}

// ---------------------------------------------------------------------------
// Environments (lazy)

type CelModule = typeof CelJs;
type Environment = CelJs.Environment;
type Compiled = (context: CelVars) => unknown;

let celModule: CelModule | undefined;
let baseEnv: Environment | undefined;
const environments = new Map<CelContextName, Environment>();
/** The function list the environments were built from (celFunctions().generation). */
let builtFor = -1;

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
  // Record values are CelRecordValue instances, read as they are; a plain object is still converted.
  for (const [name, fields] of Object.entries(CEL_TYPES)) {
    env.registerType(name, name === RECORD_TYPE ? { ctor: CelRecordValue, fields, convert: (v: Record<string, unknown>) => toCelRecord(v) } : { fields });
  }
  for (const f of celFunctions().functions) {
    const name = f.signature.slice(0, f.signature.indexOf("("));
    env.registerFunction(f.signature, (...args: unknown[]) => {
      const s = scope(name);
      return f.call(f.facts ? s.facts(f.facts) : undefined, s, ...args);
    });
  }
  return env;
}

function environment(context: CelContextName): Environment {
  const { generation } = celFunctions();
  if (generation !== builtFor) {
    // Functions were installed since: rebuild the environments (compiled rules stay valid).
    builtFor = generation;
    baseEnv = undefined;
    environments.clear();
  }
  let env = environments.get(context);
  if (env) return env;
  if (!isCelContext(context)) throw new Error(`unknown CEL context "${String(context)}" (expected one of ${CEL_CONTEXTS.join(", ")})`);
  baseEnv ??= buildBase();
  env = baseEnv.clone();
  for (const name of CONTEXT_VARIABLES[context]) env.registerVariable(name, VARIABLES[name].type);
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
    // Rules are stored and run on every request: refuse one whose fan-out could exceed the budget.
    const tooCostly = requireBool ? staticCostProblem(fn.ast) : undefined;
    if (tooCostly) return { ok: false, error: tooCostly };
    const badRegex = useRe2(fn.ast);
    if (badRegex) return { ok: false, ...describeError({ message: badRegex.error, range: badRegex.start === undefined ? undefined : { start: badRegex.start, end: badRegex.start } }, expr) };
    instrument(fn.ast);
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

function bindDefaults(context: CelContextName, vars: CelVars): CelVars {
  let bound: CelVars | undefined;
  for (const name of CONTEXT_VARIABLES[context]) {
    if (vars[name] === undefined) {
      bound ??= { ...vars };
      bound[name] = VARIABLES[name].empty();
    }
  }
  return bound ?? vars;
}

function run(context: CelContextName, expr: string, fn: Compiled, vars: CelVars, celScope: CelScope): unknown {
  const ctx = bindDefaults(context, vars);
  const previous = activeScope;
  activeScope = celScope;
  try {
    return withBudget(() => fn(ctx));
  } catch (err) {
    if (err instanceof CelCostError) throw err;
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

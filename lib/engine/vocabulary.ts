// What CEL rules can name: the variables a caller binds, which rule context sees which variables,
// and the functions every rule may call. A function that reads daemon state names the provider of
// its facts; capabilities declare theirs beside their state (ARCHITECTURE.md "CEL").
import type { Envelope } from "../records/types";
import { emptyCelRecord, toCelRecord, toCelValue } from "./cel-values";

/**
 * The state a group of CEL functions reads, declared once beside them (the capability that owns
 * the state declares both): what the functions see where there are no such facts (a CLI check, a
 * daemon without that capability), and how to read a snapshot of them in the evaluation worker.
 * The live side is a FactSource, from the capability's setup().
 */
export interface FactProvider<L = any, D = any> {
  readonly name: string;
  readonly empty: L;
  restore(snapshot: D): L;
}

/** A provider's facts in a running daemon: a lookup over the current state, and a plain-data snapshot of it. */
export interface FactSource<L = any, D = any> {
  readonly provider: FactProvider<L, D>;
  live(nowSecs: number): L;
  snapshot(nowSecs: number): D;
}

/** Per-evaluation caller state behind the functions: who asks, when, and each provider's facts. */
export interface CelScope {
  actor: string;
  nowSecs: number;
  /** The lookup of `provider`'s facts for this evaluation (its `empty` where there are none). */
  facts<L>(provider: FactProvider<L>): L;
}

/** A scope over fixed lookups by provider name (the evaluation worker, tests, the fan-out join). */
export function scopeWith(actor: string, nowSecs: number, lookups: Record<string, unknown> = {}): CelScope {
  return { actor, nowSecs, facts: (p) => (Object.hasOwn(lookups, p.name) ? lookups[p.name] : p.empty) as any };
}

export const RECORD_TYPE = "Record";
/** Object types rules can read fields of (name -> field -> CEL type). */
export const CEL_TYPES: Record<string, Record<string, string>> = {
  [RECORD_TYPE]: {
    id: "string",
    act: "string",
    actor: "string",
    thread: "string",
    body: "map",
    clock: "int",
    data_type: "string",
    parents: "list<string>",
    judged_by: "dyn", // string or null
  },
};

export interface VariableSpec {
  /** CEL type the checker knows it by. */
  type: string;
  /** The caller's JSON-shaped value as a CEL value (called once per request). */
  convert(raw: unknown): unknown;
  /** Bound when the caller does not supply the variable (cel-js would fail with unknown_variable). */
  empty(): unknown;
}

const mapOf = (shape: Record<string, unknown>) => () => toCelValue(shape) as Record<string, unknown>;
const once = <T>(make: () => T) => {
  let value: T | undefined;
  return () => (value ??= make()); // CEL only reads bound values: one shared empty copy is enough
};

const EMPTY_SYSTEM = {
  uptime_secs: 0,
  records_total: 0,
  threads_total: 0,
  daemon_version: "",
  active_dispatches: [],
  today: { dispatches: 0, cost_usd: 0, tasks_completed: 0 },
};
const EMPTY_TASK = { status: "", priority: "", assigned_to: "", age_secs: 0, cost_usd: 0, exists: false };
const EMPTY_META_TRUST = { wilson_lb: 0, total_proposals: 0, accepted: 0, rejected: 0 };

type RawRecord = Partial<Envelope> & { id?: string };

export const VARIABLES = {
  record: { type: RECORD_TYPE, convert: (r) => toCelRecord(r as RawRecord), empty: emptyCelRecord },
  records: { type: `list<${RECORD_TYPE}>`, convert: (rs) => (rs as RawRecord[]).map(toCelRecord), empty: () => [] },
  resource: { type: "string", convert: (r) => r, empty: () => "" },
  system: { type: "map", convert: (s) => toCelValue(s), empty: once(mapOf(EMPTY_SYSTEM)) },
  task: { type: "map", convert: (t) => toCelValue(t), empty: mapOf(EMPTY_TASK) },
  tasks: { type: "list", convert: (t) => toCelValue(t), empty: () => [] },
  proposal_confidence: { type: "double", convert: (c) => Number(c), empty: () => 0 },
  meta_trust: { type: "map", convert: (m) => toCelValue(m), empty: mapOf(EMPTY_META_TRUST) },
  // A fan-out's join (README "Fan-out"): one map per reported child {index, verdict, worker, cost_usd...}.
  children: { type: "list", convert: (c) => toCelValue(c), empty: () => [] },
  parent: { type: RECORD_TYPE, convert: (r) => toCelRecord(r as RawRecord), empty: emptyCelRecord },
} satisfies Record<string, VariableSpec>;

export type VariableName = keyof typeof VARIABLES;

/** Raw (JSON-shaped) inputs a caller may bind; `toCelVars` converts them once per request. */
export interface RawCelVars {
  record?: RawRecord;
  records?: RawRecord[];
  resource?: string;
  system?: Record<string, unknown>;
  task?: Record<string, unknown>;
  tasks?: Array<Record<string, unknown>>;
  proposal_confidence?: number;
  meta_trust?: Record<string, unknown>;
  children?: Array<Record<string, unknown>>;
  parent?: RawRecord;
}

/** Rule contexts and the variables each binds (following the engine reference's binding table). */
export const CONTEXT_VARIABLES = {
  permission: ["record", "resource", "system"],
  routing: ["record", "system"],
  fold_rule: ["records", "task"],
  health_check: ["system", "tasks"],
  aitl: ["record", "system", "proposal_confidence", "meta_trust"],
  join: ["children", "parent"],
} as const satisfies Record<string, readonly VariableName[]>;

export type CelContextName = keyof typeof CONTEXT_VARIABLES;
export const CEL_CONTEXTS = Object.keys(CONTEXT_VARIABLES) as CelContextName[];

/** A function every rule may call; `facts` names the provider of the state it reads. */
export interface CelFunction<L = any> {
  signature: string;
  facts?: FactProvider<L>;
  /** Called with the provider's lookup (undefined without a provider), the scope, then the CEL arguments. */
  call(facts: L, scope: CelScope, ...args: any[]): unknown;
}

/** trust() and trust_count(): the trust table (lib/engine/trust.ts), the engine's own facts. */
export interface TrustLookup {
  score(actor: string, domain: string): number;
  count(actor: string, domain: string): number;
}
export interface TrustSnapshot {
  /** [actor, domain, score, verdict count] per row. */
  rows: Array<[string, string, number, number]>;
  /** The score of a pair without evidence. */
  prior: number;
}
export const TRUST_FACTS: FactProvider<TrustLookup, TrustSnapshot> = {
  name: "trust",
  empty: { score: () => 0, count: () => 0 },
  restore({ rows, prior }) {
    const byPair = new Map(rows.map(([actor, domain, score, count]) => [`${actor}\u0000${domain}`, { score, count }]));
    return { score: (a, d) => byPair.get(`${a}\u0000${d}`)?.score ?? prior, count: (a, d) => byPair.get(`${a}\u0000${d}`)?.count ?? 0 };
  },
};

const CORE_FUNCTIONS: readonly CelFunction[] = [
  { signature: "current_actor(): string", call: (_, s) => s.actor },
  { signature: "now(): int", call: (_, s) => BigInt(Math.floor(s.nowSecs)) },
  { signature: "trust(string, string): double", facts: TRUST_FACTS, call: (t: TrustLookup, _, actor: string, domain: string) => Number(t.score(actor, domain)) },
  { signature: "trust_count(string, string): int", facts: TRUST_FACTS, call: (t: TrustLookup, _, actor: string, domain: string) => BigInt(Math.trunc(t.count(actor, domain))) },
];

let functions: readonly CelFunction[] = CORE_FUNCTIONS;
let generation = 0;

/**
 * Makes capabilities' functions known to every CEL environment (lib/capabilities.ts does it for
 * the list, so whoever imports the list compiles rules that call them). Idempotent per signature.
 */
export function installCelFunctions(extra: readonly CelFunction[]): void {
  const known = new Set(functions.map((f) => f.signature));
  const fresh = extra.filter((f) => !known.has(f.signature));
  if (!fresh.length) return;
  functions = [...functions, ...fresh];
  generation++;
}

/** The functions bound in every context, and a number that changes when they do. */
export function celFunctions(): { functions: readonly CelFunction[]; generation: number } {
  return { functions, generation };
}

/** Every provider some installed function reads. */
export function factProviders(): FactProvider[] {
  return [...new Set(functions.flatMap((f) => (f.facts ? [f.facts] : [])))];
}

// What CEL rules can name: the variables a caller binds, the functions every rule may call, and
// which rule context sees which variables. Later features add their bindings here (a variable
// entry, a function entry, a context row) and the CEL host picks them up.
import type { Envelope } from "../records/types";
import { emptyCelRecord, toCelRecord, toCelValue } from "./cel-values";

/** Per-evaluation caller state behind the zero-argument and lookup functions. */
export interface CelScope {
  actor: string;
  nowSecs: number;
  trust(actor: string, domain: string): number;
  trustCount(actor: string, domain: string): number;
  /** task(ref): the task by alias or thread id, if any; a scope without it sees no tasks. */
  task?(ref: string): object | undefined;
  /** The fleet's kill switch now (SPEC 15); a scope without it sees nothing frozen. */
  fleet?(): FleetFacts | undefined;
  /** fanout_status(thread): none|spawning|in_progress|ready_to_join|done; a scope without it sees none. */
  fanoutStatus?(thread: string): string;
}

export interface FleetFacts {
  frozen: string[];
  hardPastGrace: string[];
  emergency: boolean;
}
const NO_FLEET: FleetFacts = { frozen: [], hardPastGrace: [], emergency: false };

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
  // A fan-out's join (SPEC 15): one map per reported child {index, verdict, worker, cost_usd...}.
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

export interface FunctionSpec {
  signature: string;
  /** Called with the scope of the evaluation in progress, then the CEL arguments. */
  call(scope: CelScope, ...args: any[]): unknown;
}

/** Functions bound in every context. */
export const FUNCTIONS: readonly FunctionSpec[] = [
  { signature: "current_actor(): string", call: (s) => s.actor },
  { signature: "now(): int", call: (s) => BigInt(Math.floor(s.nowSecs)) },
  { signature: "trust(string, string): double", call: (s, actor: string, domain: string) => Number(s.trust(actor, domain)) },
  { signature: "trust_count(string, string): int", call: (s, actor: string, domain: string) => BigInt(Math.trunc(s.trustCount(actor, domain))) },
  // A missing task reads as {exists: false, status: ""...}, so `task("X").status == "approved"` is just false.
  { signature: "task(string): map", call: (s, ref: string) => toCelValue(s.task?.(ref) ?? EMPTY_TASK) },
  { signature: "fleet_frozen_namespaces(): list<string>", call: (s) => [...(s.fleet?.() ?? NO_FLEET).frozen] },
  { signature: "fleet_hard_frozen_past_grace(): list<string>", call: (s) => [...(s.fleet?.() ?? NO_FLEET).hardPastGrace] },
  { signature: "fleet_emergency_active(): bool", call: (s) => (s.fleet?.() ?? NO_FLEET).emergency },
  { signature: "fanout_status(string): string", call: (s, thread: string) => s.fanoutStatus?.(thread) ?? "none" },
];

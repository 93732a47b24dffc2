// JSON values in and out of CEL, and the errors an evaluation raises.
import { MAX_BODY_DEPTH } from "../records/canonical";
import type { Envelope } from "../records/types";

/** Thrown when an expression cannot be compiled or its evaluation fails. */
export class CelEvaluationError extends Error {
  override readonly name: string = "CelEvaluationError";
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The expression would do (or did) more work than one evaluation may: see cel-cost.ts. */
export class CelCostError extends CelEvaluationError {
  override readonly name = "CelCostError";
  constructor(message: string) {
    super(message, "too_costly");
  }
}

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

// Keys that hold money, scores or ratios: they stay double even when integral,
// so `system.today.cost_usd * 1.5` does not hit cel-js's missing int*double overload.
const DOUBLE_KEYS = new Set(["cost_usd", "confidence", "proposal_confidence", "wilson_lb", "trust", "score", "hit_rate_pct"]);

const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63;

/** Stored bodies never nest deeper (canonical.ts); a binding that does is refused, not recursed into. */
export const MAX_BINDING_DEPTH = MAX_BODY_DEPTH;

/**
 * Converts a JSON value for CEL: integral numbers become BigInt (CEL int) so that
 * `record.body.n * 2` works; fractional numbers stay double. Objects are copied into
 * null-prototype objects so a `__proto__` key in a body stays an ordinary key.
 */
export function toCelValue(value: unknown, key?: string, depth = 0): unknown {
  switch (typeof value) {
    case "number":
      if (Number.isInteger(value) && value >= INT64_MIN && value < INT64_MAX && !(key && DOUBLE_KEYS.has(key))) return BigInt(value);
      return value;
    case "object": {
      if (value === null) return null;
      if (depth >= MAX_BINDING_DEPTH) {
        throw new CelEvaluationError(`a bound value nests deeper than ${MAX_BINDING_DEPTH} levels — flatten it`, "too_deep");
      }
      if (Array.isArray(value)) return value.map((item) => toCelValue(item, undefined, depth + 1));
      const out: Record<string, unknown> = Object.create(null);
      for (const k of Object.keys(value)) out[k] = toCelValue((value as Record<string, unknown>)[k], k, depth + 1);
      return out;
    }
    default:
      return value;
  }
}

/**
 * The typed CEL `record` value. cel-js knows this class as the Record type (cel.ts registers it),
 * so a bound record is read as it is: without it, every evaluation wraps the plain object again
 * in cel-js's own lazily converting Map, and a decision over 10 rules wraps it 10 times.
 */
export class CelRecordValue implements CelRecord {
  constructor(
    readonly id: string,
    readonly act: string,
    readonly actor: string,
    readonly thread: string,
    readonly body: Record<string, unknown>,
    readonly clock: bigint,
    readonly data_type: string,
    readonly parents: string[],
    readonly judged_by: string | null,
  ) {}
}

export function emptyCelRecord(): CelRecord {
  return new CelRecordValue("", "GET", "", "", {}, 0n, "VOID", [], null);
}

/** Converts a record (stored, envelope, or partial) to the typed CEL `record`. */
export function toCelRecord(rec: Partial<Envelope> & { id?: string }): CelRecord {
  if (rec instanceof CelRecordValue) return rec;
  return new CelRecordValue(
    typeof rec.id === "string" ? rec.id : "",
    typeof rec.act === "string" ? rec.act : "",
    typeof rec.actor === "string" ? rec.actor : "",
    typeof rec.thread === "string" ? rec.thread : "",
    rec.body && typeof rec.body === "object" ? (toCelValue(rec.body) as Record<string, unknown>) : Object.create(null),
    typeof rec.clock === "number" && Number.isInteger(rec.clock) ? BigInt(rec.clock) : 0n,
    typeof rec.data_type === "string" ? rec.data_type : "SCALAR",
    Array.isArray(rec.parents) ? rec.parents.filter((p): p is string => typeof p === "string") : [],
    typeof rec.judged_by === "string" ? rec.judged_by : null,
  );
}

/** The CEL type name of a result, for printing next to its JSON value. */
export function celType(v: unknown): string {
  if (v === null) return "null";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "bigint") return "int";
  if (typeof v === "number") return "double";
  if (typeof v === "string") return "string";
  if (Array.isArray(v)) return "list";
  return "map";
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

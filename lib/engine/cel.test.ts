import { beforeEach, describe, expect, test } from "bun:test";
import type { StoredRecord } from "../records/types";
import {
  CEL_CONTEXTS,
  CelEvaluationError,
  celToJson,
  checkExpression,
  contextVariables,
  evaluateBool,
  evaluateValue,
  expressionCacheStats,
  resetExpressionCache,
  toCelRecord,
  toCelValue,
  scopeWith,
  toCelVars,
  type CelScope,
} from "./cel";

const scope: CelScope = scopeWith("did:sync:user:alice", 1_700_000_000.9, {
  trust: {
    score: (actor: string, domain: string) => (actor === "did:sync:agent:bob" && domain === "code" ? 0.75 : 0),
    count: (actor: string, domain: string) => (actor === "did:sync:agent:bob" && domain === "code" ? 12 : 0),
  },
});

function rec(over: Partial<StoredRecord> = {}): StoredRecord {
  return {
    id: "r1",
    sequence: 1,
    created_at: 1_700_000_000,
    parents: ["p1"],
    thread: "th_x",
    actor: "did:sync:agent:bob",
    act: "KNOW",
    body: { n: 2, domain: "code", cost_usd: 1.5, nested: { k: 7 } },
    clock: 7,
    data_type: "SCALAR",
    judged_by: null,
    ...over,
  };
}

const recordVars = (r: StoredRecord = rec()) => toCelVars({ record: r, resource: "record_write" });

beforeEach(() => resetExpressionCache());

describe("checkExpression", () => {
  test("accepts bool expressions in every context", () => {
    for (const ctx of CEL_CONTEXTS) expect(checkExpression(ctx, "now() > 0 && current_actor() != ''")).toEqual({ ok: true });
    expect(checkExpression("permission", 'resource == "record_write" && record.clock > 5')).toEqual({ ok: true });
    expect(checkExpression("routing", 'trust(record.actor, record.body.domain) > 0.5 && trust_count(record.actor, "x") >= 3')).toEqual({ ok: true });
    expect(checkExpression("fold_rule", 'records.exists(r, r.act == "KNOW") && task.status == "review"')).toEqual({ ok: true });
    expect(checkExpression("health_check", "system.records_total >= 0 && tasks.size() >= 0")).toEqual({ ok: true });
    expect(checkExpression("aitl", "proposal_confidence > 0.8 && meta_trust.wilson_lb > 0.7")).toEqual({ ok: true });
  });

  test("refuses a non-bool expression", () => {
    const r = checkExpression("permission", "record.clock + 1");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain("type int, expected bool");
    const dyn = checkExpression("permission", "record.body.flag");
    expect(dyn.ok).toBe(false);
    if (!dyn.ok) expect(dyn.error).toContain("type dyn");
  });

  test("bad syntax reports a one-line error with a 1-based column", () => {
    const r = checkExpression("permission", '(resource == "a"');
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.column).toBe(17); // end of input: 16 characters, so column 17
    expect(r.error).toContain("column 17");
    expect(r.error).not.toContain("\n");
  });

  test("type errors carry the column of the offending node", () => {
    const r = checkExpression("permission", 'resource == "x" && record.nope == 1');
    expect(r).toMatchObject({ ok: false, column: 27 }); // "nope" starts at offset 26
    if (!r.ok) expect(r.error).toMatch(/nope/);
    const overload = checkExpression("permission", 'record.clock + "x" == 1');
    expect(overload.ok).toBe(false);
    if (!overload.ok) expect(overload.column).toBe(1);
  });

  test("multi-line expressions report line and column", () => {
    const r = checkExpression("permission", 'resource == "a" &&\n  record.nope == 1');
    expect(r).toMatchObject({ ok: false, column: 10 });
    if (!r.ok) expect(r.error).toContain("line 2, column 10");
  });

  test("variables are bound per context", () => {
    expect(checkExpression("routing", 'resource == "x"').ok).toBe(false); // resource is permission-only
    expect(checkExpression("fold_rule", 'record.act == "KNOW"').ok).toBe(false);
    expect(checkExpression("health_check", 'system.daemon_version != ""').ok).toBe(true);
    expect(checkExpression("permission", "nosuch_fn()").ok).toBe(false);
    expect(checkExpression("permission", "").ok).toBe(false);
    expect(checkExpression("nope" as never, "true")).toMatchObject({ ok: false, error: expect.stringContaining('unknown CEL context "nope"') });
    expect(contextVariables("permission").map((v) => v.name)).toEqual(["record", "resource", "system"]);
  });
});

describe("evaluateBool", () => {
  test("integers reach CEL as BigInt: typed clock and JSON numbers in body", () => {
    const vars = recordVars();
    expect(evaluateBool("permission", "record.clock > 5", vars, scope)).toBe(true);
    expect(evaluateBool("permission", "record.clock == 7", vars, scope)).toBe(true);
    expect(evaluateBool("permission", "record.body.n * 2 == 4", vars, scope)).toBe(true);
    expect(evaluateBool("permission", "record.body.nested.k + 1 == 8", vars, scope)).toBe(true);
    expect(evaluateBool("permission", "record.body.cost_usd < 2.0 && record.body.cost_usd * 2.0 == 3.0", vars, scope)).toBe(true);
    expect(evaluateBool("permission", "record.body.n < 2.5", vars, scope)).toBe(true);
  });

  test("current_actor() and now() read the per-call scope", () => {
    const vars = recordVars();
    expect(evaluateBool("permission", 'current_actor() == "did:sync:user:alice"', vars, scope)).toBe(true);
    expect(evaluateBool("permission", 'current_actor() == "did:sync:user:alice"', vars, { ...scope, actor: "did:sync:user:eve" })).toBe(false);
    expect(evaluateBool("permission", "now() == 1700000000", vars, scope)).toBe(true); // floored to int seconds
    expect(evaluateBool("permission", "now() - 100 > 1699999000", vars, { ...scope, nowSecs: 1_700_000_000 })).toBe(true);
  });

  test("scope is restored after a nested evaluation and after a throw", () => {
    const inner: CelScope = { ...scope, actor: "did:inner" };
    const outer: CelScope = {
      ...scope,
      actor: "did:outer",
      facts: (): any => ({
        score: () => {
          // re-entrant evaluation with another scope, one that throws
          expect(evaluateBool("permission", 'current_actor() == "did:inner"', {}, inner)).toBe(true);
          expect(() => evaluateBool("permission", "record.body.missing == 1", {}, inner)).toThrow(CelEvaluationError);
          return 1;
        },
      }),
    };
    expect(evaluateBool("permission", 'trust("a", "b") == 1.0 && current_actor() == "did:outer"', {}, outer)).toBe(true);
    expect(evaluateValue("permission", "current_actor()", {}, { ...scope, actor: "did:x" })).toBe("did:x");
  });

  test("cel-js is loaded lazily: importing the engine modules does not load it", () => {
    const probe = [
      'import "./lib/engine/config-fold.ts"; import "./lib/engine/permissions.ts"; import "./lib/engine/trust.ts";',
      "const loaded = () => Object.keys(require.cache).some((k) => k.includes('cel-js'));",
      "const before = loaded();",
      'const { checkExpression } = await import("./lib/engine/cel.ts"); checkExpression("permission", "true");',
      "console.log(JSON.stringify([before, loaded()]));",
    ].join("\n");
    const out = Bun.spawnSync([process.execPath, "-e", probe], { cwd: `${import.meta.dir}/../..` });
    expect(out.stdout.toString().trim()).toBe("[false,true]");
  });

  test("trust() and trust_count() call the scope", () => {
    const vars = recordVars();
    expect(evaluateBool("routing", 'trust(record.actor, record.body.domain) == 0.75', vars, scope)).toBe(true);
    expect(evaluateBool("routing", 'trust_count(record.actor, "code") > 10', vars, scope)).toBe(true);
    expect(evaluateBool("routing", 'trust("did:nobody", "code") == 0.0', vars, scope)).toBe(true);
  });

  test("evaluation errors throw a clear one-line CelEvaluationError", () => {
    try {
      evaluateBool("permission", "record.body.missing == 1", recordVars(), scope);
      throw new Error("expected a throw");
    } catch (err) {
      expect(err).toBeInstanceOf(CelEvaluationError);
      expect((err as CelEvaluationError).code).toBe("no_such_key");
      expect((err as Error).message).toContain("missing");
      expect((err as Error).message).not.toContain("\n");
    }
    expect(() => evaluateBool("permission", "record.nope == 1", recordVars(), scope)).toThrow(/does not compile/);
    // has() guards missing keys
    expect(evaluateBool("permission", "has(record.body.missing) && record.body.missing == 1", recordVars(), scope)).toBe(false);
  });

  test("missing context variables get empty defaults", () => {
    expect(evaluateBool("permission", 'record.act == "GET" && resource == "" && system.records_total == 0', {}, scope)).toBe(true);
    expect(evaluateBool("aitl", "proposal_confidence == 0.0 && meta_trust.accepted == 0", {}, scope)).toBe(true);
    expect(evaluateBool("fold_rule", "records.size() == 0", {}, scope)).toBe(true);
  });

  test("fold_rule records is a list of typed records", () => {
    const vars = toCelVars({ records: [rec(), rec({ id: "r2", act: "DO", clock: 9 })], task: { status: "review", age_secs: 30, cost_usd: 2 } });
    expect(evaluateBool("fold_rule", 'records.exists(r, r.act == "DO" && r.clock == 9) && task.age_secs > 10', vars, scope)).toBe(true);
    expect(evaluateBool("fold_rule", "task.cost_usd * 1.5 == 3.0", vars, scope)).toBe(true); // cost stays double
  });

  test("system map ints are BigInt, money stays double", () => {
    const vars = toCelVars({ system: { uptime_secs: 120, records_total: 5, today: { cost_usd: 4, dispatches: 2 }, active_dispatches: [{ duration_secs: 10, timeout_secs: 6 }] } });
    expect(evaluateBool("health_check", "system.uptime_secs > 60 && system.records_total * 2 == 10", vars, scope)).toBe(true);
    expect(evaluateBool("health_check", "system.active_dispatches.all(d, d.duration_secs < d.timeout_secs * 2)", vars, scope)).toBe(true);
    expect(evaluateBool("health_check", "system.today.cost_usd * 2.5 == 10.0", vars, scope)).toBe(true);
  });

  test("judged_by and parents are usable", () => {
    expect(evaluateBool("permission", 'record.judged_by == null && "p1" in record.parents', recordVars(), scope)).toBe(true);
    expect(evaluateBool("permission", 'record.judged_by == "j1"', recordVars(rec({ judged_by: "j1" })), scope)).toBe(true);
  });
});

describe("toCel conversion", () => {
  test("integral numbers become BigInt, fractions stay double, __proto__ stays a plain key", () => {
    const body = JSON.parse('{"a":1,"b":1.5,"c":[2,{"d":3}],"__proto__":{"x":1},"cost_usd":3}');
    const v = toCelValue(body) as Record<string, unknown>;
    expect(v.a).toBe(1n);
    expect(v.b).toBe(1.5);
    expect(v.c).toEqual([2n, Object.assign(Object.create(null), { d: 3n })]);
    expect(v.cost_usd).toBe(3);
    expect(Object.getPrototypeOf(v)).toBeNull();
    expect((v.__proto__ as Record<string, unknown>).x).toBe(1n);
    expect(toCelValue(2 ** 64)).toBe(2 ** 64); // out of int64 range: stays double
  });

  test("toCelRecord fills defaults and converts clock", () => {
    const r = toCelRecord({ act: "DO", clock: 3 });
    expect(r).toMatchObject({ id: "", act: "DO", clock: 3n, data_type: "SCALAR", parents: [], judged_by: null });
  });

  test("celToJson turns BigInt back into numbers", () => {
    expect(celToJson({ a: 1n, b: [2n, 1.5], c: 2n ** 70n })).toEqual({ a: 1, b: [2, 1.5], c: (2n ** 70n).toString() });
  });
});

describe("expression cache", () => {
  test("counts hits, misses, compile errors; checkExpression warms it", () => {
    const vars = recordVars();
    expect(checkExpression("permission", "record.clock > 5").ok).toBe(true); // miss + compile
    evaluateBool("permission", "record.clock > 5", vars, scope); // hit
    evaluateBool("permission", "record.clock > 5", vars, scope); // hit
    evaluateBool("routing", "record.clock > 5", vars, scope); // other context: miss
    checkExpression("permission", "1 +"); // miss, compile error
    const s = expressionCacheStats();
    expect(s).toMatchObject({ hits: 2, misses: 3, compile_errors: 1, size: 2, capacity: 1024 });
    expect(s.hit_rate_pct).toBe(40);
    expect(s.avg_compile_micros).toBeGreaterThan(0);
  });

  test("is bounded at 1024 entries", () => {
    for (let i = 0; i < 1100; i++) checkExpression("permission", `record.clock > ${i}`);
    const s = expressionCacheStats();
    expect(s.size).toBe(1024);
    expect(s.misses).toBe(1100);
    // the oldest entry was evicted, the newest is still there
    checkExpression("permission", "record.clock > 0");
    checkExpression("permission", "record.clock > 1099");
    expect(expressionCacheStats()).toMatchObject({ misses: 1101, hits: 1 });
  });
});

import { describe, expect, test } from "bun:test";
import { CelCostError, CelEvaluationError, checkExpression, evaluateBool, evaluateValue, scopeWith, toCelVars, type CelScope } from "./cel";
import { estimateCost, MAX_EVALUATION_STEPS, UNKNOWN_LIST_SIZE } from "./cel-cost";

const scope: CelScope = scopeWith("did:sync:user:a", 0);
const L = "[1,2,3,4,5,6,7,8,9,10]";
const nest = (depth: number, list = L, inner = "true") => "abcdefghij".slice(0, depth).split("").reduce((acc, v) => `${list}.all(${v}, ${acc})`, inner);
const astOf = (expr: string) => {
  const { Environment } = require("@marcbachmann/cel-js");
  const fn = new Environment().registerVariable("xs", "list").parse(expr);
  expect(fn.check().valid).toBe(true);
  return fn.ast;
};

describe("estimateCost", () => {
  test("nested comprehensions multiply; literal lists count their length, others UNKNOWN_LIST_SIZE", () => {
    expect(estimateCost(astOf("1 + 2 == 3"))).toBe(0);
    expect(estimateCost(astOf(nest(1)))).toBe(10);
    expect(estimateCost(astOf(nest(2)))).toBe(10 * (1 + 10));
    expect(estimateCost(astOf(nest(8)))).toBeGreaterThan(10 ** 8);
    expect(estimateCost(astOf("xs.exists(x, x == 1)"))).toBe(UNKNOWN_LIST_SIZE);
    expect(estimateCost(astOf(`xs.map(x, ${L}.filter(y, y > 2))`))).toBe(UNKNOWN_LIST_SIZE * (1 + 10));
  });

  test("a rule over the limit does not check; the same expression still evaluates ad hoc until the budget runs out", () => {
    const r = checkExpression("permission", nest(6));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/too costly: .* up to \d+ elements .*limit 100000/);
    expect(checkExpression("permission", nest(4))).toEqual({ ok: true });
    expect(() => evaluateValue("permission", nest(8), {}, scope)).toThrow(CelCostError);
  });
});

describe("run-time budget", () => {
  test("is charged while evaluating and fails with code too_costly", () => {
    const l = Array.from({ length: 400 }, (_, i) => i);
    const vars = toCelVars({ record: { body: { l } } });
    const expr = "record.body.l.all(a, record.body.l.all(b, a + b >= 0))";
    expect(checkExpression("routing", expr)).toEqual({ ok: true }); // 100 * 101 by the estimate
    let err: unknown;
    try {
      evaluateBool("routing", expr, vars, scope);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CelCostError);
    expect((err as CelEvaluationError).code).toBe("too_costly");
    expect((err as Error).message).toContain(`more than ${MAX_EVALUATION_STEPS} elements`);
  });

  test("an error swallowed by || or exists() still fails the evaluation", () => {
    const l = Array.from({ length: 1000 }, (_, i) => i);
    const vars = toCelVars({ record: { body: { l } } });
    expect(() => evaluateBool("routing", "record.body.l.all(a, record.body.l.all(b, true)) || true", vars, scope)).toThrow(CelCostError);
    expect(() => evaluateBool("routing", "[1, 2].exists(z, record.body.l.all(a, record.body.l.all(b, true)) || z == 1)", vars, scope)).toThrow(CelCostError);
  });

  test("a walk just under the budget passes, and every evaluation gets a fresh budget", () => {
    const l = Array.from({ length: 300 }, (_, i) => i);
    const vars = toCelVars({ record: { body: { l } } });
    // 300 inner lists of 300 = 90k elements: under the budget, many times in a row.
    for (let i = 0; i < 5; i++) expect(evaluateBool("routing", "record.body.l.all(a, record.body.l.exists(b, b == a))", vars, scope)).toBe(true);
  });

  test("bindings nested deeper than a stored body can be are refused before evaluation", () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = [deep];
    expect(() => toCelVars({ record: { body: { deep } as any } })).toThrow(/nests deeper than 64 levels/);
    expect(() => toCelVars({ system: { deep } as any })).toThrow(CelEvaluationError);
  });
});

describe("ad-hoc evaluation in a worker thread", () => {
  const snapshot = { actor: "did:sync:user:a", nowSecs: 1_700_000_000, facts: { trust: { rows: [["did:sync:agent:b", "code", 0.75, 12]] as Array<[string, string, number, number]>, prior: 0.18 } } };

  test("answers the value and its CEL type, with the caller's scope and trust table", async () => {
    const { evaluateAdHoc } = await import("./expr-eval");
    expect(await evaluateAdHoc("permission", 'current_actor() + "|" + string(trust_count("did:sync:agent:b", "code"))', {}, snapshot)).toEqual({ type: "string", value: "did:sync:user:a|12" });
    expect(await evaluateAdHoc("routing", 'trust("did:sync:agent:b", "code") > trust("nobody", "code")', {}, snapshot)).toEqual({ type: "bool", value: true });
    expect(await evaluateAdHoc("routing", "record.body.n * 2", { record: { body: { n: 21 } } }, snapshot)).toEqual({ type: "int", value: 42 });
  });

  test("the budget applies there too, and errors keep their kind", async () => {
    const { evaluateAdHoc } = await import("./expr-eval");
    await expect(evaluateAdHoc("permission", nest(8), {}, snapshot)).rejects.toBeInstanceOf(CelCostError);
    const err = await evaluateAdHoc("routing", "1 / 0 == 1", {}, snapshot).catch((e) => e);
    expect(err).toBeInstanceOf(CelEvaluationError);
    expect(err).not.toBeInstanceOf(CelCostError);
  });
});

// One CEL expression cannot stall the daemon (issue 9.5): evaluation runs under a cost budget in
// every context (ad-hoc ones in a worker thread, with a time limit), a rule whose fan-out could
// exceed it is refused when written, deep input is a 400, and a permission rule that runs out of
// budget at request time denies and says so in the log.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { Instance, waitFor } from "./harness";

const OP = "did:sync:user:tester";
const MALLORY = "did:sync:user:mallory";
const L = "[1,2,3,4,5,6,7,8,9,10]";
// 8 nested comprehensions over 10 elements: 10^8 steps unbounded (28 s before the budget).
const NESTED8 = "abcdefgh".split("").reduce((inner, v) => `${L}.all(${v}, ${inner})`, "true");

const inst = new Instance();

async function mint(actor: string, scopes: string[]): Promise<string> {
  const r = await inst.socket("POST", "/v1/tokens", { actor, scopes, name: actor });
  expect(r.status).toBe(201);
  return r.json.token;
}

beforeAll(async () => {
  expect((await inst.spl(["init"])).code).toBe(0);
  await inst.start();
});
afterAll(async () => {
  await inst.stop();
});

describe("ad-hoc evaluation", () => {
  test("8 nested comprehensions answer 400 EXPRESSION_TOO_COSTLY while /health keeps answering", async () => {
    expect(NESTED8.length).toBeGreaterThan(250);
    const reader = await mint(OP, ["records:read"]);
    const evalDone = inst.http("POST", "/v1/engine/expr/eval", { expression: NESTED8, context: "permission" }, { authorization: `Bearer ${reader}` });
    const healthDone = Promise.all(Array.from({ length: 5 }, () => inst.http("GET", "/health")));
    const [evalReply, health] = await Promise.all([evalDone, healthDone]);
    expect(evalReply.status).toBe(400);
    expect(evalReply.json).toMatchObject({ object: "error", code: "EXPRESSION_TOO_COSTLY" });
    expect(evalReply.json.message).toMatch(/too costly/);
    expect(health.map((h) => h.status)).toEqual([200, 200, 200, 200, 200]);
    // The same expression fails the CLI with the code, as a one-line error.
    const cli = await inst.spl(["expr", "eval", NESTED8, "--context", "routing"]);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toMatch(/^error: .*too costly.*EXPRESSION_TOO_COSTLY/);
    expect(cli.stderr.trim().split("\n")).toHaveLength(1);
  });

  test("an evaluation runs off the event loop: /health answers while it runs, and a runaway regex is stopped", async () => {
    // 10 000 comprehension steps (a tenth of the budget), each copying a 900 KB string: seconds.
    // (A backtracking regex no longer does it: matches() is RE2, linear time.)
    const hundred = `[${Array.from({ length: 100 }, (_, i) => i).join(",")}]`;
    const expression = `${hundred}.all(i, ${hundred}.all(j, size(record.body.s + string(j)) > 0))`;
    let settled = false;
    const evalDone = inst.socket("POST", "/v1/engine/expr/eval", { expression, context: "routing", record: { body: { s: "ab".repeat(450_000) } } }).finally(() => (settled = true));
    await Bun.sleep(0);
    expect((await inst.http("GET", "/health")).status).toBe(200);
    expect(settled).toBe(false); // health answered before the evaluation did (it runs ~2 s)
    for (let i = 0; i < 2; i++) expect((await inst.http("GET", "/health")).status).toBe(200);
    const r = await evalDone;
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ object: "error", code: "EXPRESSION_TOO_COSTLY" });
    expect(r.json.message).toMatch(/did not finish within 2 s/);
    expect((await inst.socket("POST", "/v1/engine/expr/eval", { expression: '"abc".matches("^a")', context: "routing" })).json.value).toBe(true);
  });

  test("a list bound by the caller is charged while evaluating, even where || would swallow the error", async () => {
    const l = Array.from({ length: 1000 }, (_, i) => i);
    const expression = "record.body.l.all(a, record.body.l.all(b, a + b >= 0)) || true";
    const big = await inst.socket("POST", "/v1/engine/expr/eval", { expression, context: "routing", record: { body: { l } } });
    expect(big.status).toBe(400);
    expect(big.json.code).toBe("EXPRESSION_TOO_COSTLY");
    const small = await inst.socket("POST", "/v1/engine/expr/eval", { expression, context: "routing", record: { body: { l: l.slice(0, 10) } } });
    expect(small.status).toBe(200);
    expect(small.json.value).toBe(true);
  });

  test("deep nesting in the expression or the bindings is a 400, never a 500", async () => {
    const deepExpr = await inst.socket("POST", "/v1/engine/expr/eval", { expression: "(".repeat(5000) + "true" + ")".repeat(5000), context: "routing" });
    expect(deepExpr.status).toBe(400);
    expect(deepExpr.json.message).toMatch(/maxDepth/);
    const deepJson = `{"expression":"true","context":"routing","record":{"body":{"x":${"[".repeat(100_000)}${"]".repeat(100_000)}}}}`;
    const res = await fetch("http://localhost/v1/engine/expr/eval", {
      method: "POST",
      unix: inst.path("run", "spl.sock"),
      headers: { "content-type": "application/json" },
      body: deepJson,
    } as RequestInit);
    expect(res.status).toBe(400);
    const body = (await res.json()) as any;
    expect(body.object).toBe("error");
    expect(body.message).toMatch(/nests deeper than 64 levels/);
    const system = await inst.socket("POST", "/v1/engine/expr/eval", { expression: "true", context: "health_check", system: JSON.parse(`${"[".repeat(200)}${"]".repeat(200)}`) });
    expect(system.status).toBe(400);
    expect((await inst.http("GET", "/health")).status).toBe(200);
  });
});

describe("rules", () => {
  test("a rule whose fan-out could exceed the budget is refused when written, by the CLI and by the fold", async () => {
    const costly = `${L}.all(a, ${L}.all(b, ${L}.all(c, ${L}.all(d, ${L}.all(e, a > 0)))))`;
    const cli = await inst.spl(["config", "add-permission-rule", "--name", "fanout", "--action", "allow", "--expression", costly]);
    expect(cli.code).toBe(2);
    expect(cli.stderr).toMatch(/^error: permission_rule "fanout" not written: invalid permission expression: expression is too costly/);
    const check = await inst.spl(["expr", "check", costly, "--context", "permission"]);
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/too costly/);
    // Written raw, past the CLI's check: the fold keeps it out and lists it as REFUSED.
    const raw = await inst.socket("POST", "/v1/records", {
      thread: "th_engine_config",
      actor: OP,
      act: "LEARN",
      body: { topic: "routing_rule", name: "fanout-raw", target: "did:sync:agent:x", expression: costly },
    });
    expect(raw.status).toBe(201);
    const rows = (await inst.socket("GET", "/v1/config/rules?topic=routing_rule")).json.data;
    expect(rows.find((r: any) => r.name === "fanout-raw")).toMatchObject({ status: "REFUSED" });
    expect(rows.find((r: any) => r.name === "fanout-raw").error).toMatch(/too costly/);
  });

  test("a permission rule that runs out of budget at request time denies, and the log says why", async () => {
    const ok = async (args: string[]) => {
      const r = await inst.spl(args);
      if (r.code !== 0) throw new Error(`${args.join(" ")}: ${r.stderr}`);
    };
    await ok(["config", "add-permission-rule", "--name", "admin-self", "--action", "allow", "--priority", "100", "--expression", `current_actor() == "${OP}"`]);
    await ok(["config", "add-permission-rule", "--name", "pairs", "--action", "allow", "--priority", "10", "--expression", "record.body.l.all(a, record.body.l.all(b, a != b || a == b))"]);
    await ok(["config", "permissions-enable"]);
    const writer = await mint(MALLORY, ["records:read", "records:write"]);
    const rec = (l: number[]) => ({ thread: "th_pairs", actor: MALLORY, act: "DO", body: { l } });
    const auth = { authorization: `Bearer ${writer}` };
    const small = await inst.http("POST", "/v1/records", rec([1, 2, 3]), auth);
    expect(small.status).toBe(201);
    const big = await inst.http("POST", "/v1/records", rec(Array.from({ length: 1000 }, (_, i) => i)), auth);
    expect(big.status).toBe(403);
    expect(big.json.code).toBe("PERMISSION_DENIED");
    const log = () => readFileSync(inst.path("logs", "spl.log"), "utf8");
    await waitFor("the log line 'permission rule could not be evaluated; failing closed'", () => /permission rule could not be evaluated; failing closed/.test(log()));
    const line = log().split("\n").find((l) => l.includes("failing closed"))!;
    expect(JSON.parse(line)).toMatchObject({ rule: "pairs", actor: MALLORY });
    expect(line).toMatch(/too costly/);
    await ok(["config", "permissions-disable"]);
  });
});

// Engine derived state on the compiled binary (issue 4 items 1-5): config LEARNs and rule folds,
// REFUSED rules, hot reload, trust from verdicts, rebuild after restart and after kill -9,
// spl expr / spl health, the expression cache.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Instance, isAlive, processGone, waitFor } from "./harness";

const OP = "did:sync:user:tester"; // harness USER=tester → [identity] actor
const ALICE = "did:sync:user:alice";
const BOB = "did:sync:agent:bob";
const CAROL = "did:sync:agent:carol";

const inst = new Instance();
let pid = 0;

async function ok(args: string[], env?: Record<string, string>) {
  const r = await inst.spl(args, { env });
  if (r.code !== 0) throw new Error(`spl ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function post(rec: Record<string, unknown>) {
  const r = await inst.socket("POST", "/v1/records", rec);
  if (r.status !== 201 && r.status !== 200) throw new Error(`POST answered ${r.status}: ${JSON.stringify(r.json)}`);
  return r.json;
}

/** Work by `subject` that counts: its KNOW fulfilling an INTEND (README "Engine": a verdict judges real work). */
async function workBy(subject: string): Promise<string> {
  const asked = await post({ thread: `th_work_${crypto.randomUUID()}`, actor: OP, act: "INTEND", body: { goal: "work", dispatch_handled: true } });
  return (await post({ thread: asked.thread, actor: subject, act: "KNOW", body: { fulfills: asked.id } })).id;
}

const verdict = async (actor: string, subject: string, v: "accept" | "reject", domain?: string, extra: Record<string, unknown> = {}) =>
  post({ thread: "th_reviews", actor, act: "KNOW", judged_by: await workBy(subject), body: { verdict: v, subject, ...(domain ? { domain } : {}), ...extra } });

beforeAll(async () => {
  await ok(["init"]);
  pid = await inst.start();
});
afterAll(async () => {
  await inst.stop();
});

describe("config rules", () => {
  test("add-* write LEARNs on th_engine_config as the operator, folded into list-rules by topic and priority", async () => {
    await ok(["config", "add-rule", "--name", "code-to-bob", "--domain", "code", "--act", "INTEND", "--target", BOB, "--priority", "50"]);
    await ok(["config", "add-rule", "--name", "ops", "--expression", 'record.act == "DO"', "--target", CAROL, "--priority", "70"]);
    await ok(["config", "add-permission-rule", "--name", "readers", "--action", "allow", "--priority", "100", "--expression", 'resource == "record_read"']);
    await ok(["config", "add-health", "--name", "has-records", "--severity", "critical", "--description", "store not empty", "--expression", "system.records_total > 0"]);
    await ok(["config", "add-aitl-rule", "--name", "confident", "--action", "auto_apply", "--priority", "10", "--expression", "proposal_confidence > 0.9"]);
    await ok(["config", "add-fold-rule", "--id", "default", "--status", "active", "--priority", "0", "--expression", "true"]);

    const rows = JSON.parse(await ok(["config", "list-rules", "-o", "json"]));
    expect(rows.map((r: any) => `${r.topic}/${r.name}/${r.status}`)).toEqual([
      "permission_rule/readers/active",
      "routing_rule/ops/active",
      "routing_rule/code-to-bob/active",
      "fold_rule/default/active",
      "health_check/has-records/active",
      "aitl_rule/confident/active",
    ]);
    expect(rows[2].expression).toBe('record.act == "INTEND" && has(record.body.domain) && record.body.domain == "code"');
    expect(rows[2].effect).toBe(`-> ${BOB}`);

    const routing = JSON.parse(await ok(["config", "list-rules", "--topic", "routing_rule", "-o", "json"]));
    expect(routing.map((r: any) => r.name)).toEqual(["ops", "code-to-bob"]);

    const records = JSON.parse(await ok(["thread", "records", "th_engine_config", "-o", "json"]));
    expect(records.length).toBe(6);
    for (const r of records) {
      expect(r.act).toBe("LEARN");
      expect(r.actor).toBe(OP);
    }

    const human = await ok(["config", "list-rules"]);
    expect(human.split("\n")[0]).toMatch(/^TOPIC\s+NAME\s+STATUS\s+PRIORITY\s+EFFECT\s+EXPRESSION$/);
    expect(await ok(["config", "show"])).toContain("Rules:        permission 1, routing 2, fold 1, health 1, aitl 1");

    const http = await inst.http("GET", "/v1/config/health-checks");
    expect(http.status).toBe(200);
    expect(http.json.data.map((r: any) => r.name)).toEqual(["has-records"]);
    const perm = await inst.http("GET", "/v1/config/permission-rules");
    expect(perm.json).toMatchObject({ permissions_enabled: false, data: [{ name: "readers", effect: "allow", priority: 100 }] });
  });

  test("a bad expression is refused before anything is written, with the column", async () => {
    const before = (await inst.socket("GET", "/v1/threads/th_engine_config/state")).json.record_count;
    const cases: Array<[string[], RegExp]> = [
      [["config", "add-permission-rule", "--name", "x", "--action", "allow", "--expression", "resource == "], /column 13/],
      [["config", "add-permission-rule", "--name", "x", "--action", "allow", "--expression", "record.nope == 1"], /no such key: nope \(column \d+\)/i],
      [["config", "add-permission-rule", "--name", "x", "--action", "allow", "--expression", "resource"], /type string, expected bool/],
      [["config", "add-permission-rule", "--name", "x", "--action", "maybe", "--expression", "true"], /action must be allow or deny/],
      [["config", "add-permission-rule", "--name", "x", "--action", "allow", "--priority", "high", "--expression", "true"], /--priority must be an integer/],
      [["config", "add-health", "--name", "x", "--severity", "warn", "--expression", "record.act == \"DO\""], /unknown variable|record/i],
      [["config", "add-rule", "--name", "x", "--target", BOB], /give --expression, or --domain/],
      [["config", "add-permission-rule", "--action", "allow", "--expression", "true"], /--name is required/],
    ];
    for (const [args, message] of cases) {
      const r = await inst.spl(args);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/^error: /);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split("\n").length).toBe(1);
      expect(r.stderr).not.toContain("    at ");
    }
    expect((await inst.socket("GET", "/v1/threads/th_engine_config/state")).json.record_count).toBe(before);

    const check = await inst.spl(["expr", "check", "record.clock + \"x\"", "--context", "permission"]);
    expect(check.code).toBe(1);
    expect(check.stderr).toMatch(/^error: invalid permission expression: .*column \d+/);
    const good = await inst.spl(["expr", "check", 'current_actor().startsWith("did:sync:user:") && resource == "thread_read"', "--context", "permission"]);
    expect(good.code).toBe(0);
    const unknownCtx = await inst.spl(["expr", "check", "true", "--context", "nope"]);
    expect(unknownCtx.code).toBe(2);

    const http = await inst.http("POST", "/v1/config/rules", { topic: "permission_rule", name: "x", action: "allow", priority: 1, expression: "resource ==" });
    expect(http.status).toBe(400);
    expect(http.json).toMatchObject({ object: "error", code: "INVALID_RULE" });
    expect(http.json.message).toContain("column");
  });

  test("a refused raw LEARN stays visible as REFUSED while the previous good version stays in force", async () => {
    // Raw records bypass the CLI's check; the fold refuses them at load.
    await ok(["learn", "--thread", "th_engine_config", "--body", JSON.stringify({ topic: "permission_rule", name: "readers", action: "allow", priority: 5, expression: "resource ==" })]);
    const rows = JSON.parse(await ok(["config", "list-rules", "--topic", "permission_rule", "-o", "json"]));
    const active = rows.find((r: any) => r.name === "readers" && r.status === "active");
    const refused = rows.find((r: any) => r.name === "readers" && r.status === "REFUSED");
    expect(active).toMatchObject({ priority: 100, expression: 'resource == "record_read"' });
    expect(refused.error).toContain("invalid permission expression");
    expect(refused.column).toBe(12);
    expect(await ok(["config", "list-rules"])).toMatch(/readers\s+REFUSED\s+-\s+-\s+error: invalid permission expression/);
    // A good version replaces both.
    await ok(["config", "add-permission-rule", "--name", "readers", "--action", "allow", "--priority", "90", "--expression", 'resource == "record_read" || resource == "thread_read"']);
    const after = JSON.parse(await ok(["config", "list-rules", "--topic", "permission_rule", "-o", "json"]));
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ name: "readers", status: "active", priority: 90 });
  });

  test("unknown topics and topic-less LEARNs are skipped with a WARN and counted", async () => {
    await ok(["learn", "--thread", "th_engine_config", "--body", '{"topic":"no_such_topic","x":1}']);
    await ok(["learn", "orphan", "--thread", "th_engine_config"]);
    const show = JSON.parse(await ok(["config", "show", "-o", "json"]));
    expect(show.skipped).toBe(2);
    expect(show.skipped_learns.recent.map((s: any) => s.topic)).toEqual(["no_such_topic", null]);
    const log = await waitFor("the log line about the LEARN with no body.topic", () => require("node:fs").readFileSync(inst.path("logs", "spl.log"), "utf8") as string, { until: (text) => text.includes("no body.topic") });
    expect(log).toMatch(/"level":"WARN".*skipped LEARN .*unknown topic \\"no_such_topic\\"/);
  });

  test("spl doctor's permission enforcement row counts REFUSED rules and skipped LEARNs", async () => {
    const r = await inst.spl(["doctor", "-o", "json"]);
    const row = JSON.parse(r.stdout).checks.find((c: any) => c.name === "permission enforcement");
    expect(row.status).toBe("warn");
    expect(row.detail).toMatch(/^off \(default\) — 1 permission rule\(s\)/);
    expect(row.detail).toContain("2 orphan LEARN(s) on th_engine_config");
  });

  test("remove-rule writes enabled:false; the rule is gone on the next request, and comes back when declared again", async () => {
    await ok(["config", "remove-rule", "--name", "ops"]);
    let names = JSON.parse(await ok(["config", "list-rules", "-o", "json"])).map((r: any) => r.name);
    expect(names).not.toContain("ops");
    const missing = await inst.spl(["config", "remove-rule", "--name", "never-was"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('no rule named "never-was"');
    await ok(["config", "add-rule", "--name", "ops", "--expression", 'record.act == "DO"', "--target", CAROL, "--priority", "70"]);
    names = JSON.parse(await ok(["config", "list-rules", "-o", "json"])).map((r: any) => r.name);
    expect(names).toContain("ops");
  });
});

describe("trust", () => {
  test("verdicts from other actors fold into ACTOR DOMAIN SUCCESS TOTAL TRUST; self-verdicts are ignored", async () => {
    await verdict(ALICE, BOB, "accept", "code");
    await verdict(ALICE, BOB, "accept", "code");
    await verdict(CAROL, BOB, "reject", "code");
    await verdict(BOB, BOB, "accept", "code"); // self-verdict: ignored
    // no subject: the author of the judged work, default domain "general"
    await post({ thread: "th_reviews", actor: ALICE, act: "KNOW", judged_by: await workBy(BOB), body: { verdict: "accept" } });
    await verdict(ALICE, CAROL, "reject", "ops");
    await post({ thread: "th_reviews", actor: ALICE, act: "KNOW", judged_by: await workBy(BOB), body: { verdict: "maybe", subject: BOB } }); // not a verdict
    // Not evidence: no work named, a subject that is not the work's author, work that answers no INTEND.
    await post({ thread: "th_reviews", actor: ALICE, act: "KNOW", body: { verdict: "accept", subject: BOB, domain: "code" } });
    await post({ thread: "th_reviews", actor: ALICE, act: "KNOW", judged_by: await workBy(CAROL), body: { verdict: "accept", subject: BOB, domain: "code" } });
    const plain = await post({ thread: "th_work", actor: BOB, act: "DO", body: { text: "patch" } });
    await post({ thread: "th_reviews", actor: ALICE, act: "KNOW", judged_by: plain.id, body: { verdict: "accept", domain: "code" } });

    const rows = JSON.parse(await ok(["trust", "-o", "json"]));
    const by = (a: string, d: string) => rows.find((r: any) => r.actor === a && r.domain === d);
    expect(rows).toHaveLength(3);
    expect(by(BOB, "code")).toMatchObject({ success: 2, total: 3 });
    expect(by(BOB, "general")).toMatchObject({ success: 1, total: 1 });
    expect(by(CAROL, "ops")).toMatchObject({ success: 0, total: 1 });
    // Fresh evidence, prior 3/3, z = 1.96: Wilson lower bound of 5/9 and 4/7 (computed independently).
    expect(by(BOB, "code").trust).toBeCloseTo(0.266647, 3);
    expect(by(BOB, "general").trust).toBeCloseTo(0.250454, 3);

    const human = await ok(["trust"]);
    expect(human.split("\n")[0]).toMatch(/^ACTOR\s+DOMAIN\s+SUCCESS\s+TOTAL\s+TRUST$/);
    expect(human).toMatch(new RegExp(`${BOB}\\s+code\\s+2\\s+3\\s+0\\.267`));
    expect((await inst.http("GET", "/v1/trust")).json.data).toHaveLength(3);

    // trust() and trust_count() in CEL see the same table.
    const ev = JSON.parse(await ok(["expr", "eval", `trust_count("${BOB}", "code")`, "--context", "routing", "-o", "json"]));
    expect(ev).toMatchObject({ type: "int", value: 3 });
    const score = JSON.parse(await ok(["expr", "eval", `trust("${BOB}", "code") > 0.26 && trust("${BOB}", "code") < 0.27`, "--context", "permission", "-o", "json"]));
    expect(score.value).toBe(true);
  });

  test("trust_params from config re-score without a restart", async () => {
    await ok(["learn", "--thread", "th_engine_config", "--body", '{"topic":"trust_params","prior_success":0,"prior_failure":0,"z":1.96,"half_life_days":90}']);
    const rows = JSON.parse(await ok(["trust", "-o", "json"]));
    // plain Wilson: 1 of 1 → 0.206543
    expect(rows.find((r: any) => r.actor === BOB && r.domain === "general").trust).toBeCloseTo(0.206543, 3);
    await ok(["learn", "--thread", "th_engine_config", "--body", '{"topic":"trust_params","enabled":false}']);
    const back = JSON.parse(await ok(["trust", "-o", "json"]));
    expect(back.find((r: any) => r.actor === BOB && r.domain === "general").trust).toBeCloseTo(0.250454, 3);
  });
});

describe("expr and health", () => {
  test("expr eval runs against live state as the caller", async () => {
    expect(JSON.parse(await ok(["expr", "eval", "current_actor()", "--context", "permission", "-o", "json"]))).toMatchObject({ type: "string", value: OP });
    const sys = JSON.parse(await ok(["expr", "eval", "system.records_total", "--context", "health_check", "-o", "json"]));
    const status = (await inst.socket("GET", "/v1/status")).json;
    expect(sys.value).toBe(status.records);
    const rec = JSON.parse(await ok(["expr", "eval", 'record.act == "DO" && record.clock == 3 && resource == "record_write"', "--context", "permission", "--record", '{"act":"DO","clock":3,"body":{}}', "--resource", "record_write", "-o", "json"]));
    expect(rec.value).toBe(true);
    expect((await inst.spl(["expr", "eval", "1 +", "--context", "routing"])).stderr).toMatch(/^error: .*EXPRESSION_ERROR/);
    const badJson = await inst.spl(["expr", "eval", "true", "--context", "routing", "--record", "{nope"]);
    expect(badJson.code).toBe(2);
  });

  test("health check exits 0 ok, 1 when a warn check fails, 2 when a critical one fails", async () => {
    let r = await inst.spl(["health", "check"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("✓ has-records (critical)");
    await ok(["config", "add-health", "--name", "small-store", "--severity", "warn", "--expression", "system.records_total < 3"]);
    r = await inst.spl(["health", "check"]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("health: warn");
    await ok(["config", "add-health", "--name", "impossible", "--severity", "critical", "--expression", "system.threads_total < 0"]);
    r = await inst.spl(["health", "check", "-o", "json"]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).status).toBe("critical");
    await ok(["config", "remove-rule", "--name", "impossible"]);
    await ok(["config", "remove-rule", "--name", "small-store"]);
    expect((await inst.spl(["health", "check"])).code).toBe(0);
  });

  test("the expression cache reports hits and misses", async () => {
    const s = await inst.http("GET", "/v1/engine/expression_cache/stats");
    expect(s.status).toBe(200);
    expect(s.json.capacity).toBe(1024);
    expect(s.json.size).toBeGreaterThan(0);
    expect(s.json.misses).toBeGreaterThan(0);
    for (const k of ["hits", "compile_errors", "hit_rate_pct", "avg_compile_micros"]) expect(typeof s.json[k]).toBe("number");
  });
});

describe("rebuild_from_store", () => {
  const snapshot = async () => ({
    trust: await ok(["trust"]),
    trustJson: await ok(["trust", "-o", "json"]),
    rules: await ok(["config", "list-rules"]),
    rulesJson: await ok(["config", "list-rules", "-o", "json"]),
    show: JSON.parse(await ok(["config", "show", "-o", "json"])),
  });
  const comparable = (s: Awaited<ReturnType<typeof snapshot>>) => ({ ...s, show: { ...s.show, rebuild: undefined } });

  test("a restart and a kill -9 both rebuild identical trust and rules", async () => {
    // A REFUSED row must survive too.
    await ok(["learn", "--thread", "th_engine_config", "--body", JSON.stringify({ topic: "routing_rule", name: "broken", target: BOB, expression: "record.act ==" })]);
    const before = await snapshot();
    expect(before.rules).toContain("REFUSED");
    expect(before.trust).toContain(BOB);

    expect((await inst.stop()).code).toBe(0);
    expect(isAlive(pid)).toBe(false);
    pid = await inst.start();
    const afterRestart = await snapshot();
    expect(comparable(afterRestart)).toEqual(comparable(before));
    expect(afterRestart.show.rebuild.config_learns).toBeGreaterThan(10);
    expect(afterRestart.show.rebuild.verdicts).toBe(5); // counted evidence: the self-verdict is not

    process.kill(pid, "SIGKILL");
    await processGone(pid);
    pid = await inst.start(); // stale pid file and socket are cleared
    const afterKill = await snapshot();
    expect(comparable(afterKill)).toEqual(comparable(before));
    expect(afterKill.trust).toBe(before.trust);
    expect(afterKill.rules).toBe(before.rules);
  });
});

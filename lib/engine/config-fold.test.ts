import { describe, expect, test } from "bun:test";
import type { JsonObject, StoredRecord } from "../records/types";
import { EngineConfig, ENGINE_CONFIG_THREAD } from "./config-fold";
import { DEFAULT_TRUST_PARAMS } from "./trust";
import { cpuTimeMs } from "../../test/harness";

let seq = 100;
function learn(body: JsonObject, over: Partial<StoredRecord> = {}): StoredRecord {
  seq++;
  return {
    id: `l${seq}`,
    sequence: seq,
    created_at: 1_700_000_000,
    parents: [],
    thread: ENGINE_CONFIG_THREAD,
    actor: "did:sync:system:engine",
    act: "LEARN",
    body,
    clock: seq,
    data_type: "SCALAR",
    judged_by: null,
    ...over,
  };
}

const perm = (name: string, priority: number, expression = "true", action = "allow") => ({ topic: "permission_rule", name, action, priority, expression });

describe("EngineConfig fold", () => {
  test("folds every rule topic and sorts by descending priority, ties by name", () => {
    const c = new EngineConfig();
    c.apply(learn(perm("low", 1)));
    c.apply(learn(perm("b-high", 100)));
    c.apply(learn(perm("a-high", 100, "true", "deny")));
    c.apply(learn({ topic: "routing_rule", name: "code", expression: 'record.body.domain == "code"', target: "did:sync:agent:coder", priority: 5 }));
    c.apply(learn({ topic: "fold_rule", id: "default", expression: "true", status: "active", priority: 0 }));
    c.apply(learn({ topic: "health_check", name: "cost", expression: "system.today.cost_usd < 10.0", severity: "warn", description: "daily spend" }));
    c.apply(learn({ topic: "aitl_rule", name: "catch-all", expression: "true", action: "present", priority: 10 }));
    expect(c.permissionRules.map((r) => [r.name, r.action, r.priority])).toEqual([
      ["a-high", "deny", 100],
      ["b-high", "allow", 100],
      ["low", "allow", 1],
    ]);
    expect(c.routingRules[0]).toMatchObject({ name: "code", target: "did:sync:agent:coder", priority: 5 });
    expect(c.foldRules[0]).toMatchObject({ name: "default", status: "active" });
    expect(c.healthChecks[0]).toMatchObject({ name: "cost", severity: "warn", description: "daily spend", priority: 0 });
    expect(c.aitlRules[0]).toMatchObject({ name: "catch-all", action: "present" });
    expect(c.permissionRules[0]!.record_id).toMatch(/^l\d+$/);
  });

  test("latest per (topic, name) in store order wins; sorted view refreshes", () => {
    const c = new EngineConfig();
    c.apply(learn(perm("admin", 10, 'resource == "a"')));
    const before = c.permissionRules;
    c.apply(learn(perm("admin", 20, 'resource == "b"')));
    expect(c.permissionRules).toHaveLength(1);
    expect(c.permissionRules[0]).toMatchObject({ priority: 20, expression: 'resource == "b"' });
    expect(c.permissionRules).not.toBe(before);
    // same name in another topic is another rule
    c.apply(learn({ topic: "aitl_rule", name: "admin", expression: "true", action: "auto_apply" }));
    expect(c.permissionRules).toHaveLength(1);
    expect(c.aitlRules).toHaveLength(1);
  });

  test("an older or repeated record (lower sequence) does not override a newer one", () => {
    const c = new EngineConfig();
    const older = learn(perm("r", 1));
    const newer = learn(perm("r", 2));
    expect(c.apply(newer).changed).toBe(true);
    expect(c.apply(older).changed).toBe(false);
    expect(c.apply(newer).changed).toBe(false);
    expect(c.permissionRules[0]!.priority).toBe(2);
  });

  test("enabled:false removes a rule; declaring it again brings it back", () => {
    const c = new EngineConfig();
    c.apply(learn(perm("r", 1)));
    expect(c.apply(learn({ topic: "permission_rule", name: "r", enabled: false })).changed).toBe(true);
    expect(c.permissionRules).toHaveLength(0);
    expect(c.listRules()).toHaveLength(0);
    c.apply(learn(perm("r", 3)));
    expect(c.permissionRules[0]!.priority).toBe(3);
  });

  test("a non-bool or bad-syntax expression is REFUSED with its column; the previous version stays", () => {
    const c = new EngineConfig();
    const good = learn(perm("admin", 10, 'resource == "config_read"'));
    c.apply(good);
    const bad = learn(perm("admin", 99, "record.clock + 1"));
    const r1 = c.apply(bad);
    expect(r1.warning).toContain("refused permission_rule \"admin\"");
    expect(r1.warning).toContain("previous version stays in force");
    expect(c.permissionRules).toHaveLength(1);
    expect(c.permissionRules[0]).toMatchObject({ priority: 10, record_id: good.id });

    const syntax = learn(perm("admin", 99, 'resource == "a" &&'));
    c.apply(syntax);
    const refused = c.refused();
    expect(refused).toHaveLength(1); // the newer refusal replaces the older one for the same name
    expect(refused[0]).toMatchObject({ topic: "permission_rule", name: "admin", record_id: syntax.id, column: 19 });
    expect(refused[0]!.error).toContain("column 19");
    expect(refused[0]!.error).toContain("invalid permission expression");

    const rows = c.listRules("permission_rule");
    expect(rows.map((r) => [r.name, r.status])).toEqual([
      ["admin", "active"],
      ["admin", "REFUSED"],
    ]);
    expect(rows[1]).toMatchObject({ column: 19, record_id: syntax.id, priority: null, expression: null });

    // a later good version clears the refusal
    c.apply(learn(perm("admin", 50)));
    expect(c.refused()).toHaveLength(0);
    expect(c.permissionRules[0]!.priority).toBe(50);
  });

  test("expressions are checked in the topic's own context", () => {
    const c = new EngineConfig();
    // resource exists only in the permission context
    c.apply(learn({ topic: "routing_rule", name: "r", expression: 'resource == "x"', target: "did:x" }));
    expect(c.routingRules).toHaveLength(0);
    expect(c.refused()[0]).toMatchObject({ topic: "routing_rule", name: "r" });
    expect(c.refused()[0]!.error).toContain("invalid routing expression");
  });

  test("malformed bodies are refused with a reason", () => {
    const c = new EngineConfig();
    const cases: Array<[JsonObject, RegExp]> = [
      [{ topic: "permission_rule", name: "a", action: "maybe", priority: 1, expression: "true" }, /action must be allow or deny/],
      [{ topic: "permission_rule", name: "b", action: "allow", priority: 1.5, expression: "true" }, /priority must be an integer/],
      [{ topic: "permission_rule", name: "c", action: "allow", priority: 1 }, /expression must be a non-empty string/],
      [{ topic: "routing_rule", name: "d", expression: "true" }, /target must be/],
      [{ topic: "fold_rule", name: "e", expression: "true" }, /status must be/],
      [{ topic: "health_check", name: "f", expression: "true", severity: "info" }, /severity must be warn or critical/],
      [{ topic: "aitl_rule", name: "g", expression: "true", action: "allow" }, /action must be auto_apply or present/],
      [{ topic: "permission_rule", name: "h", action: "allow", expression: "true", enabled: "yes" }, /enabled must be true or false/],
      [{ topic: "permission_rule", action: "allow", expression: "true" }, /no name/],
    ];
    for (const [body, why] of cases) {
      const r = c.apply(learn(body));
      expect(r.warning).toMatch(why);
    }
    expect(c.refused()).toHaveLength(cases.length);
    expect(c.permissionRules).toHaveLength(0);
    expect(c.listRules().every((r) => r.status === "REFUSED")).toBe(true);
  });

  test("unknown topics and topic-less LEARNs are skipped and counted", () => {
    const c = new EngineConfig();
    const a = c.apply(learn({ topic: "no_such_topic", name: "x" }));
    expect(a).toEqual({ changed: false, warning: expect.stringContaining('unknown topic "no_such_topic"') });
    const b = c.apply(learn({ text: "a note" }));
    expect(b.warning).toContain("no body.topic");
    for (let i = 0; i < 12; i++) c.apply(learn({ topic: 42 }));
    const skipped = c.skipped();
    expect(skipped.count).toBe(14);
    expect(skipped.recent).toHaveLength(10);
    expect(skipped.recent.at(-1)!.topic).toBeNull();
    // not LEARN, or not on the config thread: ignored silently, not counted
    expect(c.apply(learn(perm("x", 1), { act: "KNOW" }))).toEqual({ changed: false });
    expect(c.apply(learn(perm("x", 1), { thread: "th_other" }))).toEqual({ changed: false });
    expect(c.skipped().count).toBe(14);
    expect(c.permissionRules).toHaveLength(0);
  });

  test("switches: permissions_enabled, auth_required, latest wins, malformed refused", () => {
    const c = new EngineConfig();
    expect(c.permissionsEnabled).toBe(false);
    expect(c.authRequired).toBeNull();
    c.apply(learn({ topic: "permissions_enabled", enabled: true }));
    c.apply(learn({ topic: "auth_required", enabled: false }));
    expect(c.permissionsEnabled).toBe(true);
    expect(c.authRequired).toBe(false);
    const r = c.apply(learn({ topic: "permissions_enabled", enabled: "no" }));
    expect(r.warning).toContain("enabled must be true or false");
    expect(c.permissionsEnabled).toBe(true); // previous value stays
    expect(c.refused()[0]).toMatchObject({ topic: "permissions_enabled", name: "permissions_enabled" });
    c.apply(learn({ topic: "permissions_enabled", enabled: false }));
    expect(c.permissionsEnabled).toBe(false);
    expect(c.refused()).toHaveLength(0);
  });

  test("trust_params: whole value replaced, defaults for missing fields, invalid refused", () => {
    const c = new EngineConfig();
    expect(c.trustParams).toEqual({ ...DEFAULT_TRUST_PARAMS });
    c.apply(learn({ topic: "trust_params", prior_success: 7, prior_failure: 10, half_life_days: 30 }));
    expect(c.trustParams).toEqual({ prior_success: 7, prior_failure: 10, z: 1.96, half_life_days: 30 });
    c.apply(learn({ topic: "trust_params", z: 2.576 }));
    expect(c.trustParams).toEqual({ ...DEFAULT_TRUST_PARAMS, z: 2.576 });
    const r = c.apply(learn({ topic: "trust_params", half_life_days: 0 }));
    expect(r.warning).toContain("half_life_days");
    expect(c.trustParams.z).toBe(2.576);
    c.apply(learn({ topic: "trust_params", enabled: false }));
    expect(c.trustParams).toEqual({ ...DEFAULT_TRUST_PARAMS });
  });

  test("listRules rows and show() summary", () => {
    const c = new EngineConfig();
    c.apply(learn(perm("admin", 10000, 'current_actor() == "did:a"')));
    c.apply(learn({ topic: "routing_rule", name: "code", expression: "true", target: "did:sync:agent:coder", priority: 1 }));
    c.apply(learn({ topic: "health_check", name: "h", expression: "true", severity: "critical" }));
    c.apply(learn({ topic: "fold_rule", name: "f", expression: "1", status: "x" }));
    const rows = c.listRules();
    expect(rows.map((r) => [r.topic, r.name, r.status, r.effect])).toEqual([
      ["permission_rule", "admin", "active", "allow"],
      ["routing_rule", "code", "active", "-> did:sync:agent:coder"],
      ["fold_rule", "f", "REFUSED", ""],
      ["health_check", "h", "active", "critical"],
    ]);
    expect(c.listRules("routing_rule")).toHaveLength(1);
    expect(c.show()).toMatchObject({
      permissions_enabled: false,
      auth_required: null,
      rules: { permission_rule: 1, routing_rule: 1, fold_rule: 0, health_check: 1, aitl_rule: 0 },
      refused: 1,
      skipped: 0,
    });
    expect(c.getRule("permission_rule", "admin")?.priority).toBe(10000);
  });

  test("folding 10k config LEARNs is fast", () => {
    const c = new EngineConfig();
    const { ms } = cpuTimeMs(() => {
      for (let i = 0; i < 10_000; i++) c.apply(learn(perm(`r${i % 500}`, i % 97, `resource == "x${i % 50}" && current_actor() != ""`)));
    });
    expect(c.permissionRules).toHaveLength(500);
    expect(ms).toBeLessThan(1000);
  });
});

import { describe, expect, test } from "bun:test";
import type { StoredRecord } from "../records/types";
import { scopeWith, type CelScope } from "./cel";
import { EngineConfig, ENGINE_CONFIG_THREAD, type PermissionRule } from "./config-fold";
import { decide, fixRule, preflight, syntheticRecord } from "./permissions";
import { permissionRuleCommand, shellQuote } from "../cli/rule-command";

const fixCommand = (rules: Parameters<typeof fixRule>[0], actor: string) => permissionRuleCommand(fixRule(rules, actor));

const ADMIN = "did:sync:user:admin";
const scope: CelScope = scopeWith("ignored", 1_700_000_000, { trust: { score: () => 0.9, count: () => 4 } });

let seq = 0;
function rule(name: string, action: "allow" | "deny", priority: number, expression: string): PermissionRule {
  seq++;
  return { name, action, priority, expression, record_id: `r${seq}`, sequence: seq };
}

describe("decide", () => {
  test("first match in descending priority decides; no match denies", () => {
    const rules = [
      rule("deny-eve", "deny", 500, 'current_actor() == "did:eve"'),
      rule("readers", "allow", 100, 'resource == "record_read"'),
      rule("admin", "allow", 10000, `current_actor() == "${ADMIN}"`),
    ];
    expect(decide(rules, { actor: ADMIN, resource: "record_write" }, scope)).toMatchObject({ allowed: true, rule: "admin" });
    expect(decide(rules, { actor: "did:eve", resource: "record_read" }, scope)).toMatchObject({ allowed: false, rule: "deny-eve" });
    expect(decide(rules, { actor: "did:bob", resource: "record_read" }, scope)).toMatchObject({ allowed: true, rule: "readers" });
    const none = decide(rules, { actor: "did:bob", resource: "record_write" }, scope);
    expect(none.allowed).toBe(false);
    expect(none.rule).toBeUndefined();
    expect(none.reason).toContain("no permission rule allows did:bob record_write");
    expect(decide([], { actor: ADMIN, resource: "admin" }, scope).allowed).toBe(false);
  });

  test("an evaluation error makes an allow rule not match", () => {
    const rules = [
      rule("broken-allow", "allow", 100, "record.body.level > 3"), // body has no "level": no_such_key
      rule("fallback", "allow", 1, 'resource == "record_write"'),
    ];
    const d = decide(rules, { actor: "did:bob", resource: "record_write", record: { act: "DO", body: {} } }, scope);
    expect(d).toMatchObject({ allowed: true, rule: "fallback" });
    const d2 = decide([rules[0]!], { actor: "did:bob", resource: "record_write", record: { act: "DO", body: {} } }, scope);
    expect(d2.allowed).toBe(false); // fail closed
  });

  test("an evaluation error makes a deny rule match", () => {
    const rules = [
      rule("broken-deny", "deny", 100, 'record.body.namespace.startsWith("prod")'),
      rule("everyone", "allow", 1, "true"),
    ];
    const d = decide(rules, { actor: "did:bob", resource: "record_write", record: { act: "DO", body: {} } }, scope);
    expect(d.allowed).toBe(false);
    expect(d.rule).toBe("broken-deny");
    expect(d.reason).toContain("evaluation error");
    // when the data is there, the deny rule evaluates normally and does not match
    const ok = decide(rules, { actor: "did:bob", resource: "record_write", record: { act: "DO", body: { namespace: "dev/x" } } }, scope);
    expect(ok).toMatchObject({ allowed: true, rule: "everyone" });
  });

  test("rules see the written record, resource, current_actor(), trust and system", () => {
    const rules = [
      rule("trusted-writers", "allow", 10, 'resource == "record_write" && record.act == "DO" && record.clock >= 2 && trust(current_actor(), "code") > 0.5 && system.records_total > 10'),
    ];
    const req = { actor: "did:bob", resource: "record_write", record: { act: "DO" as const, clock: 3, body: {} }, system: { records_total: 11 } };
    expect(decide(rules, req, scope).allowed).toBe(true);
    expect(decide(rules, { ...req, record: { ...req.record, clock: 1 } }, scope).allowed).toBe(false);
    // requests without a record get a synthetic GET record
    const get = [rule("gets", "allow", 1, 'record.act == "GET" && record.actor == current_actor()')];
    expect(decide(get, { actor: "did:bob", resource: "thread_read" }, scope).allowed).toBe(true);
  });

  test("unsorted input is evaluated in priority order", () => {
    const rules = [rule("allow-low", "allow", 1, "true"), rule("deny-high", "deny", 2, "true")];
    expect(decide(rules, { actor: "did:x", resource: "admin" }, scope)).toMatchObject({ allowed: false, rule: "deny-high" });
  });

  test("works on the rules an EngineConfig folded", () => {
    const c = new EngineConfig();
    const rec = (body: Record<string, unknown>, n: number): StoredRecord => ({
      id: `c${n}`, sequence: n, created_at: 0, parents: [], thread: ENGINE_CONFIG_THREAD, actor: ADMIN, act: "LEARN", body, clock: n, data_type: "SCALAR", judged_by: null,
    });
    c.apply(rec({ topic: "permission_rule", name: "admin", action: "allow", priority: 10000, expression: `current_actor() == "${ADMIN}"` }, 1));
    expect(decide(c.permissionRules, { actor: ADMIN, resource: "config_write" }, scope).allowed).toBe(true);
    c.apply(rec({ topic: "permission_rule", name: "admin", enabled: false }, 2));
    expect(decide(c.permissionRules, { actor: ADMIN, resource: "config_write" }, scope).allowed).toBe(false);
  });
});

describe("preflight", () => {
  test("passes when the actor can read the thread, write the disabling LEARN, read config and status", () => {
    const rules = [
      rule("admin-self", "allow", 10000, `current_actor() == "${ADMIN}" && (resource == "record_write" || resource == "thread_read" || resource == "config_read" || resource == "status_read")`),
    ];
    expect(preflight(rules, ADMIN, scope)).toEqual({ ok: true, missing: [], fixRule: null });
  });

  test("the record_write check uses the disabling LEARN on th_engine_config", () => {
    const rules = [
      rule("disable-only", "allow", 5, `resource == "record_write" && record.act == "LEARN" && record.thread == "th_engine_config" && record.body.topic == "permissions_enabled"`),
      rule("reads", "allow", 4, `resource == "thread_read" && record.thread == "th_engine_config" || resource == "config_read" || resource == "status_read"`),
    ];
    expect(preflight(rules, ADMIN, scope).ok).toBe(true);
  });

  test("lists what is missing and prints a command that fixes it", () => {
    const rules = [
      rule("readers", "allow", 100, 'resource == "thread_read"'),
      rule("deny-all-writes", "deny", 20000, 'resource == "record_write"'),
      rule("admin-self", "allow", 50, "false"),
    ];
    const p = preflight(rules, ADMIN, scope);
    expect(p.ok).toBe(false);
    expect(p.missing).toEqual(["record_write", "config_read", "status_read"]);
    // priority above every rule (20000 + 1), name not taken
    const command = permissionRuleCommand(p.fixRule!);
    expect(command).toBe(
      `spl config add-permission-rule --name admin-self-2 --action allow --priority 20001 --expression 'current_actor() == "${ADMIN}" && (resource == "record_write" || resource == "thread_read" || resource == "config_read" || resource == "status_read")'`,
    );

    // applying the suggested rule fixes it
    const expr = command.match(/--expression '(.*)'$/)![1]!;
    const fixed = [...rules, rule("admin-self-2", "allow", 20001, expr)];
    expect(preflight(fixed, ADMIN, scope).ok).toBe(true);
  });

  test("the suggested command survives a shell round trip, even with quotes in the DID", () => {
    const actor = `did:sync:user:o'brien "x"`;
    const cmd = fixCommand([], actor);
    expect(cmd).toContain("--priority 10000");
    const out = Bun.spawnSync(["sh", "-c", `set -- ${cmd.replace(/^spl /, "")}; for a in "$@"; do printf '%s\\n' "$a"; done`]);
    const args = out.stdout.toString().trimEnd().split("\n");
    const expression = args[args.indexOf("--expression") + 1]!;
    const fixed = [rule("admin-self", "allow", 10000, expression)];
    expect(preflight(fixed, actor, scope).ok).toBe(true);
    expect(preflight(fixed, "did:sync:user:someone-else", scope).ok).toBe(false);
  });

  test("shellQuote leaves safe words alone", () => {
    expect(shellQuote("admin-self")).toBe("admin-self");
    expect(shellQuote("a b")).toBe("'a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});

describe("syntheticRecord", () => {
  test("syntheticRecord is a GET by the caller", () => {
    expect(syntheticRecord("did:a", "th_x")).toMatchObject({ act: "GET", actor: "did:a", thread: "th_x", data_type: "VOID", clock: 0 });
  });
});

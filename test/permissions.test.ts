// CEL permission enforcement on the compiled binary (issue 4 item 6): every route but GET /health
// is gated on TCP and on the socket by route class; fail-closed; first match by priority; errors
// never open a door; denials answer 403 PERMISSION_DENIED and log WARN "PERMISSION DENIED".
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Instance, SPL, waitFor } from "./harness";

const OP = "did:sync:user:tester";
const ADMIN = "did:sync:agent:admin";
const PROBE = "did:sync:agent:probe";
const TOKEN_RE = /spl_[a-z0-9]+_[a-z0-9]+_[A-Za-z0-9]+/;
const CLASSES = ["record_write", "record_read", "thread_read", "config_read", "config_write", "status_read", "fleet_read", "admin"] as const;

const inst = new Instance();
let adminToken = "";
let probeToken = "";
let n = 0;

async function ok(args: string[], env?: Record<string, string>) {
  const r = await inst.spl(args, { env });
  if (r.code !== 0) throw new Error(`spl ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}
const asAdmin = () => ({ SPL_SERVE_URL: inst.url, SPL_TOKEN: adminToken });

async function tcp(method: string, path: string, token: string | null, body?: unknown) {
  const res = await fetch(inst.url + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

/** Writes a permission rule as the admin token's actor through POST /v1/config/rules (config_write). */
async function rule(name: string, action: "allow" | "deny", priority: number, expression: string) {
  const r = await tcp("POST", "/v1/config/rules", adminToken, { topic: "permission_rule", name, action, priority, expression });
  if (r.status !== 201 && r.status !== 200) throw new Error(`rule ${name}: ${r.status} ${JSON.stringify(r.json)}`);
}

type Route = { cls: (typeof CLASSES)[number]; method: string; path: string; body?: () => unknown };
const ROUTES: Route[] = [
  { cls: "status_read", method: "GET", path: "/v1/status" },
  { cls: "status_read", method: "GET", path: "/v1/trust" },
  { cls: "status_read", method: "GET", path: "/v1/engine/expression_cache/stats" },
  { cls: "status_read", method: "GET", path: "/v1/engine/health" },
  { cls: "status_read", method: "POST", path: "/v1/engine/expr/eval", body: () => ({ expression: "true", context: "routing" }) },
  { cls: "record_read", method: "GET", path: "/v1/records?limit=1" },
  { cls: "record_read", method: "GET", path: `/v1/records/${"0".repeat(64)}` },
  { cls: "record_write", method: "POST", path: "/v1/records", body: () => ({ thread: "th_probe", actor: PROBE, act: "DO", body: { n: n++ } }) },
  { cls: "record_write", method: "POST", path: "/v1/records/batch", body: () => ({ records: [{ thread: "th_probe", actor: PROBE, act: "DO", body: { n: n++ } }] }) },
  { cls: "thread_read", method: "GET", path: "/v1/threads" },
  { cls: "thread_read", method: "GET", path: "/v1/threads/th_engine_config/state" },
  { cls: "thread_read", method: "GET", path: "/v1/threads/th_engine_config/records" },
  { cls: "thread_read", method: "GET", path: "/v1/tasks" },
  { cls: "thread_read", method: "GET", path: "/v1/tasks/TSK-0001" },
  { cls: "status_read", method: "GET", path: "/v1/dispatches" },
  { cls: "config_read", method: "GET", path: "/v1/config" },
  { cls: "config_read", method: "GET", path: "/v1/config/rules" },
  { cls: "config_read", method: "GET", path: "/v1/config/permission-rules" },
  { cls: "config_read", method: "GET", path: "/v1/config/health-checks" },
  { cls: "config_write", method: "POST", path: "/v1/config/rules", body: () => ({ topic: "routing_rule", name: `probe-${n++}`, target: PROBE, expression: "false" }) },
  { cls: "fleet_read", method: "GET", path: "/v1/fleet/status" },
  { cls: "fleet_read", method: "GET", path: "/v1/fleet/member" },
  { cls: "admin", method: "GET", path: "/v1/tokens" },
  { cls: "admin", method: "POST", path: "/v1/tokens/ffffffffffffffff/revoke", body: () => ({}) },
  { cls: "admin", method: "GET", path: "/v1/no-such-route" },
];

beforeAll(async () => {
  await ok(["init"]);
  await inst.start();
  adminToken = TOKEN_RE.exec(await ok(["token", "create", "--name", "admin", "--actor", ADMIN, "--scopes", "admin"]))![0];
  probeToken = TOKEN_RE.exec(await ok(["token", "create", "--name", "probe", "--actor", PROBE, "--scopes", "admin"]))![0];
  // The admin token's actor may do anything; written before enforcement is switched on.
  await rule("admin-all", "allow", 20000, `current_actor() == "${ADMIN}"`);
  await ok(["learn", "--thread", "th_engine_config", "--body", '{"topic":"permissions_enabled","enabled":true}'], asAdmin());
});
afterAll(async () => {
  await inst.stop();
});

describe("route classes", () => {
  test("enforcement is reported on, and with no rule for them the socket and other tokens are denied", async () => {
    expect((await tcp("GET", "/v1/status", adminToken)).json.permissions_enabled).toBe(true);
    const sock = await inst.socket("GET", "/v1/threads");
    expect(sock.status).toBe(403);
    expect(sock.json).toMatchObject({ object: "error", type: "invalid_request_error", code: "PERMISSION_DENIED" });
    expect(sock.json.message).toContain(OP);
    expect(sock.json.message).toContain("thread_read");
    const probe = await tcp("GET", "/v1/config/rules", probeToken);
    expect(probe.status).toBe(403);
    expect(probe.json.message).toContain(PROBE);
    expect(probe.json.message).toContain("config_read");
  });

  test("each route answers 403 exactly when its class is not allowed, on TCP (token actor) and on the socket (operator)", async () => {
    for (const allowed of CLASSES) {
      await rule("probe", "allow", 100, `(current_actor() == "${PROBE}" || current_actor() == "${OP}") && resource == "${allowed}"`);
      for (const r of ROUTES) {
        const viaTcp = await tcp(r.method, r.path, probeToken, r.body?.());
        const viaSock = await inst.socket(r.method, r.path, r.body?.());
        for (const [via, res] of [["tcp", viaTcp], ["socket", viaSock]] as const) {
          const label = `${via} ${r.method} ${r.path} with only ${allowed} allowed`;
          if (r.cls === allowed) expect({ label, status: res.status }).not.toMatchObject({ status: 403 });
          else {
            expect({ label, status: res.status, code: res.json?.code }).toEqual({ label, status: 403, code: "PERMISSION_DENIED" });
            expect(res.json.message).toContain(`may not ${r.cls}`);
            expect(res.json.message).toContain(via === "tcp" ? PROBE : OP);
          }
        }
      }
      // /health is never gated.
      expect((await tcp("GET", "/health", null)).status).toBe(200);
      expect((await inst.socket("GET", "/health")).status).toBe(200);
    }
  });

  test("denials are logged at WARN with actor, resource and route", async () => {
    const line = await waitFor("the WARN line 'PERMISSION DENIED' for GET /v1/tokens", () =>
      readFileSync(inst.path("logs", "spl.log"), "utf8")
        .split("\n")
        .find((l) => l.includes("PERMISSION DENIED") && l.includes(PROBE) && l.includes("GET /v1/tokens")),
    );
    const entry = JSON.parse(line!);
    expect(entry).toMatchObject({ level: "WARN", msg: "PERMISSION DENIED", actor: PROBE, resource: "admin", route: "GET /v1/tokens" });
  });
});

describe("rule semantics", () => {
  test("descending priority, first match decides; no match denies; a rule sees the record being written", async () => {
    await rule("probe", "allow", 100, `current_actor() == "${PROBE}" && resource == "record_write" && record.thread.startsWith("th_open")`);
    await rule("probe-deny", "deny", 200, `current_actor() == "${PROBE}" && has(record.body.secret)`);
    const write = (thread: string, body: Record<string, unknown>) => tcp("POST", "/v1/records", probeToken, { thread, actor: PROBE, act: "DO", body });
    expect((await write("th_open_1", { n: n++ })).status).toBe(201);
    expect((await write("th_closed", { n: n++ })).status).toBe(403); // no rule matches: fail-closed
    const denied = await write("th_open_1", { n: n++, secret: true });
    expect(denied.status).toBe(403);
    expect(denied.json.message).toContain('deny rule "probe-deny"');
    // A batch with one refused record writes nothing.
    const before = (await tcp("GET", "/v1/threads/th_open_1/state", adminToken)).json.record_count;
    const batch = await tcp("POST", "/v1/records/batch", probeToken, {
      records: [
        { thread: "th_open_1", actor: PROBE, act: "DO", body: { n: n++ } },
        { thread: "th_closed", actor: PROBE, act: "DO", body: { n: n++ } },
      ],
    });
    expect(batch.status).toBe(403);
    expect((await tcp("GET", "/v1/threads/th_open_1/state", adminToken)).json.record_count).toBe(before);
  });

  test("an evaluation error makes an allow rule not match and a deny rule match", async () => {
    await rule("probe-deny", "deny", 200, `current_actor() == "${PROBE}" && record.body.level > 3`);
    await rule("probe", "allow", 100, `current_actor() == "${PROBE}" && record.body.grade > 1`);
    await rule("probe-fallback", "allow", 50, `current_actor() == "${PROBE}" && resource == "record_write"`);
    const write = (body: Record<string, unknown>) => tcp("POST", "/v1/records", probeToken, { thread: "th_eval", actor: PROBE, act: "DO", body });
    // No body.level: the deny rule errors → it matches → denied.
    const d = await write({ grade: 5, n: n++ });
    expect(d.status).toBe(403);
    expect(d.json.message).toContain("evaluation error");
    // level present and low: the deny rule does not match; no grade → the allow rule errors → skipped; fallback allows.
    expect((await write({ level: 1, n: n++ })).status).toBe(201);
    await rule("probe-fallback", "allow", 50, "false");
    expect((await write({ level: 1, n: n++ })).status).toBe(403); // the erroring allow rule never opens the door
    expect((await write({ level: 1, grade: 2, n: n++ })).status).toBe(201);
  });

  test("a record whose clock the store assigns is shown to rules with that clock", async () => {
    await rule("probe-deny", "deny", 200, "false");
    await rule("probe", "allow", 100, `current_actor() == "${PROBE}" && resource == "record_write" && record.clock < 2`);
    const write = () => tcp("POST", "/v1/records", probeToken, { thread: "th_clocked", actor: PROBE, act: "DO", body: { n: n++ } });
    const a = await write();
    const b = await write();
    expect([a.status, a.json.clock, b.status, b.json.clock]).toEqual([201, 0, 201, 1]);
    expect((await write()).status).toBe(403); // would get clock 2
  });

  test("concurrent writes: the clock a rule sees is the clock stored (checked inside the write transaction)", async () => {
    await rule("probe-deny", "deny", 200, "false");
    await rule("probe", "allow", 100, `current_actor() == "${PROBE}" && resource == "record_write" && record.clock < 3`);
    const writes = await Promise.all(
      Array.from({ length: 8 }, (_, i) => tcp("POST", "/v1/records", probeToken, { thread: "th_race", actor: PROBE, act: "DO", body: { i } })),
    );
    const stored = writes.filter((w) => w.status === 201).map((w) => w.json.clock).sort();
    expect(stored).toEqual([0, 1, 2]);
    expect(writes.filter((w) => w.status === 403)).toHaveLength(5);
    expect((await tcp("GET", "/v1/threads/th_race/state", adminToken)).json).toMatchObject({ record_count: 3, last_clock: 2 });
  });

  test("a denial carries the decision as fields (actor, resource, rule, reason, route) beside the message", async () => {
    await rule("probe-deny", "deny", 200, `current_actor() == "${PROBE}" && resource == "thread_read"`);
    const r = await tcp("GET", "/v1/threads/th_race/state", probeToken);
    expect(r.status).toBe(403);
    expect(r.json.permission).toEqual({
      actor: PROBE,
      resource: "thread_read",
      rule: "probe-deny",
      priority: 200,
      reason: 'denied by deny rule "probe-deny" (priority 200)',
      route: "GET /v1/threads/:id/state",
    });
    const none = await tcp("GET", "/v1/config", probeToken);
    expect(none.json.permission).toMatchObject({ resource: "config_read", rule: null, priority: null });
  });

  test("the CLI turns a denial into the command that allows exactly it, and that command works", async () => {
    const asProbe = { SPL_SERVE_URL: inst.url, SPL_TOKEN: probeToken };
    const denied = await inst.spl(["thread", "state", "th_race"], { env: asProbe });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^error: permission denied: did:sync:agent:probe may not thread_read \(GET \/v1\/threads\/:id\/state\).* — an operator can allow it with the command below \[PERMISSION_DENIED\]\n  spl config add-permission-rule /);
    const fix = denied.stderr.slice(denied.stderr.indexOf("spl config add-permission-rule")).trim();
    expect(fix).toBe(`spl config add-permission-rule --name allow-thread_read-probe --action allow --priority 201 --expression 'current_actor() == "${PROBE}" && resource == "thread_read"'`);
    const bin = mkdtempSync(join(tmpdir(), "spl-bin-"));
    symlinkSync(SPL, join(bin, "spl"));
    const sh = Bun.spawnSync(["sh", "-c", fix], { env: { ...inst.env, ...asAdmin(), PATH: `${bin}:${inst.env.PATH}` } });
    expect(sh.exitCode).toBe(0);
    expect(await ok(["thread", "state", "th_race"], asProbe)).toContain("th_race");
  });

  test("a rule change applies to the next request without a restart, and disabling enforcement opens everything", async () => {
    const sock = () => inst.socket("GET", "/v1/trust");
    expect((await sock()).status).toBe(403);
    await rule("operator-status", "allow", 10, `current_actor() == "${OP}" && resource == "status_read"`);
    expect((await sock()).status).toBe(200);
    const off = await tcp("POST", "/v1/records", adminToken, { thread: "th_engine_config", actor: ADMIN, act: "LEARN", body: { topic: "permissions_enabled", enabled: false } });
    expect(off.status).toBe(201);
    expect((await inst.socket("GET", "/v1/tokens")).status).toBe(200);
    expect((await tcp("GET", "/v1/tokens", probeToken)).status).toBe(200);
  });
});

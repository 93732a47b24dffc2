// API tokens, TCP auth and provider secrets on the compiled binary (issue 4 item 8).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Instance, track } from "./harness";

const OP = "did:sync:user:tester";
const modeOf = (p: string) => statSync(p).mode & 0o777;
const TOKEN_RE = /spl_[a-z0-9]+_[a-z0-9]+_[A-Za-z0-9]+/;

async function raw(inst: Instance, method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  const res = await fetch(inst.url + path, {
    method,
    headers: { ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null, headers: res.headers };
}
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

async function ok(inst: Instance, args: string[], env?: Record<string, string>) {
  const r = await inst.spl(args, { env });
  if (r.code !== 0) throw new Error(`spl ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Every file under dir, recursively. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe("tokens on one instance", () => {
  const inst = new Instance();
  let opToken = "";

  beforeAll(async () => {
    const init = await ok(inst, ["init"]);
    expect(init).toContain("new admin token, mode 0600");
    opToken = inst.token!;
    await inst.start();
  });
  afterAll(async () => {
    await inst.stop();
  });

  test("spl init mints an admin token into <home>/token (0600) and keeps it on a second init", async () => {
    expect(opToken).toMatch(new RegExp(`^${TOKEN_RE.source}$`));
    expect(modeOf(inst.path("token"))).toBe(0o600);
    const again = await ok(inst, ["init"]);
    expect(again).toContain("(kept)");
    expect(inst.token).toBe(opToken);
  });

  test("th_auth holds the SHA-256 of the secret, the actor and scopes; never the secret", async () => {
    const recs = JSON.parse(await ok(inst, ["thread", "records", "th_auth", "-o", "json"]));
    const secret = opToken.split("_")[3]!;
    const id = opToken.split("_")[2]!;
    const mine = recs.find((r: any) => r.body.token_id === id);
    expect(mine.body).toMatchObject({ topic: "api_token", actor: OP, scopes: ["admin"], secret_sha256: createHash("sha256").update(secret).digest("hex") });
    expect(JSON.stringify(recs)).not.toContain(secret);
    expect(readFileSync(inst.path("hub.db")).includes(Buffer.from(secret))).toBe(false);
    // Nobody writes th_auth through the record API, not even the operator.
    const forged = await inst.socket("POST", "/v1/records", { thread: "th_auth", actor: OP, act: "LEARN", body: { topic: "api_token", token_id: "x" } });
    expect(forged.status).toBe(403);
    expect(forged.json.code).toBe("RESERVED_THREAD");
  });

  test("TCP needs a bearer (401 AUTH_REQUIRED) except GET /health; the socket needs none", async () => {
    for (const [method, path] of [["GET", "/v1/status"], ["GET", "/v1/threads"], ["POST", "/v1/records"], ["GET", "/v1/trust"], ["GET", "/nope"]] as const) {
      const r = await raw(inst, method, path, {}, method === "POST" ? { thread: "t", actor: OP, act: "DO", body: {} } : undefined);
      expect(r.status).toBe(401);
      expect(r.json).toMatchObject({ object: "error", type: "invalid_request_error", code: "AUTH_REQUIRED" });
      expect(r.json.message).toContain("Bearer");
      expect(r.headers.get("www-authenticate")).toContain("Bearer");
    }
    expect((await raw(inst, "GET", "/health")).status).toBe(200);
    const wrong = opToken.slice(0, -4) + "0000";
    for (const h of [bearer(wrong), bearer("spl_local_abcdef0123456789_" + "a".repeat(48)), { authorization: "Basic Zm9vOmJhcg==" }, bearer("short")]) {
      const r = await raw(inst, "GET", "/v1/status", h);
      expect(r.status).toBe(401);
      expect(r.json.code).toBe("AUTH_REQUIRED");
    }
    expect((await raw(inst, "GET", "/v1/status", bearer(opToken))).status).toBe(200);
    expect((await inst.socket("GET", "/v1/status")).status).toBe(200);
  });

  test("the CLI over HTTP uses <home>/token, and SPL_TOKEN over it", async () => {
    const env = { SPL_SERVE_URL: inst.url };
    expect(await ok(inst, ["status"], env)).toContain("Status:   ok");
    const bad = await inst.spl(["status"], { env: { ...env, SPL_TOKEN: "spl_local_0000000000000000_" + "b".repeat(48) } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("unknown token id");
    expect(await ok(inst, ["trust"], { ...env, SPL_TOKEN: opToken })).toContain("no trust evidence");
  });

  test("token create | list | revoke: scopes, the token's actor as current_actor(), revocation on the next request", async () => {
    const created = await ok(inst, ["token", "create", "--name", "ci", "--actor", "did:sync:agent:ci", "--scopes", "records:read,records:write"]);
    const token = TOKEN_RE.exec(created)![0];
    const id = token.split("_")[2]!;
    expect(created).toContain("shown only once");

    const list = JSON.parse(await ok(inst, ["token", "list", "-o", "json"]));
    const entry = list.find((t: any) => t.id === id);
    expect(entry).toMatchObject({ name: "ci", actor: "did:sync:agent:ci", scopes: ["records:read", "records:write"], revoked: false, created_by: OP });
    expect(JSON.stringify(list)).not.toContain(token.split("_")[3]!);
    expect(await ok(inst, ["token", "list"])).toMatch(new RegExp(`${id}\\s+ci\\s+did:sync:agent:ci\\s+records:read,records:write`));

    // Its actor is the caller: records it writes are checked against it; expr eval sees it.
    const ev = await raw(inst, "POST", "/v1/engine/expr/eval", bearer(token), { expression: "current_actor()", context: "permission" });
    expect(ev.status).toBe(200);
    expect(ev.json.value).toBe("did:sync:agent:ci");
    const w = await raw(inst, "POST", "/v1/records", bearer(token), { thread: "th_ci", actor: "did:sync:agent:ci", act: "DO", body: { text: "build" } });
    expect(w.status).toBe(201);

    // Scopes: no admin, no config.
    const admin = await raw(inst, "GET", "/v1/tokens", bearer(token));
    expect(admin.status).toBe(403);
    expect(admin.json.code).toBe("SCOPE_FORBIDDEN");
    expect((await raw(inst, "GET", "/v1/config/rules", bearer(token))).json.code).toBe("SCOPE_FORBIDDEN");
    const cfg = await raw(inst, "POST", "/v1/records", bearer(token), { thread: "th_engine_config", actor: "did:sync:agent:ci", act: "LEARN", body: { topic: "permissions_enabled", enabled: true } });
    expect(cfg.status).toBe(403);
    expect(cfg.json.code).toBe("SCOPE_FORBIDDEN");

    expect(await ok(inst, ["token", "revoke", id, "--reason", "rotated"])).toContain(`revoked token ${id}`);
    const after = await raw(inst, "GET", "/v1/status", bearer(token));
    expect(after.status).toBe(401);
    expect(after.json.message).toContain("revoked");
    const listed = JSON.parse(await ok(inst, ["token", "list", "-o", "json"])).find((t: any) => t.id === id);
    expect(listed).toMatchObject({ revoked: true, revoked_reason: "rotated" });

    const badScope = await inst.spl(["token", "create", "--scopes", "root"]);
    expect(badScope.code).toBe(2);
    expect(badScope.stderr).toMatch(/^error: unknown scope "root"/);
    const unknown = await inst.spl(["token", "revoke", "ffffffffffffffff"]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain("TOKEN_NOT_FOUND");
  });

  test("a token survives a restart (it is a record), and so does its revocation", async () => {
    const created = await ok(inst, ["token", "create", "--name", "keep", "--scopes", "records:read"]);
    const token = TOKEN_RE.exec(created)![0];
    await inst.stop();
    await inst.start();
    expect((await raw(inst, "GET", "/v1/status", bearer(token))).status).toBe(200);
    expect((await raw(inst, "GET", "/v1/status", bearer(opToken))).status).toBe(200);
    const revoked = JSON.parse(await ok(inst, ["token", "list", "-o", "json"])).filter((t: any) => t.revoked);
    expect(revoked.map((t: any) => t.name)).toEqual(["ci"]);
  });
});

describe("bootstrap token, --insecure-localhost, non-loopback binds", () => {
  test("SPL_BOOTSTRAP_TOKEN mints an admin token at boot, once across restarts", async () => {
    const inst = new Instance();
    const boot = "bootstrap-" + "x7".repeat(16);
    inst.env.SPL_BOOTSTRAP_TOKEN = boot;
    await inst.start();
    expect((await raw(inst, "GET", "/v1/tokens", bearer(boot))).status).toBe(200);
    const count = async () => (await inst.socket("GET", "/v1/threads/th_auth/state")).json.record_count;
    const n = await count();
    await inst.stop();
    await inst.start();
    expect(await count()).toBe(n);
    expect((await raw(inst, "GET", "/v1/status", bearer(boot))).status).toBe(200);
    // The operator's token was minted on first start too (no `spl init` here).
    expect((await raw(inst, "GET", "/v1/status", bearer(inst.token!))).status).toBe(200);
    await inst.stop();

    inst.env.SPL_BOOTSTRAP_TOKEN = "short";
    const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: SPL_BOOTSTRAP_TOKEN is not usable/);
    expect(r.stderr).not.toContain("short");
  });

  test("--insecure-localhost: no bearer on loopback TCP, acting as the operator; any other --host is refused", async () => {
    const inst = new Instance();
    const refused = await inst.spl(["serve", "--daemon", "--port", String(inst.port), "--insecure-localhost", "--host", "0.0.0.0"]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/^error: --insecure-localhost .*loopback only; refusing --host 0\.0\.0\.0/);

    const out = await inst.spl(["serve", "--daemon", "--port", String(inst.port), "--insecure-localhost"]);
    expect(out.code).toBe(0);
    track(Number(/PID:\s+(\d+)/.exec(out.stdout)![1]));
    expect(out.stdout).toContain(`Bind:     127.0.0.1:${inst.port}`);
    const s = await raw(inst, "GET", "/v1/status");
    expect(s.status).toBe(200);
    const ev = await raw(inst, "POST", "/v1/engine/expr/eval", {}, { expression: "current_actor()", context: "permission" });
    expect(ev.json.value).toBe(OP);
    expect((await ok(inst, ["config", "show", "-o", "json"])).includes('"insecure_localhost": true')).toBe(true);
    // A restart keeps the flag.
    await ok(inst, ["serve", "--restart"]);
    expect((await raw(inst, "GET", "/v1/status")).status).toBe(200);
    await inst.stop();
  });

  test("auth_required=false applies on loopback without a restart; a non-loopback bind never goes without auth", async () => {
    const inst = new Instance();
    await inst.start(["--host", "0.0.0.0"]);
    const token = inst.token!;
    expect((await raw(inst, "GET", "/v1/status")).status).toBe(401);
    await ok(inst, ["learn", "--thread", "th_engine_config", "--body", '{"topic":"auth_required","enabled":false}']);
    // Ignored on 0.0.0.0: auth stays on.
    expect((await raw(inst, "GET", "/v1/status")).status).toBe(401);
    expect((await raw(inst, "GET", "/v1/status", bearer(token))).status).toBe(200);
    await inst.stop();

    const refused = await inst.spl(["serve", "--daemon", "--port", String(inst.port), "--host", "0.0.0.0"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: refusing to serve 0\.0\.0\.0:\d+ without auth/);

    await inst.start(); // loopback: auth_required=false is honoured
    expect((await raw(inst, "GET", "/v1/status")).status).toBe(200);
    await ok(inst, ["learn", "--thread", "th_engine_config", "--body", '{"topic":"auth_required","enabled":true}']);
    expect((await raw(inst, "GET", "/v1/status")).status).toBe(401); // next request, no restart
    await inst.stop();
  });
});

describe("provider secrets", () => {
  test("set-key writes <home>/secrets/<provider>.key 0600 in a 0700 dir; list-keys masks; nothing leaks into records, logs or backups", async () => {
    const inst = new Instance();
    await ok(inst, ["init"]);
    await inst.start();
    const key = "sk-ant-" + "Q9".repeat(20) + "tail";
    const set = await ok(inst, ["config", "set-key", "anthropic", key]);
    expect(set).not.toContain(key);
    await inst.spl(["config", "set-key", "openai", "-"], { stdin: "sk-openai-secret-value-1234\n" });
    const file = inst.path("secrets", "anthropic.key");
    expect(readFileSync(file, "utf8").trim()).toBe(key);
    expect(modeOf(file)).toBe(0o600);
    expect(modeOf(inst.path("secrets"))).toBe(0o700);
    expect(readFileSync(inst.path("secrets", "openai.key"), "utf8").trim()).toBe("sk-openai-secret-value-1234");

    const list = await ok(inst, ["config", "list-keys"]);
    expect(list).toMatch(/anthropic\s+sk-a\*{8}tail\s+0600/);
    expect(list).not.toContain(key);
    expect(JSON.parse(await ok(inst, ["config", "list-keys", "-o", "json"])).map((k: any) => k.provider)).toEqual(["anthropic", "openai"]);

    for (const bad of ["../escape", "a/b", "..", ".hidden", "x".repeat(70), ""]) {
      const r = await inst.spl(["config", "set-key", bad, "v"]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/^error: /);
    }
    expect(existsSync(join(inst.splHome, "escape.key"))).toBe(false);

    // Restart (writes a startup backup), then search every store, log and backup file.
    await inst.stop();
    await inst.start();
    await inst.stop();
    const files = [...filesUnder(inst.splHome).filter((f) => !f.includes("/secrets/")), ...filesUnder(join(inst.home, ".local"))];
    expect(files.some((f) => f.endsWith(".bak"))).toBe(true);
    for (const f of files) expect(readFileSync(f).includes(Buffer.from(key))).toBe(false);
  });
});

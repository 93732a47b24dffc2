// The HTTP gate end to end on the compiled daemon: routes declare their class (issue 8.3), record
// writes are authorized in the write path (8.4), a token acts as its own actor (9.6), browsers are
// refused (9.7), and bodies are limited while they stream in (9.8).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Elysia } from "elysia";
import { readFileSync } from "node:fs";
import { Instance, track } from "./harness";
import { rawRequest, streamChunked } from "./raw-http";
import { assertDeclared, assertOnlyDeclared, route } from "../lib/api/route";
import { NO_QUERY } from "../lib/api/schema";

const OP = "did:sync:user:tester";
const CI = "did:sync:agent:ci";
const TOKEN_RE = /spl_[a-z0-9]+_[a-z0-9]+_[A-Za-z0-9]+/;

const inst = new Instance();
let ciToken = "";

async function ok(args: string[], env?: Record<string, string>, on = inst) {
  const r = await on.spl(args, { env });
  if (r.code !== 0) throw new Error(`spl ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

async function tcp(method: string, path: string, token: string | null, body?: unknown, headers: Record<string, string> = {}, on = inst) {
  const res = await fetch(on.url + path, {
    method,
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: res.status, json, headers: res.headers };
}

const recordCount = async (thread: string) => (await inst.socket("GET", `/v1/threads/${thread}/state`)).json?.record_count ?? 0;

beforeAll(async () => {
  await ok(["init"]);
  await inst.start();
  ciToken = TOKEN_RE.exec(await ok(["token", "create", "--name", "ci", "--actor", CI, "--scopes", "records:read,records:write"]))![0];
});
afterAll(async () => {
  await inst.stop();
});

describe("routes declare their class", () => {
  test("each route's class is the one declared beside it; an unmatched route counts as admin, then 404", async () => {
    // A token whose only scope no route needs: every gated route names its class in the refusal.
    const none = TOKEN_RE.exec(await ok(["token", "create", "--name", "none", "--scopes", "federation:manage"]))![0];
    const expected: [string, string, string | null][] = [
      ["GET", "/health", null],
      ["POST", "/health", "admin"],
      ["POST", "/v1/records", "record_write"],
      ["POST", "/v1/records/batch", "record_write"],
      ["GET", "/v1/records?thread=x", "record_read"],
      ["GET", "/v1/records/abc", "record_read"],
      ["GET", "/v1/threads", "thread_read"],
      ["GET", "/v1/threads/th_engine_config/state", "thread_read"],
      ["GET", "/v1/threads/th_engine_config/records", "thread_read"],
      ["GET", "/v1/config", "config_read"],
      ["GET", "/v1/config/rules", "config_read"],
      ["GET", "/v1/config/permissions/preflight", "config_read"],
      ["POST", "/v1/config/rules", "config_write"],
      ["POST", "/v1/config/permission-rules", "admin"], // no such route
      ["GET", "/v1/status", "status_read"],
      ["GET", "/v1/trust", "status_read"],
      ["GET", "/v1/engine/expression_cache/stats", "status_read"],
      ["GET", "/v1/engine/health", "status_read"],
      ["POST", "/v1/engine/expr/eval", "status_read"],
      ["POST", "/v1/engine/other", "admin"],
      ["GET", "/v1/tokens", "admin"],
      ["POST", "/v1/tokens", "admin"],
      ["DELETE", "/v1/tokens/abc", "admin"],
      ["GET", "/v1/unknown", "admin"],
    ];
    for (const [method, path, cls] of expected) {
      const r = await tcp(method, path, none, method === "POST" ? {} : undefined);
      if (cls === null) expect({ path, status: r.status }).toEqual({ path, status: 200 });
      else {
        expect({ method, path, status: r.status, code: r.json.code }).toEqual({ method, path, status: 403, code: "SCOPE_FORBIDDEN" });
        expect(r.json.message).toContain(`may not ${cls} (`);
      }
    }
    // With a token that may, an unmatched route is a plain 404 naming nothing but itself.
    const missing = await tcp("GET", "/v1/unknown", inst.token!);
    expect([missing.status, missing.json.code, missing.headers.get("x-spl-route")]).toEqual([404, "NOT_FOUND", "none"]);
  });

  test("a route without a declared class, or one added around the gate, is refused at startup", () => {
    expect(() => assertDeclared({ method: "GET", path: "/v1/new" } as any)).toThrow(/route GET \/v1\/new declares no permission class/);
    expect(() => assertDeclared({ method: "GET", path: "/v1/new", cls: "superuser" } as any)).toThrow(/declares no permission class/);
    expect(() => assertDeclared({ method: "GET", path: "/v1/new", cls: "open" })).toThrow(/only GET \/health/);
    expect(() => assertDeclared({ method: "GET", path: "/v1/new", cls: "record_read" })).not.toThrow();
    const declared = [route({ method: "GET", path: "/v1/a", cls: "record_read", summary: "a", query: NO_QUERY, answers: { 200: { description: "a", contentType: "text/plain" } } }, () => new Response())];
    const app = new Elysia().get("/v1/a", () => "a").get("/v1/sneaky", () => "b");
    expect(() => assertOnlyDeclared(app.routes, declared)).toThrow(/route GET \/v1\/sneaky was added without a declared permission class/);
    expect(() => assertOnlyDeclared(app.routes.slice(0, 1), declared)).not.toThrow();
  });
});

describe("a token acts as its own actor", () => {
  test("a records:write token cannot write as the operator (single or batch), nor forge trust verdicts", async () => {
    const before = await recordCount("th_forge");
    const asOp = await tcp("POST", "/v1/records", ciToken, { thread: "th_forge", actor: OP, act: "DO", body: { text: "x" } });
    expect(asOp.status).toBe(403);
    expect(asOp.json).toMatchObject({ object: "error", type: "invalid_request_error", code: "DID_CLAIM_DENIED" });
    expect(asOp.json.message).toContain(`acts as ${CI} and may not act as ${OP}`);
    const batch = await tcp("POST", "/v1/records/batch", ciToken, {
      records: [
        { thread: "th_forge", actor: CI, act: "DO", body: { n: 1 } },
        { thread: "th_forge", actor: OP, act: "DO", body: { n: 2 } },
      ],
    });
    expect([batch.status, batch.json.code]).toEqual([403, "DID_CLAIM_DENIED"]);
    expect(await recordCount("th_forge")).toBe(before); // not even the first record of the batch

    // Forged judges: verdicts about the ci token's own work written as other actors are refused.
    const work = await tcp("POST", "/v1/records", ciToken, { thread: "th_forge", actor: CI, act: "DO", body: { text: "build" } });
    expect(work.status).toBe(201);
    for (let i = 0; i < 3; i++) {
      const judge = `did:sync:user:judge${i}`;
      const v = await tcp("POST", "/v1/records", ciToken, { thread: "th_forge", actor: judge, act: "KNOW", judged_by: work.json.id, body: { verdict: "accept" } });
      expect(v.json.code).toBe("DID_CLAIM_DENIED");
    }
    const trust = (await inst.socket("GET", "/v1/trust")).json.data;
    expect(trust.find((t: any) => t.actor === CI)).toBeUndefined();
    // Its own records still go through.
    expect((await tcp("POST", "/v1/records", ciToken, { thread: "th_forge", actor: CI, act: "DO", body: { n: 3 } })).status).toBe(201);
  });

  test("X-Syncropel-Actor: a plain token may not claim another actor; an admin token and the socket may, and rules see the claim", async () => {
    const claim = { "x-syncropel-actor": OP };
    const denied = await tcp("POST", "/v1/engine/expr/eval", ciToken, { expression: "current_actor()", context: "permission" }, claim);
    expect([denied.status, denied.json.code]).toEqual([403, "DID_CLAIM_DENIED"]);
    expect((await tcp("GET", "/v1/threads", ciToken, undefined, claim)).status).toBe(403);
    // Claiming itself is fine.
    expect((await tcp("GET", "/v1/threads", ciToken, undefined, { "x-syncropel-actor": CI })).status).toBe(200);
    const bad = await tcp("GET", "/v1/threads", ciToken, undefined, { "x-syncropel-actor": "root" });
    expect([bad.status, bad.json.code]).toEqual([400, "INVALID_ACTOR"]);

    const admin = await tcp("POST", "/v1/engine/expr/eval", inst.token!, { expression: "current_actor()", context: "permission" }, { "x-syncropel-actor": "did:sync:agent:relay" });
    expect(admin.json.value).toBe("did:sync:agent:relay");
    const adminWrite = await tcp("POST", "/v1/records", inst.token!, { thread: "th_claim", actor: "did:sync:agent:other", act: "DO", body: {} });
    expect(adminWrite.status).toBe(201);

    // The socket is trusted: any actor in records, and a claim changes current_actor().
    const sock = await fetch("http://localhost/v1/engine/expr/eval", {
      method: "POST",
      unix: inst.path("run", "spl.sock"),
      headers: { "content-type": "application/json", "x-syncropel-actor": "did:sync:agent:local" },
      body: JSON.stringify({ expression: "current_actor()", context: "permission" }),
    } as RequestInit);
    expect(((await sock.json()) as any).value).toBe("did:sync:agent:local");
    expect((await inst.socket("POST", "/v1/records", { thread: "th_claim", actor: "did:sync:agent:anyone", act: "DO", body: {} })).status).toBe(201);
  });

  test("the CLI over HTTP with a plain token: --actor must be the token's actor, and the error says so", async () => {
    const env = { SPL_SERVE_URL: inst.url, SPL_TOKEN: ciToken };
    const r = await inst.spl(["do", "deploy", "--thread", "th_cli_claim"], { env });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: token [0-9a-f]+ acts as did:sync:agent:ci and may not act as did:sync:user:tester — .*\[DID_CLAIM_DENIED\]/);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(await ok(["do", "deploy", "--thread", "th_cli_claim", "--actor", CI], env)).toContain("recorded DO");
    // The operator's own CLI (socket, and its admin token over HTTP) writes as anyone, as before.
    expect(await ok(["do", "x", "--thread", "th_cli_claim", "--actor", "did:sync:agent:bot"])).toContain("recorded DO");
    expect(await ok(["do", "y", "--thread", "th_cli_claim", "--actor", "did:sync:agent:bot"], { SPL_SERVE_URL: inst.url })).toContain("recorded DO");
  });
});

describe("writes are authorized in one place", () => {
  test("a config LEARN needs config:write through /v1/records and /v1/records/batch alike; nothing is written", async () => {
    const learn = { thread: "th_engine_config", actor: CI, act: "LEARN", body: { topic: "permissions_enabled", enabled: true } };
    const before = await recordCount("th_engine_config");
    const single = await tcp("POST", "/v1/records", ciToken, learn);
    const batch = await tcp("POST", "/v1/records/batch", ciToken, { records: [{ thread: "th_ok", actor: CI, act: "DO", body: {} }, learn] });
    for (const r of [single, batch]) {
      expect([r.status, r.json.code]).toEqual([403, "SCOPE_FORBIDDEN"]);
      expect(r.json.message).toContain("writing th_engine_config needs scope config:write");
    }
    expect(await recordCount("th_engine_config")).toBe(before);
    expect(await recordCount("th_ok")).toBe(0);
    const reserved = await tcp("POST", "/v1/records/batch", inst.token!, { records: [{ thread: "th_auth", actor: OP, act: "LEARN", body: {} }] });
    expect([reserved.status, reserved.json.code]).toEqual([403, "RESERVED_THREAD"]);
  });
});

describe("bodies are limited while they stream in", () => {
  test("a chunked record body is refused with 413 as soon as it passes the route's limit, long before the client is done", async () => {
    const head = `POST /v1/records HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${inst.token}\r\nContent-Type: application/json`;
    const planned = 256 * 1024 * 1024; // more than any route accepts, and more than the server-wide cap
    const r = await streamChunked(inst.port, head, planned);
    expect(r.reply.status).toBe(413);
    expect(r.reply.json).toMatchObject({ object: "error", code: "RECORD_TOO_LARGE" });
    expect(r.reply.json.message).toContain("the limit is 2097152");
    expect(r.sentBeforeAnswer).toBeGreaterThan(0);
    expect(r.sentBeforeAnswer).toBeLessThan(planned);
    // The daemon is fine afterwards.
    expect((await tcp("GET", "/health", null)).status).toBe(200);
  });

  test("an unauthenticated chunked body is refused before it is read; a route that takes no body refuses one", async () => {
    const anon = await streamChunked(inst.port, "POST /v1/records/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json", 256 * 1024 * 1024);
    expect([anon.reply.status, anon.reply.json?.code]).toEqual([401, "AUTH_REQUIRED"]);
    expect(anon.sentBeforeAnswer).toBeLessThan(256 * 1024 * 1024);

    const get = await rawRequest(inst.port, `GET /v1/threads HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${inst.token}`, "{}");
    expect([get.status, get.json.code]).toEqual([413, "BODY_NOT_ALLOWED"]);
    const chunkedGet = await streamChunked(inst.port, `GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${inst.token}`, 1024 * 1024);
    expect([chunkedGet.reply.status, chunkedGet.reply.json?.code]).toEqual([413, "BODY_NOT_ALLOWED"]);
    // A declared Content-Length over the limit is refused without reading anything.
    const declared = await rawRequest(inst.port, `POST /v1/config/rules HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${inst.token}\r\nContent-Length: 300000`);
    expect([declared.status, declared.json?.code]).toEqual([413, "REQUEST_TOO_LARGE"]);
  });
});

describe("browsers are refused", () => {
  const web = new Instance();
  beforeAll(async () => {
    const out = await web.spl(["serve", "--daemon", "--port", String(web.port), "--insecure-localhost"]);
    if (out.code !== 0) throw new Error(out.stderr);
    track(Number(/PID:\s+(\d+)/.exec(out.stdout)![1]));
  });
  afterAll(async () => {
    await web.stop();
  });

  test("with --insecure-localhost, a text/plain POST from a web page writes nothing and mints no token", async () => {
    const page = { origin: "http://evil.example", "content-type": "text/plain" };
    const tokensBefore = (await web.socket("GET", "/v1/tokens")).json.data.length;
    const write = await tcp("POST", "/v1/records", null, JSON.stringify({ thread: "th_web", actor: OP, act: "DO", body: {} }), page, web);
    expect([write.status, write.json.code]).toEqual([403, "FORBIDDEN_ORIGIN"]);
    const mint = await tcp("POST", "/v1/tokens", null, JSON.stringify({ scopes: ["admin"] }), page, web);
    expect([mint.status, mint.json.code]).toEqual([403, "FORBIDDEN_ORIGIN"]);
    expect(mint.json.message).toContain("http://evil.example");
    expect((await web.socket("GET", "/v1/threads/th_web/state")).status).toBe(404);
    expect((await web.socket("GET", "/v1/tokens")).json.data.length).toBe(tokensBefore);
    for (const origin of ["null", `http://127.0.0.1:${web.port + 1}`, `http://localhost:${web.port}`]) {
      expect((await tcp("GET", "/health", null, undefined, { origin }, web)).status).toBe(403);
    }
    // A page served by this very daemon's origin would be allowed (there is none, but it is not foreign).
    expect((await tcp("GET", "/v1/status", null, undefined, { origin: `http://127.0.0.1:${web.port}` }, web)).status).toBe(200);
  });

  test("a CORS preflight from a foreign page is refused, with no Access-Control-Allow-* header", async () => {
    const pre = await tcp("OPTIONS", "/v1/records", null, undefined, { origin: "http://evil.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type" }, web);
    expect([pre.status, pre.json.code]).toEqual([403, "FORBIDDEN_ORIGIN"]);
    expect([...pre.headers.keys()].filter((h) => h.startsWith("access-control-"))).toEqual([]);
  });

  test("DNS rebinding: a foreign Host is refused on every route, /health included; IPs, localhost and *.localhost are served", async () => {
    for (const host of ["evil.example", `evil.example:${web.port}`, "127.0.0.1.nip.io", "localhost.evil.example", "a/b", ""]) {
      for (const path of ["/health", "/v1/status", "/v1/records", "/nope"]) {
        const r = await rawRequest(web.port, `GET ${path} HTTP/1.1\r\nHost: ${host}`);
        expect({ host, path, status: r.status, code: r.json?.code }).toEqual({ host, path, status: 403, code: "FORBIDDEN_HOST" });
      }
    }
    const noHost = await rawRequest(web.port, "GET /health HTTP/1.0");
    expect([noHost.status, noHost.json?.code]).toEqual([403, "FORBIDDEN_HOST"]);
    for (const host of [`127.0.0.1:${web.port}`, "127.0.0.1", `localhost:${web.port}`, "LOCALHOST", "spl.localhost", `[::1]:${web.port}`, "10.1.2.3"]) {
      const r = await rawRequest(web.port, `GET /v1/status HTTP/1.1\r\nHost: ${host}`);
      expect({ host, status: r.status }).toEqual({ host, status: 200 });
    }
  });

  test("[server] allowed_hosts admits a configured name; the socket ignores Host and Origin; the CLI and Docker's HEALTHCHECK work", async () => {
    const named = new Instance();
    await named.spl(["init"]);
    const config = named.path("config.toml");
    const toml = readFileSync(config, "utf8");
    expect(toml).toContain("allowed_hosts = []");
    await Bun.write(config, toml.replace("allowed_hosts = []", 'allowed_hosts = ["spl.example.com"]'));
    await named.start();
    try {
      const yes = await rawRequest(named.port, `GET /health HTTP/1.1\r\nHost: SPL.example.com:${named.port}`);
      expect(yes.status).toBe(200);
      const no = await rawRequest(named.port, `GET /health HTTP/1.1\r\nHost: other.example.com`);
      expect(no.json.code).toBe("FORBIDDEN_HOST");
      const sock = await fetch("http://evil.example/v1/status", { unix: named.path("run", "spl.sock"), headers: { origin: "http://evil.example" } } as RequestInit);
      expect(sock.status).toBe(200);
      expect(await ok(["status"], undefined, named)).toContain("Status:   ok");
      expect(await ok(["status"], { SPL_SERVE_URL: named.url }, named)).toContain("Status:   ok");
      // The image's probe, as the Dockerfile writes it (its port swapped for this instance's).
      const probe = /HEALTHCHECK[\s\S]*?CMD curl -fsS (\S+)/.exec(readFileSync(`${import.meta.dir}/../Dockerfile`, "utf8"))![1]!;
      const health = await fetch(probe.replace(":9100", `:${named.port}`));
      expect(health.status).toBe(200);
    } finally {
      await named.stop();
    }
    const bad = new Instance();
    await bad.spl(["init"]);
    const badConfig = bad.path("config.toml");
    await Bun.write(badConfig, readFileSync(badConfig, "utf8").replace("allowed_hosts = []", 'allowed_hosts = "spl.example.com"'));
    const refused = await bad.spl(["serve", "--daemon", "--port", String(bad.port)]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: .*config\.toml: \[server\] allowed_hosts must be a list of host names/);
  });
});

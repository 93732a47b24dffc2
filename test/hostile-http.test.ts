// The gate decides on exactly the route the router dispatches (issue 9.1): hostile request lines
// sent raw over TCP to the compiled daemon — paths hidden in query strings, Host headers of every
// length, absolute-form targets, `//`, `%2f`, `..`, upper case — never reach a handler without a
// token, and the route a refusal names is the route whose handler runs once a token is given.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { Instance } from "./harness";
import { inParallel, rawRequest, type RawReply } from "./raw-http";

const inst = new Instance();
const MARKER = `marker-${crypto.randomUUID()}`;
/** Host names the daemon is configured to accept, one per length 1..20 ("" is length 0). */
const NAMED_HOSTS = Array.from({ length: 20 }, (_, i) => "h".repeat(i + 1));
let token = "";
let markerId = "";

interface Probe {
  method: string;
  target: string;
  host: string;
  body?: string;
}

const RECORD_BODY = () => JSON.stringify({ thread: "th_hostile", actor: "did:sync:agent:hostile", act: "DO", body: { text: MARKER.slice(0, 4) } });
const ROUTES: { method: string; path: string; label: string; body?: () => string }[] = [
  { method: "GET", path: "/v1/records?limit=1000", label: "GET /v1/records" },
  { method: "GET", path: "/v1/records/MARKER_ID", label: "GET /v1/records/:id" },
  { method: "POST", path: "/v1/records", label: "POST /v1/records", body: RECORD_BODY },
  { method: "POST", path: "/v1/records/batch", label: "POST /v1/records/batch", body: () => `{"records":[${RECORD_BODY()}]}` },
  { method: "GET", path: "/v1/threads", label: "GET /v1/threads" },
  { method: "GET", path: "/v1/threads/th_secret/records", label: "GET /v1/threads/:id/records" },
  { method: "GET", path: "/v1/threads/th_secret/state", label: "GET /v1/threads/:id/state" },
  { method: "GET", path: "/v1/status", label: "GET /v1/status" },
  { method: "GET", path: "/v1/trust", label: "GET /v1/trust" },
  { method: "GET", path: "/v1/config", label: "GET /v1/config" },
  { method: "GET", path: "/v1/config/rules", label: "GET /v1/config/rules" },
  { method: "GET", path: "/v1/config/permission-rules", label: "GET /v1/config/permission-rules" },
  { method: "GET", path: "/v1/config/health-checks", label: "GET /v1/config/health-checks" },
  { method: "GET", path: "/v1/config/permissions/preflight", label: "GET /v1/config/permissions/preflight" },
  { method: "POST", path: "/v1/config/rules", label: "POST /v1/config/rules", body: () => '{"topic":"routing_rule","name":"x"}' },
  { method: "GET", path: "/v1/engine/expression_cache/stats", label: "GET /v1/engine/expression_cache/stats" },
  { method: "GET", path: "/v1/engine/health", label: "GET /v1/engine/health" },
  { method: "POST", path: "/v1/engine/expr/eval", label: "POST /v1/engine/expr/eval", body: () => '{"expression":"1","context":"routing"}' },
  { method: "GET", path: "/v1/tokens", label: "GET /v1/tokens" },
  { method: "GET", path: "/v1/tasks", label: "GET /v1/tasks" },
  { method: "GET", path: "/v1/tasks/TSK-0001", label: "GET /v1/tasks/:ref" },
  { method: "GET", path: "/v1/dispatches", label: "GET /v1/dispatches" },
  // Invalid scopes: a token-holder's request reaches the handler and is refused there, minting nothing.
  { method: "POST", path: "/v1/tokens", label: "POST /v1/tokens", body: () => '{"scopes":"bad"}' },
  { method: "POST", path: "/v1/tokens/ffffffffffffffff/revoke", label: "POST /v1/tokens/:id/revoke" },
  { method: "DELETE", path: "/v1/tokens/ffffffffffffffff", label: "DELETE /v1/tokens/:id" },
];

/** What each route's answer looks like, so a 2xx shows which handler produced it. */
const isList = (j: any, item: (x: any) => boolean) => j?.object === "list" && Array.isArray(j.data) && j.data.every(item);
const isRecord = (r: any) => r?.object === "record" && typeof r.id === "string";
const SHAPES: Record<string, (j: any) => boolean> = {
  "GET /health": (j) => j?.status === "ok" && typeof j.version === "string" && !("memory" in j),
  "GET /openapi.json": (j) => typeof j?.openapi === "string" && typeof j.paths === "object",
  "GET /v1/status": (j) => j?.status === "ok" && "memory" in j,
  "GET /v1/records": (j) => isList(j, isRecord) && "has_more" in j,
  "GET /v1/records/:id": isRecord,
  "POST /v1/records": isRecord,
  "POST /v1/records/batch": (j) => isList(j, (x) => typeof x.status === "string"),
  "GET /v1/threads": (j) => isList(j, (t) => "record_count" in t),
  "GET /v1/threads/:id/records": (j) => isList(j, isRecord),
  "GET /v1/threads/:id/state": (j) => typeof j?.actor_clocks === "object",
  "GET /v1/trust": (j) => isList(j, (t) => "trust" in t) && !("has_more" in j),
  "GET /v1/config": (j) => j?.object === "engine_config",
  "GET /v1/config/rules": (j) => isList(j, (r) => "name" in r) && !("permissions_enabled" in j),
  "GET /v1/config/permission-rules": (j) => isList(j, (r) => "name" in r) && "permissions_enabled" in j,
  "GET /v1/config/health-checks": (j) => isList(j, (r) => "name" in r),
  "GET /v1/config/permissions/preflight": (j) => j?.object === "preflight",
  "GET /v1/engine/expression_cache/stats": (j) => j && typeof j === "object" && !("object" in j) && !("status" in j),
  "GET /v1/engine/health": (j) => j?.object === "health_checks",
  "POST /v1/engine/expr/eval": (j) => j?.object === "expr_result",
  "GET /v1/tokens": (j) => isList(j, (t) => Array.isArray(t.scopes)),
  "POST /v1/config/rules": isRecord,
  "GET /v1/tasks": (j) => isList(j, (t) => typeof t.alias === "string"),
  "GET /v1/tasks/:ref": (j) => typeof j?.alias === "string" && Array.isArray(j.history),
  "GET /v1/dispatches": (j) => isList(j, (d) => typeof d.intend === "string") && "reconciler" in j,
  "POST /v1/tokens": (j) => j?.object === "token",
  "POST /v1/tokens/:id/revoke": (j) => j?.object === "token",
  "DELETE /v1/tokens/:id": (j) => j?.object === "token",
};

function send(p: Probe, withToken: boolean): Promise<RawReply> {
  const auth = withToken ? `\r\nAuthorization: Bearer ${token}` : "";
  const host = p.host === "\0" ? "" : `\r\nHost: ${p.host}`;
  return rawRequest(inst.port, `${p.method} ${p.target} HTTP/1.1${host}${auth}`, p.body ?? "");
}

/** The console (GET /) is served without a token too: HTML that carries no data. */
const isStatusPage = (text: string) => text.includes("<title>spl console</title>");

/**
 * One request line, without and with a token. Without: nothing but /health (and the status page) answers, nothing is
 * leaked, and a route that refused says which it was. With: the same route answers, and a 2xx
 * has the shape of that route's handler.
 */
async function probe(p: Probe): Promise<string | null> {
  const anon = await send(p, false);
  const authed = await send(p, true);
  const where = `${p.method} ${JSON.stringify(p.target)} Host ${JSON.stringify(p.host)}`;
  const route = anon.headers["x-spl-route"];
  expect({ where, leaked: anon.text.includes(MARKER) || anon.text.includes(markerId) || anon.text.includes(token.split("_")[2]!) }).toEqual({ where, leaked: false });
  if (anon.status >= 200 && anon.status < 300 && route === "GET /") {
    expect({ where, page: isStatusPage(anon.text) }).toEqual({ where, page: true });
  } else if (anon.status >= 200 && anon.status < 300 && route === "GET /openapi.json") {
    expect({ where, document: SHAPES["GET /openapi.json"]!(anon.json) }).toEqual({ where, document: true }); // no data: the leak check above holds
  } else if (anon.status >= 200 && anon.status < 300) {
    expect({ where, route, health: SHAPES["GET /health"]!(anon.json) }).toEqual({ where, route: "GET /health", health: true });
  } else if (route !== undefined && route !== "GET /health") {
    expect({ where, route, status: anon.status, code: anon.json?.code }).toEqual({ where, route, status: 401, code: "AUTH_REQUIRED" });
  } else {
    expect({ where, status: [400, 401, 403, 404, 413].includes(anon.status) }).toEqual({ where, status: true });
  }
  expect({ where, route: authed.headers["x-spl-route"] }).toEqual({ where, route });
  if (authed.status >= 200 && authed.status < 300 && route === "GET /") {
    expect({ where, page: isStatusPage(authed.text) }).toEqual({ where, page: true });
  } else if (authed.status >= 200 && authed.status < 300) {
    const shape = SHAPES[route ?? ""];
    expect({ where, route, shaped: shape ? shape(authed.json) : `no shape for ${route}` }).toEqual({ where, route, shaped: true });
  }
  return route ?? null;
}

function variants(path: string): { target: string; hostDependent: boolean }[] {
  const bare = path.split("?")[0]!;
  return [
    { target: path, hostDependent: true },
    { target: `/health?x=${path}`, hostDependent: true },
    { target: `/health?x=${bare}?limit=1000`, hostDependent: true },
    { target: `/health?${path}`, hostDependent: true },
    { target: `http://127.0.0.1:${inst.port}${path}`, hostDependent: false },
    { target: `http://h${path}`, hostDependent: false },
    { target: `http://h/health?x=${path}`, hostDependent: false },
    { target: `/${path}`, hostDependent: false },
    { target: `/health/..${path}`, hostDependent: false },
    { target: `/v1/..${path}`, hostDependent: false },
    { target: path.replace(/\//g, "%2f"), hostDependent: false },
    { target: path.replace(/\//g, "%2F").replace(/^%2F/, "/"), hostDependent: false },
    { target: `/health%2f..${path}`, hostDependent: false },
    { target: path.toUpperCase(), hostDependent: false },
    { target: `/HEALTH?x=${path}`, hostDependent: false },
    { target: `/health#${path}`, hostDependent: false },
    { target: `/health;${path}`, hostDependent: false },
    { target: `/health/${path}`, hostDependent: false },
  ];
}

beforeAll(async () => {
  await inst.spl(["init"]);
  const config = inst.path("config.toml");
  writeFileSync(config, readFileSync(config, "utf8").replace(/^allowed_hosts = .*$/m, `allowed_hosts = ${JSON.stringify(NAMED_HOSTS)}`));
  await inst.start();
  token = inst.token!;
  const marked = await inst.socket("POST", "/v1/records", { thread: "th_secret", actor: "did:sync:user:tester", act: "KNOW", body: { text: MARKER } });
  markerId = marked.json.id;
  // A task holding the marker too, so the task routes have something to leak.
  await inst.socket("POST", "/v1/records", { thread: "th_secret_task", actor: "did:sync:user:tester", act: "INTEND", body: { task: true, goal: MARKER } });
  for (const r of ROUTES) r.path = r.path.replace("MARKER_ID", markerId);
});
afterAll(async () => {
  await inst.stop();
});

describe("the gate and the router agree", () => {
  test("the reported exploit: a path in the query string with a one-letter Host is /health, and returns no records", async () => {
    for (const auth of ["", `\r\nAuthorization: Bearer ${token}`]) {
      const r = await rawRequest(inst.port, `GET /health?x=/v1/records?limit=1000 HTTP/1.1\r\nHost: h${auth}`);
      expect(r.status).toBe(200);
      expect(r.headers["x-spl-route"]).toBe("GET /health");
      expect(r.json).toMatchObject({ status: "ok" });
      expect(r.json.data).toBeUndefined();
      expect(r.text).not.toContain(MARKER);
    }
    // The same target without the disguise needs a token.
    const plain = await rawRequest(inst.port, `GET /v1/records?limit=1000 HTTP/1.1\r\nHost: h`);
    expect([plain.status, plain.json.code, plain.headers["x-spl-route"]]).toEqual([401, "AUTH_REQUIRED", "GET /v1/records"]);
  });

  test("every route × target variant × Host length 0-20 (and IP/localhost Hosts), with and without a token", async () => {
    const hostsAll = ["\0", "", ...NAMED_HOSTS, `127.0.0.1:${inst.port}`, "localhost", `[::1]:${inst.port}`];
    const hostsFew = ["h", "hhhhhhhhhhhhhhhhhhhh", `127.0.0.1:${inst.port}`, "localhost"];
    const probes: (Probe & { label: string; plain: boolean })[] = [];
    for (const r of ROUTES) {
      for (const v of variants(r.path)) {
        for (const host of v.hostDependent ? hostsAll : hostsFew) {
          probes.push({ method: r.method, target: v.target, host, body: r.body?.(), label: r.label, plain: v.target === r.path });
        }
      }
    }
    const routes = await inParallel(probes, 8, probe);
    // Not vacuous: each plain request on an accepted Host was matched to its own route.
    probes.forEach((p, i) => {
      if (p.plain && NAMED_HOSTS.includes(p.host)) expect({ target: p.target, route: routes[i] }).toEqual({ target: p.target, route: p.label });
    });
    // A path in the query string never picks the route, whatever the Host's length.
    probes.forEach((p, i) => {
      if (p.target.startsWith("/health?") && NAMED_HOSTS.includes(p.host)) {
        expect({ target: p.target, host: p.host, route: routes[i] }).toEqual({ target: p.target, host: p.host, route: p.method === "GET" ? "GET /health" : "none" });
      }
    });
  }, 300_000);

  test("a few thousand random request lines: the route the gate refused is the route whose handler runs", async () => {
    let seed = Number(process.env.GATE_SEED ?? 20261127); // fixed, so a run is reproducible; GATE_SEED explores others
    const seedUsed = seed;
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const pick = <T>(xs: readonly T[]): T => xs[rand(xs.length)]!;
    const pieces = ["/", "//", "/health", "/v1", "/records", "/threads", "/th_secret", "/state", "/tokens", "/config", "/rules", "/status", "/trust", "/engine",
      "/health", "?", "?x=", "=", "&", "%2f", "%2F", "/..", "/.", "..", "x", "limit=1", "#", "/HEALTH", "/V1", ";", "%00", "%", "*", "/batch", "/revoke", "?/v1/records"];
    const prefixes = ["", "", "", `http://127.0.0.1:${inst.port}`, "http://h", "http://hhhhhhhhhhhhhhhhhhhh"];
    const hosts = ["\0", "", "h", "hh", "hhhhhhh", "hhhhhhhhhhhhhhhhhhhh", `127.0.0.1:${inst.port}`, "localhost", "a.localhost"];
    const probes: Probe[] = [];
    for (let i = 0; i < 3000; i++) {
      const base = pick(ROUTES);
      let target = rand(3) === 0 ? "" : base.path;
      for (let k = rand(4); k >= 0; k--) {
        const at = rand(target.length + 1);
        target = target.slice(0, at) + pick(pieces) + target.slice(at);
      }
      if (!target.startsWith("/")) target = "/" + target;
      target = pick(prefixes) + target;
      if (rand(5) === 0) target = target.toUpperCase();
      const method = rand(6) === 0 ? pick(["GET", "POST", "DELETE", "PUT", "OPTIONS"]) : base.method;
      probes.push({ method, target, host: pick(hosts), body: method === base.method ? base.body?.() : undefined });
    }
    // And every route once as written, so the run always reaches many handlers whatever the dice did.
    for (const r of ROUTES) probes.push({ method: r.method, target: r.path, host: `127.0.0.1:${inst.port}`, body: r.body?.() });
    try {
      const routes = await inParallel(probes, 8, probe);
      expect(new Set(routes.filter(Boolean)).size).toBeGreaterThan(5); // many different routes were exercised
    } catch (err) {
      throw new Error(`GATE_SEED=${seedUsed}: ${(err as Error).message}`);
    }
  }, 300_000);
});

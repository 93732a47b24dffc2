// Route tests over an in-process daemon (test/app-harness.ts): the real app and store, no process.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mintToken, tokenRecordBody, AUTH_THREAD } from "../lib/auth/tokens";
import { ENGINE_ACTOR } from "../lib/instance";
import { prepareRecord } from "../lib/records/envelope";
import { inProcessDaemon, type Answer, type InProcessDaemon } from "./app-harness";

let d: InProcessDaemon;
beforeAll(async () => {
  d = await inProcessDaemon();
});
afterAll(() => d?.close());

const rec = (extra: Record<string, unknown> = {}) => ({ thread: "th_routes", actor: "did:sync:user:alice", act: "KNOW", body: { text: "hi" }, ...extra });
const records = () => d.state.store.counts.records;

function expectError(r: Answer, status: number, code: string) {
  expect({ status: r.status, code: r.json?.code }).toEqual({ status, code });
  expect(r.json).toMatchObject({ object: "error", type: "invalid_request_error" });
  expect(r.json.message).not.toContain("\n");
}

describe("records", () => {
  test("POST creates (201), GET reads it back, the same record again is a 200 duplicate", async () => {
    const a = await d.request("POST", "/v1/records", rec({ clock: 0 }));
    expect(a.status).toBe(201);
    expect(a.json).toMatchObject({ object: "record", thread: "th_routes", clock: 0 });
    const got = await d.request("GET", `/v1/records/${a.json.id}`);
    expect(got.json.id).toBe(a.json.id);
    const again = await d.request("POST", "/v1/records", rec({ clock: 0 }));
    expect(again.status).toBe(200);
    expect(again.json).toMatchObject({ id: a.json.id, duplicate: true });
  });

  test("the socket needs no token; TCP without one is 401", async () => {
    expect((await d.request("GET", "/v1/records?limit=1", undefined, { socket: true })).status).toBe(200);
    expectError(await d.request("GET", "/v1/records?limit=1", undefined, { headers: { authorization: "" } }), 401, "AUTH_REQUIRED");
  });
});

describe("bodies JSON.parse would silently change are refused, and nothing is written", () => {
  const cases: [string, string, string][] = [
    ["a duplicate envelope key", '{"thread":"th_a","thread":"th_b","actor":"did:sync:user:a","act":"KNOW","body":{}}', "DUPLICATE_KEY"],
    ["a duplicate body key", '{"thread":"th_a","actor":"did:sync:user:a","act":"KNOW","body":{"n":1,"n":2}}', "DUPLICATE_KEY"],
    ["an escaped duplicate key", '{"thread":"th_a","actor":"did:sync:user:a","act":"KNOW","body":{"n":1,"\\u006e":2}}', "DUPLICATE_KEY"],
    ["an integer above 2^53-1", '{"thread":"th_a","actor":"did:sync:user:a","act":"KNOW","body":{"n":9007199254740993}}', "UNSAFE_INTEGER"],
    ["an integer below -(2^53-1)", '{"thread":"th_a","actor":"did:sync:user:a","act":"KNOW","body":{"n":-9007199254740993}}', "UNSAFE_INTEGER"],
    ["a clock above 2^53-1", '{"thread":"th_a","actor":"did:sync:user:a","act":"KNOW","body":{},"clock":18446744073709551616}', "UNSAFE_INTEGER"],
    ["an escaped lone high surrogate", '{"thread":"th_a","actor":"did:sync:user:a","act":"KNOW","body":{"s":"\\ud800"}}', "LONE_SURROGATE"],
    ["an escaped lone low surrogate", '{"thread":"th_\\udc00","actor":"did:sync:user:a","act":"KNOW","body":{}}', "LONE_SURROGATE"],
  ];
  for (const [name, text, code] of cases) {
    test(name, async () => {
      const before = records();
      expectError(await d.request("POST", "/v1/records", text), 400, code);
      expectError(await d.request("POST", "/v1/records/batch", `{"records":[${text}]}`), 400, code);
      expect(records()).toBe(before);
    });
  }

  test("the largest safe integers and a proper surrogate pair are accepted", async () => {
    const r = await d.request("POST", "/v1/records", '{"thread":"th_ok","actor":"did:sync:user:a","act":"KNOW","body":{"max":9007199254740991,"min":-9007199254740991,"s":"\\ud83d\\ude00"}}');
    expect(r.status).toBe(201);
    expect(r.json.body).toEqual({ max: 9007199254740991, min: -9007199254740991, s: "😀" });
  });
});

describe("query parameters", () => {
  test("non-decimal numbers are 400", async () => {
    for (const q of ["after=0x10", "after=1e3", "after=%2B5", "after=%205", "after=5.0", "limit=0x10", "limit=1e2", "limit=-1", "limit=0b1"]) {
      expectError(await d.request("GET", `/v1/records?${q}`), 400, "INVALID_QUERY");
      expectError(await d.request("GET", `/v1/threads?${q}`), 400, "INVALID_QUERY");
    }
    expect((await d.request("GET", "/v1/records?after=0&limit=10")).status).toBe(200);
  });

  test("a parameter given twice is 400, naming it", async () => {
    for (const q of ["limit=1&limit=2", "thread=a&thread=b", "after=0&limit=5&after=1", "act=KNOW&act=LEARN"]) {
      const r = await d.request("GET", `/v1/records?${q}`);
      expectError(r, 400, "INVALID_QUERY");
      expect(r.json.message).toContain(`'${q.split("&").map((p) => p.split("=")[0]).find((k, i, all) => all.indexOf(k) !== i)}'`);
    }
    expectError(await d.request("GET", "/v1/threads?limit=1&limit=1"), 400, "INVALID_QUERY");
  });
});

describe("tokens", () => {
  test("a token presented with a wrong env segment is 401", async () => {
    const created = await d.request("POST", "/v1/tokens", { env: "prod", scopes: ["records:read"] });
    expect(created.status).toBe(201);
    const token: string = created.json.token;
    const ok = await d.request("GET", "/v1/records?limit=1", undefined, { headers: { authorization: `Bearer ${token}` } });
    expect(ok.status).toBe(200);
    const wrongEnv = token.replace(/^spl_prod_/, "spl_local_");
    const r = await d.request("GET", "/v1/records?limit=1", undefined, { headers: { authorization: `Bearer ${wrongEnv}` } });
    expectError(r, 401, "AUTH_REQUIRED");
    expect(r.json.message).toContain("env 'prod'");
  });

  test("expires_at: a past or malformed value is refused at creation; a future one is kept", async () => {
    const before = records();
    const past = await d.request("POST", "/v1/tokens", { expires_at: Math.floor(Date.now() / 1000) - 10 });
    expectError(past, 400, "INVALID_REQUEST");
    expect(past.json.message).toContain("already past");
    expectError(await d.request("POST", "/v1/tokens", { expires_at: "next week" }), 400, "INVALID_REQUEST");
    expect(records()).toBe(before);
    const future = Math.floor(Date.now() / 1000) + 3600;
    const created = await d.request("POST", "/v1/tokens", { expires_at: future, scopes: ["records:read"] });
    expect(created.status).toBe(201);
    expect(created.json.expires_at).toBe(future);
    const listed = (await d.request("GET", "/v1/tokens")).json.data.find((t: any) => t.id === created.json.id);
    expect(listed.expires_at).toBe(future);
    expect((await d.request("GET", "/v1/records?limit=1", undefined, { headers: { authorization: `Bearer ${created.json.token}` } })).status).toBe(200);
  });

  test("an expired token is 401 naming its expiry", async () => {
    // A token record whose expiry has passed, written through the ingest queue like any other.
    const t = mintToken();
    const expired = Math.floor(Date.now() / 1000) - 60;
    const body = tokenRecordBody({ ...t, actor: "did:sync:agent:old", scopes: ["records:read"], name: "old", expiresAt: expired });
    const [w] = await d.state.ingest.submit([prepareRecord({ thread: AUTH_THREAD, actor: ENGINE_ACTOR, act: "LEARN", body })]);
    expect(w!.status).toBe("created");
    const r = await d.request("GET", "/v1/records?limit=1", undefined, { headers: { authorization: `Bearer ${t.token}` } });
    expectError(r, 401, "AUTH_REQUIRED");
    expect(r.json.message).toContain(`expired at ${new Date(expired * 1000).toISOString()}`);
  });
});

describe("reserved threads carry a read scope too", () => {
  test("a records:read token reads no token metadata on any read route; other reserved threads stay readable; admin reads all", async () => {
    const created = await d.request("POST", "/v1/tokens", { scopes: ["records:read"] });
    const reader = { authorization: `Bearer ${created.json.token}` };
    const as = (headers: Record<string, string>) => ({ headers });
    // A record on each reserved thread (the daemon's own th_auth and th_instance already exist).
    for (const thread of ["th_engine_config", "th_instance_registry", "th_fleet_control"]) {
      const [r] = await d.state.ingest.submit([prepareRecord({ thread, actor: ENGINE_ACTOR, act: "LEARN", body: { topic: "probe" } })]);
      expect(r!.status).toBe("created");
    }
    const authRecord = d.state.store.list({ thread: AUTH_THREAD, limit: 1 }).data[0]!;
    const secretHash = String(authRecord.body.secret_sha256 ?? authRecord.body.hash ?? "");
    for (const thread of ["th_auth", "th_engine_config", "th_instance", "th_instance_registry", "th_fleet_control"]) {
      const one = d.state.store.list({ thread, limit: 1 }).data[0]!;
      const routes = [`/v1/records?thread=${thread}`, `/v1/threads/${thread}/records`, `/v1/threads/${thread}/state`, `/v1/records/${one.id}`];
      for (const path of routes) {
        const r = await d.request("GET", path, undefined, as(reader));
        if (thread === AUTH_THREAD) {
          expectError(r, 403, "SCOPE_FORBIDDEN");
          expect(r.json.message).toContain("scope admin");
        } else expect([path, r.status]).toEqual([path, 200]);
        expect((await d.request("GET", path)).status).toBe(200); // the admin token reads it
      }
    }
    // The unfiltered list leaves th_auth out, page after page; for the admin it is there.
    let after = 0;
    const seen: string[] = [];
    for (;;) {
      const page = await d.request("GET", `/v1/records?limit=50&after=${after}`, undefined, as(reader));
      expect(page.status).toBe(200);
      seen.push(...page.json.data.map((r: { thread: string }) => r.thread));
      if (!page.json.has_more) break;
      after = Number(page.json.next_cursor);
    }
    expect(seen).not.toContain(AUTH_THREAD);
    expect(seen).toContain("th_instance");
    if (secretHash) expect(JSON.stringify(seen)).not.toContain(secretHash);
    const byActor = await d.request("GET", `/v1/records?actor=${encodeURIComponent(ENGINE_ACTOR)}&limit=1000`, undefined, as(reader));
    expect(byActor.json.data.map((r: { thread: string }) => r.thread)).not.toContain(AUTH_THREAD);
    const admin = await d.request("GET", `/v1/records?actor=${encodeURIComponent(ENGINE_ACTOR)}&limit=1000`);
    expect(admin.json.data.map((r: { thread: string }) => r.thread)).toContain(AUTH_THREAD);
  });
});

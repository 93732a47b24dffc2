// HTTP API on TCP and the Unix socket, record rules, and bad input (issue 2.7).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { connect } from "node:net";
import { Instance, waitFor } from "./harness";

const inst = new Instance();
const rec = (over: Record<string, unknown> = {}) => ({
  thread: "th_api",
  actor: "did:sync:user:alice",
  act: "KNOW",
  body: { text: "hello" },
  ...over,
});

beforeAll(async () => {
  await inst.start();
});
afterAll(async () => {
  await inst.stop();
});

describe("records", () => {
  test("the specification's test vector is stored under its id", async () => {
    const r = await inst.http("POST", "/v1/records", {
      act: "LEARN",
      actor: "did:sync:user:alice",
      body: { topic: "auth_required", enabled: true },
      clock: 0,
      data_type: "SCALAR",
      parents: [],
      thread: "th_vector",
    });
    expect(r.status).toBe(201);
    // Same fields except thread; recompute with the specification's thread through the socket below.
    const v = await inst.socket("POST", "/v1/records", {
      act: "LEARN",
      actor: "did:sync:user:alice",
      body: { enabled: true, topic: "auth_required" },
      clock: 0,
      thread: "th_engine_config",
    });
    expect([200, 201]).toContain(v.status);
    expect(v.json.id).toBe("fa034d669f7f5b3b512c0806f4a5bf325076b248b959c3375bddc25521317d79");
  });

  test("create answers 201 with the envelope; the same content again is 200 duplicate with the same id", async () => {
    const a = await inst.http("POST", "/v1/records", rec({ clock: 7, body: { n: 1 } }));
    expect(a.status).toBe(201);
    expect(a.json).toMatchObject({ object: "record", thread: "th_api", act: "KNOW", clock: 7, data_type: "SCALAR", parents: [], judged_by: null });
    expect(a.json.id).toMatch(/^[0-9a-f]{64}$/);
    const b = await inst.http("POST", "/v1/records", rec({ clock: 7, body: { n: 1 } }));
    expect(b.status).toBe(200);
    expect(b.json.duplicate).toBe(true);
    expect(b.json.id).toBe(a.json.id);
    expect(b.json.sequence).toBe(a.json.sequence);
  });

  test("same (actor, thread, clock) with other content is 409 CLOCK_CONFLICT", async () => {
    await inst.http("POST", "/v1/records", rec({ clock: 20, body: { v: "a" } }));
    const r = await inst.http("POST", "/v1/records", rec({ clock: 20, body: { v: "b" } }));
    expect(r.status).toBe(409);
    expect(r.json).toMatchObject({ object: "error", type: "invalid_request_error", code: "CLOCK_CONFLICT" });
    expect(r.json.message).toContain("clock 20");
  });

  test("an omitted clock is assigned max+1 per (actor, thread), 0 for the first", async () => {
    const first = await inst.http("POST", "/v1/records", rec({ thread: "th_clock", actor: "did:sync:user:bob" }));
    expect(first.json.clock).toBe(0);
    await inst.http("POST", "/v1/records", rec({ thread: "th_clock", actor: "did:sync:user:bob", clock: 41 }));
    const next = await inst.http("POST", "/v1/records", rec({ thread: "th_clock", actor: "did:sync:user:bob" }));
    expect(next.json.clock).toBe(42);
    const other = await inst.http("POST", "/v1/records", rec({ thread: "th_clock", actor: "did:sync:user:carol" }));
    expect(other.json.clock).toBe(0);
  });

  test("parents are stored sorted and judged_by is kept but not hashed", async () => {
    const a = await inst.http("POST", "/v1/records", rec({ clock: 30, parents: ["bb", "aa"], judged_by: "cc" }));
    expect(a.json.parents).toEqual(["aa", "bb"]);
    expect(a.json.judged_by).toBe("cc");
    const b = await inst.http("POST", "/v1/records", rec({ clock: 30, parents: ["aa", "bb"] }));
    expect(b.json.id).toBe(a.json.id);
    expect(b.json.duplicate).toBe(true);
  });

  test("a record over 1 MiB is 413 RECORD_TOO_LARGE", async () => {
    const r = await inst.http("POST", "/v1/records", rec({ body: { blob: "x".repeat(1024 * 1024 + 10) } }));
    expect(r.status).toBe(413);
    expect(r.json.code).toBe("RECORD_TOO_LARGE");
  });

  test("GET by id, 404 for an unknown id", async () => {
    const a = await inst.http("POST", "/v1/records", rec({ clock: 50 }));
    const g = await inst.http("GET", `/v1/records/${a.json.id}`);
    expect(g.status).toBe(200);
    expect(g.json).toEqual(a.json);
    const missing = await inst.http("GET", `/v1/records/${"0".repeat(64)}`);
    expect(missing.status).toBe(404);
    expect(missing.json.object).toBe("error");
  });

  test("list filters and cursor pagination in sequence order", async () => {
    for (let i = 0; i < 5; i++) await inst.http("POST", "/v1/records", rec({ thread: "th_page", act: i % 2 ? "DO" : "KNOW", clock: i }));
    const p1 = await inst.http("GET", "/v1/records?thread=th_page&limit=2");
    expect(p1.json).toMatchObject({ object: "list", has_more: true });
    expect(p1.json.data.map((r: any) => r.clock)).toEqual([0, 1]);
    const p2 = await inst.http("GET", `/v1/records?thread=th_page&limit=2&after=${p1.json.next_cursor}`);
    expect(p2.json.data.map((r: any) => r.clock)).toEqual([2, 3]);
    const p3 = await inst.http("GET", `/v1/records?thread=th_page&limit=2&after=${p2.json.next_cursor}`);
    expect(p3.json.data.map((r: any) => r.clock)).toEqual([4]);
    expect(p3.json.has_more).toBe(false);
    expect(p3.json.next_cursor).toBeNull();
    const dos = await inst.http("GET", "/v1/records?thread=th_page&act=DO");
    expect(dos.json.data.map((r: any) => r.clock)).toEqual([1, 3]);
    const byActor = await inst.http("GET", "/v1/records?actor=did:sync:user:alice&limit=1000");
    expect(byActor.json.data.every((r: any) => r.actor === "did:sync:user:alice")).toBe(true);
    for (const q of ["limit=0", "limit=1001", "limit=abc", "after=-1", "act=NOPE"]) {
      const bad = await inst.http("GET", `/v1/records?${q}`);
      expect(bad.status).toBe(400);
      expect(bad.json.code).toBe("INVALID_QUERY");
    }
  });

  test("batch: one transaction, per-record status, 1000 max", async () => {
    const r = await inst.http("POST", "/v1/records/batch", {
      records: [rec({ thread: "th_batch", clock: 0 }), rec({ thread: "th_batch", clock: 0 }), { act: "NOPE" }, rec({ thread: "th_batch", clock: 1 })],
    });
    expect(r.status).toBe(200);
    expect(r.json.object).toBe("list");
    expect(r.json.data.map((d: any) => d.status)).toEqual(["created", "duplicate", "error", "created"]);
    expect(r.json.data[2].error.code).toBe("INVALID_FIELD");
    expect(r.json.data[1].id).toBe(r.json.data[0].id);
    const tooMany = await inst.http("POST", "/v1/records/batch", { records: Array.from({ length: 1001 }, (_, i) => rec({ clock: 1000 + i })) });
    expect(tooMany.status).toBe(413);
    const notList = await inst.http("POST", "/v1/records/batch", { records: {} });
    expect(notList.status).toBe(400);
  });
});

describe("threads", () => {
  test("list, records, state", async () => {
    await inst.http("POST", "/v1/records", rec({ thread: "th_t", act: "INTEND", clock: 0, body: { goal: "g" } }));
    const intend = await inst.http("GET", "/v1/threads/th_t/records");
    const intendId = intend.json.data[0].id;
    await inst.http("POST", "/v1/records", rec({ thread: "th_t", actor: "did:sync:user:bob", clock: 3 }));
    let state = await inst.http("GET", "/v1/threads/th_t/state");
    expect(state.json).toEqual({
      thread: "th_t",
      record_count: 2,
      last_clock: 3,
      actor_clocks: { "did:sync:user:alice": 0, "did:sync:user:bob": 3 },
      status: "open",
    });
    await inst.http("POST", "/v1/records", rec({ thread: "th_t", clock: 1, body: { fulfills: intendId } }));
    state = await inst.http("GET", "/v1/threads/th_t/state");
    expect(state.json.status).toBe("closed");
    const list = await inst.http("GET", "/v1/threads?limit=1000");
    const t = list.json.data.find((x: any) => x.thread === "th_t");
    expect(t).toMatchObject({ record_count: 3, status: "closed" });
    expect(typeof t.first_seen).toBe("number");
    const missing = await inst.http("GET", "/v1/threads/th_nope/state");
    expect(missing.status).toBe(404);
    const missingRecords = await inst.http("GET", "/v1/threads/th_nope/records");
    expect(missingRecords.status).toBe(404);
  });

  test("thread ids with reserved URL characters round-trip", async () => {
    const id = "music.library/a b?c";
    await inst.http("POST", "/v1/records", rec({ thread: id, clock: 0 }));
    const r = await inst.http("GET", `/v1/threads/${encodeURIComponent(id)}/state`);
    expect(r.status).toBe(200);
    expect(r.json.thread).toBe(id);
  });
});

describe("health and status", () => {
  test("/health reports ok, version, counts, identity; /v1/status adds process facts", async () => {
    const h = await inst.http("GET", "/health", undefined, { authorization: "" });
    expect(h.status).toBe(200);
    expect(h.json).toMatchObject({ status: "ok", version: expect.any(String), home: inst.splHome });
    expect(h.json.records).toBeGreaterThan(0);
    expect(h.json.instance_did).toMatch(/^did:sync:instance:[0-9a-f]{16}$/);
    const s = await inst.socket("GET", "/v1/status");
    expect(s.json).toMatchObject({ status: "ok", pid: h.json.pid, store: `sqlite://${inst.path("hub.db")}` });
    expect(s.json.memory.rss_bytes).toBeGreaterThan(0);
    expect(s.json.log_path).toBe(inst.path("logs", "spl.log"));
  });

  test("the socket serves the same API as TCP", async () => {
    const w = await inst.socket("POST", "/v1/records", rec({ thread: "th_sock", clock: 0 }));
    expect(w.status).toBe(201);
    const r = await inst.http("GET", `/v1/records/${w.json.id}`);
    expect(r.json.id).toBe(w.json.id);
  });
});

describe("bad input never crashes the daemon or loses data", () => {
  const raw = async (body: string | Uint8Array, headers: Record<string, string> = {}, path = "/v1/records", method = "POST") => {
    const token = inst.token;
    const res = await fetch(inst.url + path, { method, body, headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers } });
    const text = await res.text();
    return { status: res.status, json: JSON.parse(text) };
  };

  test("each bad request gets a 4xx error envelope", async () => {
    const before = (await inst.http("GET", "/health")).json.records;
    const cases: [string, () => Promise<{ status: number; json: any }>, number, string][] = [
      ["malformed JSON", () => raw("{not json"), 400, "INVALID_JSON"],
      ["empty body", () => raw(""), 400, "INVALID_JSON"],
      ["JSON array", () => raw("[1,2]"), 400, "INVALID_RECORD"],
      ["wrong types", () => raw(JSON.stringify(rec({ clock: "7" }))), 400, "INVALID_FIELD"],
      ["body not object", () => raw(JSON.stringify(rec({ body: "text" }))), 400, "INVALID_FIELD"],
      ["unknown act", () => raw(JSON.stringify(rec({ act: "SHOUT" }))), 400, "INVALID_FIELD"],
      ["actor not a DID", () => raw(JSON.stringify(rec({ actor: "alice" }))), 400, "INVALID_FIELD"],
      ["unknown field", () => raw(JSON.stringify({ ...rec(), colour: "red" })), 400, "UNKNOWN_FIELD"],
      ["huge clock", () => raw(JSON.stringify(rec({ clock: 2 ** 60 }))), 400, "UNSAFE_INTEGER"],
      ["clock beyond 2^53 as a float", () => raw(JSON.stringify(rec({ clock: 1e300 }))), 400, "INVALID_FIELD"],
      ["invalid UTF-8", () => raw(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x3a, 0x31, 0x7d])), 400, "INVALID_UTF8"],
      ["deep nesting (64+)", () => raw(JSON.stringify(rec({ body: JSON.parse('{"a":'.repeat(80) + "1" + "}".repeat(80)) }))), 400, "BODY_TOO_DEEP"],
      [
        "pathological nesting",
        () => raw('{"thread":"t","actor":"did:x:a","act":"KNOW","body":{"a":' + "[".repeat(500_000) + "]".repeat(500_000) + "}}"),
        400,
        "BODY_TOO_DEEP",
      ],
      ["huge body", () => raw("x".repeat(3 * 1024 * 1024)), 413, "RECORD_TOO_LARGE"],
      ["unknown route", () => raw("{}", {}, "/v1/nope"), 404, "NOT_FOUND"],
      ["wrong method", () => raw("{}", {}, "/v1/threads"), 404, "NOT_FOUND"],
      ["batch garbage", () => raw("[", {}, "/v1/records/batch"), 400, "INVALID_JSON"],
    ];
    for (const [name, send, status, code] of cases) {
      const r = await send();
      expect({ name, status: r.status, code: r.json.code }).toEqual({ name, status, code });
      expect(r.json.object).toBe("error");
      expect(r.json.message.length).toBeGreaterThan(10);
    }
    const after = await inst.http("GET", "/health");
    expect(after.status).toBe(200);
    expect(after.json.records).toBe(before);
  });

  test("an upload the client cuts off (Content-Length or chunked) is a 400 BODY_INCOMPLETE, not an ERROR with an empty error", async () => {
    const metrics = async () => (await fetch(`${inst.url}/metrics`, { headers: { authorization: `Bearer ${inst.token}` } })).text();
    // Memory the daemon holds for request bodies it is reading: > 0 once it has this upload in hand.
    const inflight = async () => Number(/^spl_body_memory_inflight_bytes (\d+)$/m.exec(await metrics())?.[1]);
    const cutOff = async (head: string) => {
      await waitFor("no request body in flight", inflight, { until: (n) => n === 0 });
      const s = connect(inst.port, "127.0.0.1");
      await new Promise<void>((resolve, reject) => (s.once("connect", () => resolve()), s.once("error", reject)));
      s.write(head);
      // The daemon has the headers and part of the body; then the client is gone.
      await waitFor("the daemon reading the upload (spl_body_memory_inflight_bytes)", inflight, { until: (n) => n > 0 });
      s.destroy();
    };
    const start = `POST /v1/records/batch HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${inst.token}\r\nContent-Type: application/json\r\n`;
    // Answers of the batch route by status, from /metrics.
    const counted = async () => {
      const text = await metrics();
      const byStatus: Record<string, number> = {};
      for (const m of text.matchAll(/spl_http_requests_total\{method="POST",route="\/v1\/records\/batch",status="(\d+)"\} (\d+)/g)) byStatus[m[1]!] = Number(m[2]);
      return byStatus;
    };
    const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
    const before = await counted();
    await cutOff(`${start}Content-Length: 100000\r\n\r\n{"records":[${"x".repeat(1000)}`);
    await cutOff(`${start}Transfer-Encoding: chunked\r\n\r\n100\r\n{"records":[${"x".repeat(100)}`);
    const after = await waitFor("the two cut-off batches counted in spl_http_requests_total (by status)", counted, { until: (c) => total(c) >= total(before) + 2 });
    expect((after["400"] ?? 0) - (before["400"] ?? 0)).toBe(2);
    const log = readFileSync(inst.path("logs", "spl.log"), "utf8");
    expect(log.split("\n").filter((l) => l.includes('"level":"ERROR"'))).toEqual([]);
    expect((await inst.http("GET", "/health")).status).toBe(200);
  });

  test("concurrent duplicate submissions store one record and answer one 201", async () => {
    const body = rec({ thread: "th_race", clock: 0, body: { same: true } });
    const answers = await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? inst.http("POST", "/v1/records", body) : inst.socket("POST", "/v1/records", body))));
    const statuses = answers.map((a) => a.status).sort();
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(49);
    expect(new Set(answers.map((a) => a.json.id)).size).toBe(1);
    const list = await inst.http("GET", "/v1/threads/th_race/records");
    expect(list.json.data).toHaveLength(1);
  });

  test("concurrent conflicting clocks: exactly one wins, the rest are 409", async () => {
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => inst.http("POST", "/v1/records", rec({ thread: "th_race2", clock: 0, body: { i } }))));
    expect(answers.filter((a) => a.status === 201)).toHaveLength(1);
    expect(answers.filter((a) => a.status === 409)).toHaveLength(19);
  });
});

// Reliability suite (runs with `bun run test`): repeated kill -9 of the compiled daemon under
// mixed single and batch ingest, with every acknowledged id checked after each restart; a
// barrage of bad input that must each get a 4xx error envelope, write nothing, and leave the
// daemon serving; a home on a disk that fills up; rules with backtracking regexes; many large
// bodies at once against the memory budget. Prints its figures.
import { afterAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { answerOf, Instance, isAlive, processGone, waitFor } from "./harness";
import { mountTmpfs, tmpfsUnavailable, unmountAll } from "./tmpfs";

const TRIALS = 20;
const instances: Instance[] = [];
afterAll(async () => {
  for (const inst of instances) await inst.stop();
  unmountAll();
});

/** Every record id the daemon holds, read through the socket in pages. */
async function storedIds(inst: Instance): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let after = ""; ; ) {
    const page = await inst.socket("GET", `/v1/records?limit=1000${after ? `&after=${after}` : ""}`);
    if (page.status !== 200) throw new Error(`listing records answered ${page.status}`);
    for (const r of page.json.data) ids.add(r.id);
    if (!page.json.has_more) return ids;
    after = page.json.next_cursor;
  }
}

describe("kill -9 under load", () => {
  test(`${TRIALS} kill -9 trials: every acknowledged record is there after the restart`, async () => {
    const inst = new Instance();
    instances.push(inst);
    let pid = await inst.start();
    const auth = { "content-type": "application/json", authorization: `Bearer ${inst.token}` };
    const acked = new Set<string>();
    let single = 0;
    let batched = 0;
    let lost: string[] = [];

    for (let trial = 0; trial < TRIALS; trial++) {
      let running = true;
      let ackedThisTrial = 0;
      const ack = (id: string) => {
        acked.add(id);
        ackedThisTrial++;
      };
      // Single records over TCP and the socket, 1-50 record batches over TCP, all at once.
      const singleClient = async (c: number, viaSocket: boolean) => {
        for (let i = 0; running; i++) {
          const body = JSON.stringify({ thread: `th_rel_${c % 3}`, actor: `did:sync:user:c${c}`, act: "KNOW", body: { trial, c, i } });
          try {
            const res = viaSocket
              ? await fetch("http://localhost/v1/records", { method: "POST", headers: auth, body, unix: inst.path("run", "spl.sock") } as RequestInit)
              : await fetch(`${inst.url}/v1/records`, { method: "POST", headers: auth, body });
            if (res.status !== 201) throw new Error(`ingest answered ${res.status}: ${await res.text()}`);
            ack(((await res.json()) as { id: string }).id);
            single++;
          } catch (err) {
            if (running) throw err;
            return;
          }
        }
      };
      const batchClient = async (c: number) => {
        for (let i = 0; running; i++) {
          const size = 1 + ((trial * 7 + i * 13) % 50);
          const records = Array.from({ length: size }, (_, j) => ({ thread: `th_rel_b${j % 4}`, actor: `did:sync:user:b${c}`, act: "KNOW", body: { trial, c, i, j } }));
          try {
            const res = await fetch(`${inst.url}/v1/records/batch`, { method: "POST", headers: auth, body: JSON.stringify({ records }) });
            if (res.status !== 200) throw new Error(`batch answered ${res.status}: ${await res.text()}`);
            for (const r of ((await res.json()) as { data: { id: string; status: string }[] }).data) {
              if (r.status !== "created") throw new Error(`batch item ${r.status}`);
              ack(r.id);
              batched++;
            }
          } catch (err) {
            if (running) throw err;
            return;
          }
        }
      };
      const clients = [0, 1, 2, 3, 4, 5].map((c) => singleClient(c, c % 2 === 1)).concat([batchClient(0), batchClient(1)]);
      // Kill at a different point each trial, always with requests in flight.
      const target = 100 + ((trial * 97) % 400);
      await Promise.race([waitFor(`${target} acknowledged writes in trial ${trial}`, () => ackedThisTrial, { until: (n) => n >= target }), Promise.all(clients)]);
      process.kill(pid, "SIGKILL");
      running = false;
      await Promise.all(clients);
      await processGone(pid);

      pid = await inst.start();
      const stored = await storedIds(inst);
      lost = [...acked].filter((id) => !stored.has(id));
      expect({ trial, lost }).toEqual({ trial, lost: [] });
      // The counters the daemon reports agree with what it lists.
      const health = await inst.socket("GET", "/health");
      expect(health.json.records).toBe(stored.size);
    }
    console.log(`reliability: ${TRIALS} kill -9 trials, ${acked.size} acknowledged (${single} single, ${batched} in batches), ${lost.length} lost`);
    expect(acked.size).toBeGreaterThanOrEqual(TRIALS * 100);
    expect(single).toBeGreaterThan(0);
    expect(batched).toBeGreaterThan(0);
  }, 240_000);
});

describe("bad-input barrage", () => {
  test("every bad request gets a 4xx envelope, writes nothing, and the daemon keeps serving", async () => {
    const inst = new Instance();
    instances.push(inst);
    const pid = await inst.start();
    const token = inst.token!;
    const rec = (over: Record<string, unknown> = {}) => ({ thread: "th_bad", actor: "did:sync:user:alice", act: "KNOW", body: { text: "x" }, ...over });
    const recText = '"thread":"th_bad","actor":"did:sync:user:alice","act":"KNOW"';

    // Tokens the barrage presents: revoked, minted for another env, about to expire.
    const mk = async (body: Record<string, unknown>) => (await inst.http("POST", "/v1/tokens", body)).json;
    const revoked = await mk({ scopes: ["records:read"] });
    expect((await inst.http("POST", `/v1/tokens/${revoked.id}/revoke`, {})).status).toBe(200);
    const prod = await mk({ env: "prod", scopes: ["records:write"] });
    // Far enough ahead that a slow creation is not refused as already past; waited for below.
    const expiring = await mk({ scopes: ["records:read"], expires_at: Math.floor(Date.now() / 1000) + 5 });
    const readOnly = await mk({ scopes: ["records:read"] });
    expect((await inst.http("POST", "/v1/records", rec({ body: { baseline: true } }))).status).toBe(201);

    const before = await storedIds(inst);
    const healthBefore = (await inst.http("GET", "/health")).json.records;

    type Send = { name: string; path?: string; method?: string; body?: string | Uint8Array; headers?: Record<string, string> };
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    const deep = (n: number) => `{${recText},"body":{"d":${"[".repeat(n)}${"]".repeat(n)}}}`;
    const cases: Send[] = [
      // malformed JSON
      { name: "truncated object", body: "{" },
      { name: "missing value", body: '{"a":}' },
      { name: "trailing comma", body: "[1,]" },
      { name: "bare word", body: "nul" },
      { name: "empty body", body: "" },
      { name: "two documents", body: "{} {}" },
      { name: "single quotes", body: "{'thread':'t'}" },
      { name: "batch garbage", path: "/v1/records/batch", body: "[" },
      // numbers JSON.parse would change
      { name: "huge clock", body: `{${recText},"body":{},"clock":9007199254740993}` },
      { name: "huge body integer", body: `{${recText},"body":{"n":123456789012345678901234567890}}` },
      { name: "huge negative integer", body: `{${recText},"body":{"n":-9007199254740993}}` },
      { name: "infinite float", body: `{${recText},"body":{"n":1e400}}` },
      { name: "float past 2^53", body: `{${recText},"body":{"n":9007199254740993.0}}` },
      { name: "float underflowing to 0", body: `{${recText},"body":{"n":1e-400}}` },
      { name: "more digits than a double keeps", body: `{${recText},"body":{"n":0.10000000000000001}}` },
      { name: "inexact float in a batch", path: "/v1/records/batch", body: `{"records":[{${recText},"body":{"n":1.12345678901234567890}}]}` },
      { name: "huge integer in a batch", path: "/v1/records/batch", body: `{"records":[{${recText},"body":{"n":99999999999999999999}}]}` },
      // duplicate keys
      { name: "duplicate thread", body: `{${recText},"thread":"th_other","body":{}}` },
      { name: "duplicate body key", body: `{${recText},"body":{"a":1,"a":2}}` },
      { name: "escaped duplicate key", body: `{${recText},"body":{"a":1,"\\u0061":2}}` },
      { name: "duplicate records key", path: "/v1/records/batch", body: `{"records":[],"records":[{${recText},"body":{}}]}` },
      // Unicode
      { name: "escaped lone surrogate", body: `{${recText},"body":{"s":"\\ud800"}}` },
      { name: "escaped reversed pair", body: `{${recText},"body":{"s":"\\udc00\\ud800"}}` },
      { name: "invalid UTF-8 byte", body: new Uint8Array([...new TextEncoder().encode(`{${recText},"body":{"s":"`), 0xff, ...new TextEncoder().encode('"}}')]) },
      { name: "overlong UTF-8", body: new Uint8Array([...new TextEncoder().encode(`{${recText},"body":{"s":"`), 0xc0, 0xaf, ...new TextEncoder().encode('"}}')]) },
      { name: "UTF-8 encoded surrogate", body: new Uint8Array([...new TextEncoder().encode(`{${recText},"body":{"s":"`), 0xed, 0xa0, 0x80, ...new TextEncoder().encode('"}}')]) },
      // nesting
      { name: "body deeper than 64", body: deep(70) },
      { name: "pathological nesting", body: deep(200_000) },
      // wrong types
      { name: "record is an array", body: "[]" },
      { name: "clock as string", body: JSON.stringify(rec({ clock: "1" })) },
      { name: "negative clock", body: JSON.stringify(rec({ clock: -1 })) },
      { name: "fractional clock", body: JSON.stringify(rec({ clock: 1.5 })) },
      { name: "body is a string", body: JSON.stringify(rec({ body: "text" })) },
      { name: "actor not a DID", body: JSON.stringify(rec({ actor: "alice" })) },
      { name: "lowercase act", body: JSON.stringify(rec({ act: "know" })) },
      { name: "empty thread", body: JSON.stringify(rec({ thread: "" })) },
      { name: "parents not strings", body: JSON.stringify(rec({ parents: [1] })) },
      { name: "unknown field", body: JSON.stringify({ ...rec(), colour: "red" }) },
      { name: "wrong claimed id", body: JSON.stringify({ ...rec({ clock: 5 }), id: "0".repeat(64) }) },
      { name: "batch without records", path: "/v1/records/batch", body: '{"recs":[]}' },
      { name: "batch records not a list", path: "/v1/records/batch", body: '{"records":{}}' },
      { name: "reserved thread th_auth", body: JSON.stringify(rec({ thread: "th_auth", act: "LEARN" })) },
      { name: "token scopes not a list", path: "/v1/tokens", body: '{"scopes":"admin"}' },
      { name: "token expiry in the past", path: "/v1/tokens", body: '{"expires_at":1}' },
      // oversized
      { name: "record over 1 MiB", body: JSON.stringify(rec({ body: { s: "x".repeat(1_200_000) } })) },
      { name: "single body over the limit", body: "x".repeat(3 * 1024 * 1024) },
      { name: "batch over 1000 records", path: "/v1/records/batch", body: JSON.stringify({ records: Array.from({ length: 1001 }, (_, i) => rec({ body: { i } })) }) },
      { name: "batch body over 64 MiB", path: "/v1/records/batch", body: new Uint8Array(65 * 1024 * 1024).fill(0x20) },
      // query parameters
      ...["limit=0", "limit=1001", "limit=abc", "limit=0x10", "limit=1e2", "after=-1", "after=0x10", "after=1e3", "after=%2B1", "after=1.0", "limit=1&limit=2", "thread=a&thread=b", "act=SHOUT"].map(
        (q): Send => ({ name: `GET ?${q}`, method: "GET", path: `/v1/records?${q}` }),
      ),
      { name: "GET threads ?after=0x10", method: "GET", path: "/v1/threads?after=0x10" },
      // tokens
      { name: "no bearer", headers: { authorization: "" } },
      { name: "basic auth", headers: { authorization: "Basic dXNlcjpwYXNz" } },
      { name: "bearer without a token", headers: { authorization: "Bearer" } },
      { name: "not an spl token", headers: bearer("hello") },
      { name: "unknown token id", headers: bearer(`spl_local_0123456789abcdef_${"a".repeat(48)}`) },
      { name: "wrong secret", headers: bearer(token.replace(/.$/, (c) => (c === "0" ? "1" : "0"))) },
      { name: "revoked token", headers: bearer(revoked.token) },
      { name: "wrong env segment", headers: bearer(prod.token.replace("spl_prod_", "spl_local_")) },
      { name: "token without the write scope", headers: bearer(readOnly.token) },
      // routes
      { name: "unknown route", path: "/v1/nope" },
      { name: "wrong method", method: "DELETE", path: "/v1/records" },
    ];

    const refused = async (c: Send) => {
      const method = c.method ?? "POST";
      const body = method === "GET" ? undefined : (c.body ?? JSON.stringify(rec({ body: { case: c.name } })));
      const res = await fetch(inst.url + (c.path ?? "/v1/records"), {
        method,
        body,
        headers: { "content-type": "application/json", ...bearer(token), ...c.headers },
      });
      return { name: c.name, ...(await answerOf(res)) };
    };
    const check = (r: Awaited<ReturnType<typeof refused>>) => {
      expect({ name: r.name, fourXX: r.status >= 400 && r.status < 500, text: r.status >= 400 && r.status < 500 ? "" : r.text }).toEqual({ name: r.name, fourXX: true, text: "" });
      expect({ name: r.name, object: r.json?.object, type: typeof r.json?.type, code: typeof r.json?.code }).toEqual({ name: r.name, object: "error", type: "string", code: "string" });
      expect({ name: r.name, oneLine: typeof r.json.message === "string" && r.json.message.length > 10 && !r.json.message.includes("\n") }).toEqual({ name: r.name, oneLine: true });
    };
    for (const c of cases) check(await refused(c));
    // The expiring token is refused once its time has passed (waited for, not timed; a read, so
    // the wait itself writes nothing).
    const expired = await waitFor("the expiring token to be refused (401)", () => refused({ name: "expired token", method: "GET", path: "/v1/records?limit=1", headers: bearer(expiring.token) }), { show: (r) => r.status, until: (r) => r.status === 401 });
    check(expired);
    expect(expired.json.message).toContain("expired at");

    expect(isAlive(pid)).toBe(true);
    const health = await inst.http("GET", "/health");
    expect(health.status).toBe(200);
    expect(health.json.records).toBe(healthBefore);
    expect([...(await storedIds(inst))].sort()).toEqual([...before].sort());
    // Still serving writes after all that; numbers a double carries exactly are stored as sent.
    expect((await inst.http("POST", "/v1/records", rec({ body: { after: true } }))).status).toBe(201);
    const exact = await inst.http("POST", "/v1/records", `{${recText},"body":{"a":0.1,"b":1e300,"c":-2.5E-10,"d":5e-324,"e":9007199254740991}}`);
    expect(exact.status).toBe(201);
    expect(exact.json.body).toEqual({ a: 0.1, b: 1e300, c: -2.5e-10, d: 5e-324, e: 9007199254740991 });
    console.log(`reliability: bad-input barrage, ${cases.length + 1} requests refused with 4xx and an error envelope, 0 records written by them`);
  }, 120_000);
});

/** POST with a bound on the wait, so a daemon that stalls fails the test with what it was doing. */
async function post(inst: Instance, path: string, body: unknown, waitMs = 30_000) {
  const res = await fetch(inst.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${inst.token}` },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(waitMs),
  }).catch((err) => {
    throw new Error(`POST ${path} got no answer within ${waitMs / 1000} s: ${err}`);
  });
  return answerOf(res);
}

/** Polls GET /health until stopped; every answer must be a 200 within 10 s. */
function healthWatch(inst: Instance) {
  const seen = { asked: 0, ok: 0, slowestMs: 0, problems: [] as string[] };
  let on = true;
  const done = (async () => {
    while (on) {
      seen.asked++;
      try {
        const t0 = performance.now();
        const r = await fetch(`${inst.url}/health`, { signal: AbortSignal.timeout(10_000) });
        await r.text();
        seen.slowestMs = Math.max(seen.slowestMs, performance.now() - t0);
        if (r.status === 200) seen.ok++;
        else seen.problems.push(`status ${r.status}`);
      } catch (err) {
        seen.problems.push(String(err));
      }
      await Bun.sleep(100);
    }
  })();
  return { seen, stop: async () => ((on = false), await done, seen) };
}

/** Fills the filesystem holding dir with one file until ENOSPC; returns its path. */
function fillUp(dir: string): string {
  const path = join(dir, "filler-rest");
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(256 * 1024, 7);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    closeSync(fd);
  }
  return path;
}

const diskFull = tmpfsUnavailable ? test.skip : test;
if (tmpfsUnavailable) console.log(`reliability: disk-full cases skipped: ${tmpfsUnavailable}`);

describe("a full disk", () => {
  diskFull("home on a 20 MiB tmpfs filled with 3 KB records: 507 STORAGE_FULL, /health and --stop keep working, writes resume once space returns", async () => {
    const inst = new Instance();
    instances.push(inst);
    mountTmpfs(inst.splHome, "20m");
    const pid = await inst.start();
    // Room the test can give back later: a file of its own on the same filesystem.
    const filler = join(inst.splHome, "filler");
    writeFileSync(filler, Buffer.alloc(3 * 1024 * 1024, 1));
    const watch = healthWatch(inst);
    const rec = (i: number) => ({ thread: "th_full", actor: "did:sync:user:filler", act: "KNOW", body: { i, pad: "p".repeat(3000) } });

    const acked: string[] = [];
    let full: any = null;
    const t0 = performance.now();
    for (let i = 0; !full && i < 20_000; i++) {
      const r = await post(inst, "/v1/records", rec(i));
      if (r.status === 201) acked.push(r.json.id);
      else if (r.status === 507) full = r.json;
      else throw new Error(`ingest answered ${r.status} before the disk was full: ${r.text}`);
    }
    const fillMs = performance.now() - t0;
    expect(full).toMatchObject({ object: "error", type: "api_error", code: "STORAGE_FULL", filesystem: inst.splHome });
    expect(full.message).toContain(`the filesystem mounted at ${inst.splHome} (tmpfs) is full`);
    expect(full.message).toContain("free space on");

    // Writes go on failing cleanly (never a 500, never a stall) until log lines cannot be written either.
    // A write may still be acknowledged now and then: a checkpoint that resets the WAL hands its
    // pages back to SQLite. Such a record is counted with the others and must be in the store.
    let refused = 1;
    const otherAnswers: unknown[] = [];
    const logFailing = await waitFor(
      "the log to fail too while writes keep answering 507 (spl status storage)",
      async () => {
        const r = await post(inst, "/v1/records", rec(-1 - refused - acked.length));
        if (r.status === 201) acked.push(r.json.id);
        else if (r.status === 507 && r.json?.code === "STORAGE_FULL") refused++;
        else otherAnswers.push({ status: r.status, code: r.json?.code });
        return JSON.parse((await inst.spl(["status", "-o", "json"])).stdout).storage;
      },
      { timeoutMs: 60_000, until: (st) => st.log.ok === false },
    );
    expect(otherAnswers).toEqual([]); // every write on the full disk: 507 STORAGE_FULL or acknowledged
    expect(logFailing.last_error.during).toMatch(/^(write|checkpoint)$/);
    expect(logFailing.log.failed_writes).toBeGreaterThan(0);
    expect(logFailing.log.last_error.message).toContain("ENOSPC");
    const status = await inst.spl(["status"]);
    expect(status.stdout).toMatch(/^Log: +cannot be written since \S+: log .*ENOSPC/m);
    const doctor = JSON.parse((await inst.spl(["doctor", "-o", "json"])).stdout).checks.find((c: any) => c.name === "storage");
    expect(doctor.status).toBe("fail");
    const metrics = await fetch(`${inst.url}/metrics`, { headers: { authorization: `Bearer ${inst.token}` } }).then((r) => r.text());
    expect(metrics).toContain("spl_log_write_ok 0");
    // Reported once on stderr (daemon.out is on the full disk too: at most the one line got there).
    const out = readFileSync(inst.path("logs", "daemon.out"), "utf8");
    expect(out.split("spl: cannot write log").length - 1).toBeLessThanOrEqual(1);

    // Space comes back: the next writes succeed without a restart, and the log catches up.
    rmSync(filler);
    const t1 = performance.now();
    let afterFree = 0;
    await waitFor(
      "a write to succeed once space is back",
      async () => {
        const r = await post(inst, "/v1/records", rec(100_000 + afterFree++));
        if (r.status === 201) acked.push(r.json.id);
        return r.status;
      },
      { timeoutMs: 60_000, until: (s) => s === 201 },
    );
    const resumeMs = performance.now() - t1;
    for (let i = 0; i < 20; i++) {
      const r = await post(inst, "/v1/records", { ...rec(200_000 + i), body: { i } });
      expect(r.status).toBe(201);
      acked.push(r.json.id);
    }
    await waitFor("the log to be written again (spl status storage.log)", async () => JSON.parse((await inst.spl(["status", "-o", "json"])).stdout).storage.log, { until: (log) => log.ok === true });
    expect(readFileSync(inst.path("logs", "spl.log"), "utf8")).toContain("the log file could not be written for a while");

    // Full again, and `spl serve --stop` still stops it.
    const rest = fillUp(inst.splHome);
    // What is left in the WAL's reused pages may still take a few.
    const notFull: number[] = [];
    await waitFor(
      "writes to answer 507 once the disk is full again",
      async () => {
        const r = await post(inst, "/v1/records", rec(300_000 + acked.length));
        if (r.status === 201) acked.push(r.json.id);
        else if (r.status !== 507) notFull.push(r.status);
        return r.status;
      },
      { timeoutMs: 60_000, until: (s) => s === 507 },
    );
    expect(notFull).toEqual([]); // a write is acknowledged (201) or refused 507, nothing else
    const seen = await watch.stop();
    expect({ healthProblems: seen.problems }).toEqual({ healthProblems: [] });
    const stop = await inst.spl(["serve", "--stop"]);
    expect({ code: stop.code, stderr: stop.stderr }).toEqual({ code: 0, stderr: "" });
    expect(isAlive(pid)).toBe(false);

    // Every acknowledged record is in the store.
    rmSync(rest);
    const db = new Database(inst.path("hub.db"), { readonly: true });
    const stored = new Set((db.query("SELECT id FROM records").all() as { id: string }[]).map((r) => r.id));
    db.close();
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
    console.log(
      `reliability: disk full: ${acked.length} records acknowledged (${full ? "filled 20 MiB in " + Math.round(fillMs) + " ms" : ""}), ${refused} writes answered 507 STORAGE_FULL, ` +
        `first write ${Math.round(resumeMs)} ms after space returned (${afterFree} tries), /health answered ${seen.ok}/${seen.asked}, --stop on a full disk exit 0, 0 lost`,
    );
  }, 180_000);
});

describe("rules with backtracking regexes", () => {
  const ADMIN = "did:sync:agent:admin";
  const PROBE = "did:sync:agent:probe";
  const TOKEN_RE = /spl_[a-z0-9]+_[a-z0-9]+_[A-Za-z0-9]+/;
  // 46 characters that `^(\w+\s?)*$` can split into words in exponentially many ways before the "!" refutes them all.
  const STALL_GOAL = `${"a".repeat(45)}!`;
  const WORDS_GOAL = "fix the flaky build in the ingest path today x"; // 46 characters, words only

  async function tcp(inst: Instance, method: string, path: string, token: string, body?: unknown, waitMs = 60_000) {
    const res = await fetch(inst.url + path, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(waitMs),
    });
    return answerOf(res);
  }

  async function reconcilerCounts(inst: Instance) {
    return (await tcp(inst, "GET", "/v1/dispatches?limit=0", inst.token!)).json.reconciler;
  }

  test("a routing rule `^(\\w+\\s?)*$` over 30 INTENDs with a 46-character goal: requests keep being answered, and words-only goals still route", async () => {
    expect(STALL_GOAL.length).toBe(46);
    expect(WORDS_GOAL.length).toBe(46);
    const inst = new Instance();
    instances.push(inst);
    await inst.start();
    const token = inst.token!;
    const target = "did:sync:agent:words";
    const ruleBody = { topic: "routing_rule", name: "words-only", target, priority: 10, expression: 'record.body.goal.matches("^(\\\\w+\\\\s?)*$")' };
    expect((await tcp(inst, "POST", "/v1/config/rules", token, ruleBody)).status).toBe(201);
    const intends = (goal: string, tag: string) => ({ records: Array.from({ length: 30 }, (_, i) => ({ thread: `th_re_${tag}_${i}`, actor: "did:sync:user:alice", act: "INTEND", body: { goal, i } })) });

    const before = await reconcilerCounts(inst);
    // Routing runs on the daemon's event loop after the commit: /health, asked every 100 ms, must
    // be answered within 10 s each time (before linear-time matching it waited ~19 s).
    const watch = healthWatch(inst);
    const t0 = performance.now();
    const batch = await tcp(inst, "POST", "/v1/records/batch", token, intends(STALL_GOAL, "stall"));
    expect(batch.status).toBe(200);
    const routed = await waitFor("30 routing decisions on the stalling goals (reconciler counts)", () => reconcilerCounts(inst), { timeoutMs: 120_000, until: (c) => c.decided - before.decided >= 30 });
    const routeMs = performance.now() - t0;
    const seen = await watch.stop();
    expect({ healthProblems: seen.problems }).toEqual({ healthProblems: [] });
    expect(routed.dispatched - before.dispatched).toBe(0); // "!" is no word: the rule does not match, nothing routed to it

    // RE2 semantics still match what they should: words-only goals go to the target.
    expect((await tcp(inst, "POST", "/v1/records/batch", token, intends(WORDS_GOAL, "words"))).status).toBe(200);
    await waitFor("30 dispatches of the words-only goals (reconciler counts)", () => reconcilerCounts(inst), { timeoutMs: 60_000, until: (c) => c.dispatched - before.dispatched >= 30 });
    console.log(`reliability: regex routing rule ^(\\w+\\s?)*$, 30 INTENDs with a 46-character goal: routed in ${Math.round(routeMs)} ms, /health answered ${seen.ok}/${seen.asked} meanwhile, slowest in ${Math.round(seen.slowestMs)} ms`);
  }, 180_000);

  test("a deny rule `(a+)+$|!` denies \"a\"*40+\"!\" (never fails open); patterns RE2 cannot run are refused when written", async () => {
    const inst = new Instance();
    instances.push(inst);
    await inst.spl(["init"]);
    await inst.start();
    const mint = async (actor: string) => {
      const r = await inst.spl(["token", "create", "--name", actor.split(":").pop()!, "--actor", actor, "--scopes", "admin"]);
      return TOKEN_RE.exec(r.stdout)![0];
    };
    const admin = await mint(ADMIN);
    const probe = await mint(PROBE);
    const rule = async (name: string, action: string, priority: number, expression: string) => tcp(inst, "POST", "/v1/config/rules", admin, { topic: "permission_rule", name, action, priority, expression });
    expect((await rule("admin-all", "allow", 20000, `current_actor() == "${ADMIN}"`)).status).toBe(201);
    expect((await rule("no-aaa", "deny", 200, `current_actor() == "${PROBE}" && record.body.goal.matches("(a+)+$|!")`)).status).toBe(201);
    expect((await rule("probe", "allow", 100, `current_actor() == "${PROBE}"`)).status).toBe(201);
    const enable = await tcp(inst, "POST", "/v1/records", admin, { thread: "th_engine_config", actor: ADMIN, act: "LEARN", body: { topic: "permissions_enabled", enabled: true } });
    expect(enable.status).toBe(201);

    const write = (goal: string) => tcp(inst, "POST", "/v1/records", probe, { thread: "th_re_deny", actor: PROBE, act: "DO", body: { goal } });
    const t0 = performance.now();
    const long = await write(`${"a".repeat(40)}!`);
    const longMs = performance.now() - t0;
    expect({ status: long.status, code: long.json?.code }).toEqual({ status: 403, code: "PERMISSION_DENIED" });
    expect(long.json.message).toContain('deny rule "no-aaa"');
    expect((await write("aaaa!")).status).toBe(403);
    expect((await write(`${"a".repeat(40)}b`)).status).toBe(201); // no "!" and no trailing a: allowed

    // Backreferences and lookaround have no linear-time match: refused at write time, saying so.
    for (const pattern of ["(a)\\\\1", "(?=a)b", "(?<!a)b"]) {
      const r = await rule(`bad-${pattern.length}`, "deny", 150, `record.body.goal.matches("${pattern}")`);
      expect({ pattern, status: r.status, code: r.json?.code }).toEqual({ pattern, status: 400, code: "INVALID_RULE" });
      expect(r.json.message).toMatch(/RE2 syntax/);
    }
    console.log(`reliability: regex deny rule (a+)+$|!, "a"*40+"!" denied in ${Math.round(longMs)} ms; backreference and lookaround patterns refused when written`);
  }, 120_000);
});

describe("memory for bodies in flight", () => {
  /** VmHWM / VmRSS of a process in bytes, from /proc/<pid>/status. */
  const memory = (pid: number) => {
    const st = readFileSync(`/proc/${pid}/status`, "utf8");
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(st)![1]) * 1024;
    return { hwm: kib("VmHWM"), rss: kib("VmRSS") };
  };
  const mib = (n: number) => Math.round(n / (1024 * 1024));

  test("24 concurrent 64 MiB batches, with Content-Length and then chunked: 503 + Retry-After past the budget, admitted ones finish, peak RSS under budget + baseline", async () => {
    const inst = new Instance();
    instances.push(inst);
    const pid = await inst.start();
    const budget = 1024 * 1024 * 1024; // the documented default of [server] max_body_memory
    const baseline = memory(pid).hwm;
    // One batch at the route's 64 MiB limit; every request sends the same records (stored once).
    const pad = "x".repeat(67_000);
    const body = new TextEncoder().encode(JSON.stringify({ records: Array.from({ length: 1000 }, (_, i) => ({ thread: "th_big", actor: "did:sync:user:big", act: "KNOW", body: { i, pad } })) }));
    expect(body.length).toBeGreaterThan(64_000_000);
    expect(body.length).toBeLessThanOrEqual(64 * 1024 * 1024);

    const wave = async (chunked: boolean) => {
      const answers = await Promise.all(
        Array.from({ length: 24 }, async () => {
          const res = await fetch(`${inst.url}/v1/records/batch`, {
            method: "POST",
            headers: { authorization: `Bearer ${inst.token}`, "content-type": "application/json" },
            body: chunked ? new Blob([body]).stream() : body,
          });
          return { ...(await answerOf(res)), retryAfter: res.headers.get("retry-after") };
        }),
      );
      const ok = answers.filter((a) => a.status === 200);
      const busy = answers.filter((a) => a.status === 503);
      expect({ chunked, other: answers.filter((a) => a.status !== 200 && a.status !== 503).map((a) => `${a.status} ${a.text.slice(0, 200)}`) }).toEqual({ chunked, other: [] });
      expect(ok.length).toBeGreaterThan(0);
      for (const a of ok) expect(a.json.data.length).toBe(1000);
      for (const b of busy) {
        expect({ code: b.json.code, retryAfter: b.retryAfter }).toEqual({ code: "BODY_MEMORY_BUSY", retryAfter: "1" });
        expect(b.json.message).toContain("max_body_memory");
      }
      return { ok: ok.length, busy: busy.length };
    };
    const withLength = await wave(false);
    const chunked = await wave(true);
    const peak = memory(pid).hwm;
    // Once the admitted bodies have finished, a refused client that retries gets in.
    const retry = await fetch(`${inst.url}/v1/records/batch`, { method: "POST", headers: { authorization: `Bearer ${inst.token}`, "content-type": "application/json" }, body });
    expect(retry.status).toBe(200);
    await retry.text();
    expect((await inst.http("GET", "/health")).status).toBe(200);
    const metrics = await fetch(`${inst.url}/metrics`, { headers: { authorization: `Bearer ${inst.token}` } }).then((r) => r.text());
    expect(metrics).toContain(`spl_body_memory_refused_total ${withLength.busy + chunked.busy}\n`);
    expect(metrics).toContain(`spl_body_memory_limit_bytes ${budget}\n`);
    console.log(
      `reliability: memory budget ${mib(budget)} MiB, 24 concurrent 64 MiB batches: Content-Length ${withLength.ok} admitted / ${withLength.busy} answered 503, chunked ${chunked.ok} / ${chunked.busy}; ` +
        `daemon peak RSS ${mib(peak)} MiB (baseline ${mib(baseline)} MiB, bound ${mib(budget + baseline)} MiB)`,
    );
    expect(peak).toBeLessThanOrEqual(budget + baseline);
  }, 300_000);

  test("[server] max_body_memory of the wrong shape stops the start with the fix", async () => {
    const inst = new Instance();
    expect((await inst.spl(["init"])).code).toBe(0);
    writeFileSync(inst.path("config.toml"), readFileSync(inst.path("config.toml"), "utf8").replace(/^\[server\]$/m, '[server]\nmax_body_memory = "1G"'));
    const bad = await inst.spl(["serve", "--port", String(inst.port)]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("[server] max_body_memory must be an integer number of bytes, at least 1048576 (1 MiB) — edit the file and try again");
  });
});

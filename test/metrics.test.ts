// GET /metrics on the compiled binary (issue 16, item 1): scraped and parsed with a Prometheus
// text parser; counters follow what the daemon did; auth like /v1/* unless [metrics] public.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync } from "node:fs";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Instance, waitFor } from "./harness";

const ADMIN = "did:sync:agent:admin";
const TOKEN_RE = /spl_[a-z0-9]+_[a-z0-9]+_[A-Za-z0-9]+/;

type Family = { name: string; type: string; metrics: { value?: string; labels?: Record<string, string>; buckets?: Record<string, string>; count?: string; sum?: string }[] };

let lastScrape = "";
async function scrape(inst: Instance, token = inst.token): Promise<Map<string, Family>> {
  const res = await fetch(`${inst.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/plain; version=0.0.4");
  lastScrape = await res.text();
  const families = parsePrometheusTextFormat(lastScrape) as Family[];
  return new Map(families.map((f) => [f.name, f]));
}

const sample = (fams: Map<string, Family>, name: string, labels: Record<string, string> = {}) =>
  fams.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
const value = (fams: Map<string, Family>, name: string, labels?: Record<string, string>) => Number(sample(fams, name, labels)?.value);

describe("GET /metrics", () => {
  const inst = new Instance();
  beforeAll(async () => {
    await inst.spl(["init"]);
    await inst.start();
  });
  afterAll(async () => {
    await inst.stop();
  });

  test("over TCP it needs a token (401 with the error envelope), like /v1/*", async () => {
    const r = await inst.http("GET", "/metrics", undefined, { authorization: "" });
    expect(r.status).toBe(401);
    expect(r.json).toMatchObject({ object: "error", code: "AUTH_REQUIRED" });
  });

  test("parses as Prometheus text and has every series family SPEC 17 lists", async () => {
    const fams = await scrape(inst);
    const want: [string, string][] = [
      ["spl_http_requests_total", "COUNTER"],
      ["spl_http_request_duration_seconds", "HISTOGRAM"],
      ["spl_records", "GAUGE"],
      ["spl_threads", "GAUGE"],
      ["spl_permission_decisions_total", "COUNTER"],
      ["spl_backup_last_success", "GAUGE"],
      ["spl_dispatches", "GAUGE"],
      ["spl_reconciler_decisions_total", "COUNTER"],
      ["process_resident_memory_bytes", "GAUGE"],
      ["process_cpu_seconds_total", "COUNTER"],
      ["process_start_time_seconds", "GAUGE"],
    ];
    for (const [name, type] of want) expect({ name, type: fams.get(name)?.type }).toEqual({ name, type });
    expect(value(fams, "process_resident_memory_bytes")).toBeGreaterThan(0);
  });

  test("ingest is counted by route and status, with a latency histogram per route; gauges match spl status", async () => {
    const before = await scrape(inst);
    const created0 = value(before, "spl_http_requests_total", { route: "POST /v1/records", status: "201" }) || 0;
    for (let i = 0; i < 5; i++) expect((await inst.http("POST", "/v1/records", { thread: "th_metrics", actor: "did:sync:user:tester", act: "KNOW", body: { i } })).status).toBe(201);
    expect((await inst.http("POST", "/v1/records", "{not json")).status).toBe(400);
    expect((await inst.http("GET", "/v1/no-such-route")).status).toBe(404);

    const fams = await scrape(inst);
    expect(value(fams, "spl_http_requests_total", { route: "POST /v1/records", status: "201" })).toBe(created0 + 5);
    expect(value(fams, "spl_http_requests_total", { route: "POST /v1/records", status: "400" })).toBeGreaterThanOrEqual(1);
    expect(value(fams, "spl_http_requests_total", { route: "none", status: "404" })).toBeGreaterThanOrEqual(1);

    // The parser folds a histogram's label sets into one; read the per-route series untyped.
    const raw = parsePrometheusTextFormat(lastScrape.replace(/^# TYPE spl_http_request_duration_seconds histogram$/m, "")) as Family[];
    const series = (suffix: string) => raw.filter((f) => f.name === `spl_http_request_duration_seconds${suffix}`).flatMap((f) => f.metrics).filter((m) => m.labels?.route === "POST /v1/records");
    const buckets = series("_bucket").map((m) => [m.labels!.le === "+Inf" ? Infinity : Number(m.labels!.le), Number(m.value)] as const);
    expect(buckets.length).toBeGreaterThan(5);
    for (let i = 1; i < buckets.length; i++) {
      expect(buckets[i]![0]).toBeGreaterThan(buckets[i - 1]![0]);
      expect(buckets[i]![1]).toBeGreaterThanOrEqual(buckets[i - 1]![1]); // cumulative
    }
    const count = Number(series("_count")[0]!.value);
    expect(count).toBeGreaterThanOrEqual(created0 + 6);
    expect(buckets.at(-1)).toEqual([Infinity, count]);
    expect(Number(series("_sum")[0]!.value)).toBeGreaterThan(0);

    const status = JSON.parse((await inst.spl(["status", "-o", "json"])).stdout);
    expect(value(fams, "spl_records")).toBe(status.records);
    expect(value(fams, "spl_threads")).toBe(status.threads);
    expect(value(fams, "spl_records_ingested_total")).toBeGreaterThanOrEqual(5);
  });

  test("the socket needs no token (the file is 0600)", async () => {
    const res = await fetch("http://localhost/metrics", { unix: inst.path("run", "spl.sock") } as RequestInit);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain("# TYPE spl_records gauge");
  });

  test("the startup backup of an existing store shows as last result 1 and an age", async () => {
    await inst.stop();
    await inst.start();
    const fams = await scrape(inst);
    expect(value(fams, "spl_backup_last_success", { outcome: "written" })).toBe(1);
    expect(value(fams, "spl_backup_age_seconds")).toBeGreaterThanOrEqual(0);
  });

  test("permission decisions are counted by outcome once enforcement is on", async () => {
    const adminToken = TOKEN_RE.exec((await inst.spl(["token", "create", "--name", "admin", "--actor", ADMIN, "--scopes", "admin"])).stdout)![0];
    const rule = await inst.http("POST", "/v1/config/rules", { topic: "permission_rule", name: "admin-all", action: "allow", priority: 1000, expression: `current_actor() == "${ADMIN}"` });
    expect(rule.status).toBeLessThan(300);
    const on = await inst.spl(["learn", "--thread", "th_engine_config", "--body", '{"topic":"permissions_enabled","enabled":true}'], { env: { SPL_SERVE_URL: inst.url, SPL_TOKEN: adminToken } });
    expect(on.code).toBe(0);
    const before = await scrape(inst, adminToken);
    expect((await inst.socket("GET", "/v1/threads")).status).toBe(403); // the operator has no rule: denied
    const after = await scrape(inst, adminToken);
    const d = (f: Map<string, Family>, outcome: string) => value(f, "spl_permission_decisions_total", { outcome });
    expect(d(after, "deny")).toBe(d(before, "deny") + 1);
    expect(d(after, "allow")).toBeGreaterThan(d(before, "allow")); // the admin's own scrape was allowed
  });
});

describe("[metrics] in config.toml", () => {
  test("public = true serves /metrics without a token (and nothing else); SIGHUP re-reads it without stopping", async () => {
    const inst = new Instance();
    await inst.spl(["init"]);
    appendFileSync(inst.path("config.toml"), "\n[metrics]\npublic = true\n");
    const pid = await inst.start();
    try {
      expect((await inst.http("GET", "/metrics", undefined, { authorization: "" })).status).toBe(200);
      expect((await inst.http("GET", "/v1/status", undefined, { authorization: "" })).status).toBe(401);
      const text = (await Bun.file(inst.path("config.toml")).text()).replace(/^public = true$/m, "public = false");
      await Bun.write(inst.path("config.toml"), text);
      process.kill(pid, "SIGHUP");
      await waitFor("GET /metrics without a token to answer 401 after SIGHUP", async () => (await inst.http("GET", "/metrics", undefined, { authorization: "" })).status, { until: (s) => s === 401 });
      expect((await inst.http("GET", "/health")).json.pid).toBe(pid);
    } finally {
      await inst.stop();
    }
  });

  test("enabled = false: /metrics is 404 METRICS_DISABLED; a value of the wrong type stops serve with the key and the fix", async () => {
    const inst = new Instance();
    await inst.spl(["init"]);
    appendFileSync(inst.path("config.toml"), "\n[metrics]\nenabled = false\n");
    await inst.start();
    try {
      const r = await inst.http("GET", "/metrics");
      expect(r.status).toBe(404);
      expect(r.json.code).toBe("METRICS_DISABLED");
    } finally {
      await inst.stop();
    }
    await Bun.write(inst.path("config.toml"), (await Bun.file(inst.path("config.toml")).text()).replace(/^enabled = false$/m, 'enabled = "yes"'));
    const bad = await inst.spl(["serve", "--port", String(inst.port)]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("[metrics] enabled must be true or false");
  });
});

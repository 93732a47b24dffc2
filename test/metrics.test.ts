// GET /metrics on the compiled binary (issue 16 item 1, issue 28 item 3): scraped and parsed with
// a Prometheus text parser and linted by `promtool check metrics`; counters follow what the daemon
// did; label values come from fixed sets; the README lists every series; auth like /v1/* unless
// [metrics] public.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Instance, waitFor } from "./harness";

const ADMIN = "did:sync:agent:admin";
const promtool = Bun.which("promtool");
if (!promtool) console.log("skipped the promtool checks: promtool is not installed (Debian: apt-get install prometheus)");
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
      ["spl_build_info", "GAUGE"],
      ["spl_http_requests_total", "COUNTER"],
      ["spl_http_request_duration_seconds", "HISTOGRAM"],
      ["spl_records", "GAUGE"],
      ["spl_threads", "GAUGE"],
      ["spl_permission_decisions_total", "COUNTER"],
      ["spl_backup_startup_outcome", "GAUGE"],
      ["spl_wal_bytes", "GAUGE"],
      ["spl_checkpoint_ok", "GAUGE"],
      ["spl_storage_errors_total", "COUNTER"],
      ["spl_offsite_configured", "GAUGE"],
      ["spl_fleet_members", "GAUGE"],
      ["spl_dispatches", "GAUGE"],
      ["spl_reconciler_decisions_total", "COUNTER"],
      ["process_resident_memory_bytes", "GAUGE"],
      ["process_cpu_seconds_total", "COUNTER"],
      ["process_start_time_seconds", "GAUGE"],
    ];
    for (const [name, type] of want) expect({ name, type: fams.get(name)?.type }).toEqual({ name, type });
    expect(value(fams, "process_resident_memory_bytes")).toBeGreaterThan(0);
    const version = (await inst.spl(["version"])).stdout.trim().replace(/^spl /, "");
    expect(sample(fams, "spl_build_info")?.labels).toEqual({ version, commit: expect.stringMatching(/^([0-9a-f]{12}|unknown)$/) });
    expect(value(fams, "spl_build_info")).toBe(1);
    expect(value(fams, "spl_offsite_configured")).toBe(0);
  });

  test("ingest is counted by route and status, with a latency histogram per route; gauges match spl status", async () => {
    const before = await scrape(inst);
    const created0 = value(before, "spl_http_requests_total", { method: "POST", route: "/v1/records", status: "201" }) || 0;
    for (let i = 0; i < 5; i++) expect((await inst.http("POST", "/v1/records", { thread: "th_metrics", actor: "did:sync:user:tester", act: "KNOW", body: { i } })).status).toBe(201);
    expect((await inst.http("POST", "/v1/records", "{not json")).status).toBe(400);
    expect((await inst.http("GET", "/v1/no-such-route")).status).toBe(404);

    const fams = await scrape(inst);
    expect(value(fams, "spl_http_requests_total", { method: "POST", route: "/v1/records", status: "201" })).toBe(created0 + 5);
    expect(value(fams, "spl_http_requests_total", { method: "POST", route: "/v1/records", status: "400" })).toBeGreaterThanOrEqual(1);
    expect(value(fams, "spl_http_requests_total", { method: "GET", route: "none", status: "404" })).toBeGreaterThanOrEqual(1);
    // Route labels are the declared templates, never a path a client made up.
    for (const m of fams.get("spl_http_requests_total")!.metrics) expect(m.labels!.route).toMatch(/^(none|\/[A-Za-z0-9_/:.-]*)$/);

    // The parser folds a histogram's label sets into one; read the per-route series untyped.
    const raw = parsePrometheusTextFormat(lastScrape.replace(/^# TYPE spl_http_request_duration_seconds histogram$/m, "")) as Family[];
    const series = (suffix: string) => raw.filter((f) => f.name === `spl_http_request_duration_seconds${suffix}`).flatMap((f) => f.metrics).filter((m) => m.labels?.method === "POST" && m.labels?.route === "/v1/records");
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

  test("the startup backup: its outcome from a fixed set, and when the newest one was written (a timestamp, not an age)", async () => {
    const first = await scrape(inst);
    const before = value(first, "spl_backup_last_success_timestamp_seconds", { kind: "startup" });
    await inst.stop();
    await inst.start();
    const fams = await waitFor(async () => {
      const f = await scrape(inst);
      return value(f, "spl_backup_startup_outcome", { outcome: "written" }) === 1 ? f : null;
    });
    expect(fams!.get("spl_backup_startup_outcome")!.metrics.map((m) => m.labels!.outcome).sort()).toEqual(["failed", "in_progress", "none", "written"]);
    const status = JSON.parse((await inst.spl(["status", "-o", "json"])).stdout);
    const at = value(fams!, "spl_backup_last_success_timestamp_seconds", { kind: "startup" });
    expect(at).toBe(Math.floor(Date.parse(status.backup.written_at) / 1000));
    if (!Number.isNaN(before)) expect(at).toBeGreaterThanOrEqual(before);
    // The WAL and its checkpoints.
    expect(value(fams!, "spl_wal_bytes")).toBeGreaterThanOrEqual(0);
    expect(value(fams!, "spl_checkpoint_ok")).toBe(1);
    expect(value(fams!, "spl_storage_errors_total")).toBe(0);
  });

  test("every label value comes from a fixed set: outcomes, methods, statuses, kinds", async () => {
    const fams = await scrape(inst);
    const SETS: Record<string, RegExp> = {
      outcome: /^(allow|deny|written|in_progress|failed|none)$/,
      method: /^(GET|POST|DELETE|PUT|PATCH|HEAD|OPTIONS|other)$/,
      status: /^([1-5][0-9][0-9]|live|stale|archived)$/,
      kind: /^(startup|manual)$/,
      event: /^[a-z_]+$/,
      le: /^([0-9.]+|\+Inf)$/,
    };
    for (const f of fams.values()) {
      for (const m of f.metrics) {
        for (const [k, v] of Object.entries(m.labels ?? {})) {
          if (k in SETS) expect({ family: f.name, label: k, v, ok: SETS[k]!.test(v) }).toEqual({ family: f.name, label: k, v, ok: true });
        }
      }
    }
  });

  test.skipIf(!promtool)("passes promtool check metrics (Prometheus's own linter)", async () => {
    await scrape(inst);
    const r = Bun.spawnSync([promtool!, "check", "metrics"], { stdin: new TextEncoder().encode(lastScrape), stdout: "pipe", stderr: "pipe" });
    expect({ code: r.exitCode, out: r.stdout.toString() + r.stderr.toString() }).toEqual({ code: 0, out: "" });
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

describe("off-host series and the README's list", () => {
  test("off-host series follow one naming rule; the README lists every series the daemon exports, with the example alerts", async () => {
    const inst = new Instance();
    const off = mkdtempSync(join(tmpdir(), "spl-metrics-off-"));
    await inst.spl(["init"]);
    appendFileSync(inst.path("config.toml"), `\n[backup.offsite]\nurl = "file://${off}"\ncontinuous = true\n`);
    await inst.start();
    try {
      expect((await inst.socket("POST", "/v1/records", { thread: "th_off", actor: "did:sync:user:tester", act: "KNOW", body: {} })).status).toBe(201);
      // The schedule pushes at once when nothing was pushed yet; replication ships what is committed.
      const fams = (await waitFor(
        async () => {
          const f = await scrape(inst);
          return sample(f, "spl_offsite_push_last_success_timestamp_seconds") && sample(f, "spl_replication_last_success_timestamp_seconds") ? f : null;
        },
        60_000,
        200,
      ))!;
      expect(value(fams, "spl_offsite_configured")).toBe(1);
      const status = JSON.parse((await inst.spl(["status", "-o", "json"])).stdout);
      expect(value(fams, "spl_offsite_push_last_success_timestamp_seconds")).toBe(Date.parse(status.offsite.last_push_ok_at) / 1000);
      expect(value(fams, "spl_offsite_push_errors_total")).toBe(0);
      expect(value(fams, "spl_replication_errors_total")).toBe(0);

      // Each stream: <stream>_last_success_timestamp_seconds, <stream>_errors_total, <stream>_failures;
      // counters end in _total, times are _timestamp_seconds gauges, no labels but a histogram's le.
      const offHost = [...fams.values()].filter((f) => /^spl_(offsite|replication)_/.test(f.name));
      for (const f of offHost) {
        const type = f.name.endsWith("_total") ? "COUNTER" : f.type === "HISTOGRAM" ? "HISTOGRAM" : "GAUGE";
        expect({ name: f.name, type: f.type }).toEqual({ name: f.name, type });
        if (f.name.endsWith("_timestamp_seconds")) expect({ name: f.name, type: f.type }).toEqual({ name: f.name, type: "GAUGE" });
        for (const m of f.metrics) expect({ name: f.name, labels: m.labels ?? {} }).toEqual({ name: f.name, labels: {} });
      }
      for (const stream of ["spl_offsite_push", "spl_replication"]) {
        for (const suffix of ["last_success_timestamp_seconds", "errors_total", "failures"]) expect({ series: `${stream}_${suffix}`, exported: fams.has(`${stream}_${suffix}`) }).toEqual({ series: `${stream}_${suffix}`, exported: true });
      }
      expect(fams.has("spl_replication_lag_seconds")).toBe(true);

      // Every family on this daemon (off-host, fleet, dispatch, core, process) is in README "Metrics".
      const readme = readFileSync(join(import.meta.dir, "..", "README.md"), "utf8");
      const section = readme.slice(readme.indexOf("\n## Metrics"), readme.indexOf("\n## ", readme.indexOf("\n## Metrics") + 5));
      expect(section.length).toBeGreaterThan(100);
      const missing = [...fams.keys()].filter((name) => !section.includes(`\`${name}\``) && !section.includes(`\`${name}{`));
      expect(missing).toEqual([]);
      // The example alerts name series that exist.
      for (const alert of ["SplOffHostBackupStale", "SplStorageErrors", "SplFleetMemberStale"]) {
        const at = section.indexOf(`alert: ${alert}`);
        expect({ alert, found: at >= 0 }).toEqual({ alert, found: true });
        const expr = /expr: (.+)/.exec(section.slice(at))![1]!;
        const named = expr.match(/spl_[a-z_]+/g)!;
        for (const n of named) expect({ alert, series: n, exported: fams.has(n) }).toEqual({ alert, series: n, exported: true });
      }
      if (promtool) {
        const rules = join(off, "alerts.yml");
        const yaml = /```yaml\n([\s\S]*?)```/.exec(section)![1]!;
        writeFileSync(rules, yaml);
        const r = Bun.spawnSync([promtool, "check", "rules", rules], { stdout: "pipe", stderr: "pipe" });
        expect({ code: r.exitCode, out: r.stderr.toString() }).toEqual({ code: 0, out: "" });
      }
    } finally {
      await inst.stop();
      rmSync(off, { recursive: true, force: true });
    }
  });
});

// Prometheus metrics (GET /metrics): a small hand-written exposition, cheaper than a client
// library on the ingest path. Counters and histograms are updated in place per request; gauges
// (records, backups, dispatches, process) are read from the daemon's state when scraped.
// Conventions (README "Metrics", checked by `promtool check metrics` in test/metrics.test.ts):
// label values come from fixed sets (an outcome is one of a few words, never a message), `method`
// and `route` are separate labels, times are `_timestamp_seconds` gauges (alert on
// `time() - x`), never ages that restart with the daemon.
import { readdirSync } from "node:fs";
import type { MetricsOut } from "../capability";
import type { LogWriteStatus } from "../log";
import { COMMIT, VERSION } from "../version";
import type { BodyBudgetStatus } from "./body-budget";
import { RateHistory } from "./rates";
import type { StorageStatus } from "./storage-health";

/** Upper bounds (seconds) of the request latency buckets. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Per route: answers by status, and the latency histogram (buckets stored non-cumulatively). */
interface RouteSeries {
  statuses: Map<number, number>;
  counts: number[];
  sum: number;
  count: number;
}

/** What a scrape reads from the daemon besides the counters kept here. */
export interface MetricsSource {
  records: number;
  threads: number;
  ready: boolean;
  /** The startup backup: when it was written and its outcome ("written" or why not). */
  backup: { written_at: string | null; outcome: string } | null;
  /** The newest local backup of each kind on disk (ms), this start's or an earlier one's. */
  backupFiles: { startup: number | null; manual: number | null };
  /** WAL size, checkpoints, write errors (storage-health.ts). */
  storage: StorageStatus & { errors_total: number };
  startedAt: number;
  /** The log's failed writes (lib/log.ts). */
  logWrites: LogWriteStatus;
  /** Memory for request bodies in flight (body-budget.ts). */
  bodies: BodyBudgetStatus;
  /** The capabilities' families (dispatches, ...), in list order. */
  capabilities: ReadonlyArray<(out: MetricsOut) => void>;
}

/** Methods named as themselves in the `method` label; any other is "other" (the set stays fixed). */
const METHODS = new Set(["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]);

/** The startup backup's outcome as one of a fixed set (its text says more, in /v1/status). */
export const BACKUP_OUTCOMES = ["written", "in_progress", "failed", "none"] as const;
export function backupOutcome(b: { outcome: string } | null): (typeof BACKUP_OUTCOMES)[number] {
  if (!b) return "none";
  if (b.outcome === "written") return "written";
  return b.outcome.startsWith("in progress") ? "in_progress" : "failed";
}

export class Metrics {
  /** "METHOD /route" → its series. */
  private routes = new Map<string, RouteSeries>();
  private decisions = { allow: 0, deny: 0 };
  private ingested = 0;
  /** The last 15 minutes in 10 s intervals, for the console (kept even with metrics off). */
  readonly rates = new RateHistory();

  constructor(readonly enabled = true) {}

  /**
   * One answered request: its route label ("METHOD /path" as declared, or "METHOD none" when no
   * route matched), status and duration.
   */
  request(route: string, status: number, seconds: number): void {
    this.rates.request(status);
    if (!this.enabled) return;
    let h = this.routes.get(route);
    if (!h) this.routes.set(route, (h = { statuses: new Map(), counts: new Array(LATENCY_BUCKETS.length).fill(0), sum: 0, count: 0 }));
    h.statuses.set(status, (h.statuses.get(status) ?? 0) + 1);
    let i = 0;
    while (i < LATENCY_BUCKETS.length && seconds > LATENCY_BUCKETS[i]!) i++;
    if (i < LATENCY_BUCKETS.length) h.counts[i]!++;
    h.sum += seconds;
    h.count++;
  }

  /** A permission rule decision (enforcement on). */
  decision(allowed: boolean): void {
    if (this.enabled) this.decisions[allowed ? "allow" : "deny"]++;
  }

  /** Records committed (new ones only; duplicates are not written). */
  committed(n: number): void {
    this.rates.committed(n);
    if (this.enabled) this.ingested += n;
  }

  /** The label of a request no route matched: its method (from a fixed set) and route "none". */
  static unmatched(method: string): string {
    return `${METHODS.has(method) ? method : "other"} none`;
  }

  render(src: MetricsSource): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

    family("spl_build_info", "gauge", "Always 1: the version and commit of this spl.");
    out.push(`spl_build_info{version="${label(VERSION)}",commit="${label(COMMIT)}"} 1`);

    family("spl_http_requests_total", "counter", "HTTP requests answered, by method, route (as declared; none when no route matched) and status.");
    const byRoute = [...this.routes].map(([key, h]) => {
      const at = key.indexOf(" ");
      return { l: `method="${label(key.slice(0, at))}",route="${label(key.slice(at + 1))}"`, h };
    });
    for (const { l, h } of byRoute) {
      for (const [status, n] of h.statuses) out.push(`spl_http_requests_total{${l},status="${status}"} ${n}`);
    }
    family("spl_http_request_duration_seconds", "histogram", "Time to answer an HTTP request, by method and route.");
    for (const { l, h } of byRoute) {
      let acc = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        acc += h.counts[i]!;
        out.push(`spl_http_request_duration_seconds_bucket{${l},le="${le}"} ${acc}`);
      });
      out.push(`spl_http_request_duration_seconds_bucket{${l},le="+Inf"} ${h.count}`);
      out.push(`spl_http_request_duration_seconds_sum{${l}} ${h.sum}`, `spl_http_request_duration_seconds_count{${l}} ${h.count}`);
    }
    family("spl_records_ingested_total", "counter", "Records committed since the daemon started.");
    out.push(`spl_records_ingested_total ${this.ingested}`);
    family("spl_records", "gauge", "Records in the store.");
    out.push(`spl_records ${src.records}`);
    family("spl_threads", "gauge", "Threads in the store.");
    out.push(`spl_threads ${src.threads}`);
    family("spl_ready", "gauge", "1 once rebuild_from_store() has finished.");
    out.push(`spl_ready ${src.ready ? 1 : 0}`);
    family("spl_permission_decisions_total", "counter", "Permission rule decisions, by outcome.");
    out.push(`spl_permission_decisions_total{outcome="allow"} ${this.decisions.allow}`, `spl_permission_decisions_total{outcome="deny"} ${this.decisions.deny}`);

    family("spl_backup_startup_outcome", "gauge", "This start's startup backup: 1 for its outcome (written, in_progress, failed; none for a new store), 0 for the others.");
    const outcome = backupOutcome(src.backup);
    for (const o of BACKUP_OUTCOMES) out.push(`spl_backup_startup_outcome{outcome="${o}"} ${o === outcome ? 1 : 0}`);
    family("spl_backup_last_success_timestamp_seconds", "gauge", "When the newest local backup of each kind was written (startup: hub.db.bak, at this or an earlier start; manual: spl backup), unix seconds.");
    for (const kind of ["startup", "manual"] as const) {
      const ms = src.backupFiles[kind];
      if (ms !== null) out.push(`spl_backup_last_success_timestamp_seconds{kind="${kind}"} ${Math.floor(ms / 1000)}`);
    }

    const st = src.storage;
    family("spl_wal_bytes", "gauge", "Size of hub.db-wal: records committed but not yet checkpointed into hub.db.");
    out.push(`spl_wal_bytes ${st.wal_bytes}`);
    family("spl_checkpoint_ok", "gauge", "0 while WAL checkpoints cannot finish (a long reader, or hub.db cannot be written); 1 once they do.");
    out.push(`spl_checkpoint_ok ${st.checkpoint_ok === false ? 0 : 1}`);
    family("spl_checkpoint_last_success_timestamp_seconds", "gauge", "When a checkpoint last copied the whole WAL into hub.db, unix seconds.");
    if (st.last_checkpoint_at) out.push(`spl_checkpoint_last_success_timestamp_seconds ${Math.floor(Date.parse(st.last_checkpoint_at) / 1000)}`);
    family("spl_storage_errors_total", "counter", "Store writes and checkpoints that failed since start (a full disk, I/O errors).");
    out.push(`spl_storage_errors_total ${st.errors_total}`);

    const writer: MetricsOut = {
      family,
      sample(name, value, labels) {
        const l = labels ? Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`) : [];
        out.push(`${name}${l.length ? `{${l.join(",")}}` : ""} ${value}`);
      },
    };
    for (const add of src.capabilities) add(writer);

    const l = src.logWrites;
    family("spl_log_write_ok", "gauge", "0 while log lines cannot be written (a full disk); they are retried.");
    out.push(`spl_log_write_ok ${l.ok ? 1 : 0}`);
    family("spl_log_write_failures_total", "counter", "Log writes that failed since start.");
    out.push(`spl_log_write_failures_total ${l.failed_writes}`);
    family("spl_log_lines_dropped_total", "counter", "Log lines lost because the log could not be written for too long.");
    out.push(`spl_log_lines_dropped_total ${l.dropped_lines}`);

    const budget = src.bodies;
    family("spl_body_memory_limit_bytes", "gauge", "[server] max_body_memory: memory for request bodies in flight.");
    out.push(`spl_body_memory_limit_bytes ${budget.limit_bytes}`);
    family("spl_body_memory_inflight_bytes", "gauge", "Memory reserved now for request bodies being handled (8x their size).");
    out.push(`spl_body_memory_inflight_bytes ${budget.inflight_bytes}`);
    family("spl_body_memory_refused_total", "counter", "Requests answered 503 because the body memory budget was spent.");
    out.push(`spl_body_memory_refused_total ${budget.refused}`);

    processMetrics(out, family, src.startedAt);
    return out.join("\n") + "\n";
  }
}

/** Label values escape backslash, quote and newline (the text format's rule). */
function label(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function processMetrics(out: string[], family: (n: string, t: string, h: string) => void, startedAt: number) {
  const mem = process.memoryUsage();
  const cpu = process.cpuUsage();
  family("process_cpu_user_seconds_total", "counter", "User CPU time spent, in seconds.");
  out.push(`process_cpu_user_seconds_total ${cpu.user / 1e6}`);
  family("process_cpu_system_seconds_total", "counter", "System CPU time spent, in seconds.");
  out.push(`process_cpu_system_seconds_total ${cpu.system / 1e6}`);
  family("process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.");
  out.push(`process_cpu_seconds_total ${(cpu.user + cpu.system) / 1e6}`);
  family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
  out.push(`process_resident_memory_bytes ${mem.rss}`);
  family("process_heap_bytes", "gauge", "JavaScript heap in use, in bytes.");
  out.push(`process_heap_bytes ${mem.heapUsed}`);
  family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch, in seconds.");
  out.push(`process_start_time_seconds ${Math.floor(startedAt / 1000)}`);
  try {
    const fds = readdirSync("/proc/self/fd").length;
    family("process_open_fds", "gauge", "Open file descriptors.");
    out.push(`process_open_fds ${fds}`);
  } catch {} // not Linux: no /proc
}

// Prometheus metrics (GET /metrics): a small hand-written exposition, cheaper than a client
// library on the ingest path. Counters and histograms are updated in place per request; gauges
// (records, backups, dispatches, process) are read from the daemon's state when scraped.
import { readdirSync } from "node:fs";
import type { MetricsOut } from "../capability";

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
  startedAt: number;
  /** The capabilities' families (dispatches, ...), in list order. */
  capabilities: ReadonlyArray<(out: MetricsOut) => void>;
}

export class Metrics {
  private routes = new Map<string, RouteSeries>();
  private decisions = { allow: 0, deny: 0 };
  private ingested = 0;

  constructor(readonly enabled = true) {}

  /** One answered request: its route label ("none" when unmatched), status and duration. */
  request(route: string, status: number, seconds: number): void {
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
    if (this.enabled) this.ingested += n;
  }

  render(src: MetricsSource): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string) => out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);

    family("spl_http_requests_total", "counter", "HTTP requests answered, by route and status.");
    for (const [route, h] of this.routes) {
      for (const [status, n] of h.statuses) out.push(`spl_http_requests_total{route="${label(route)}",status="${status}"} ${n}`);
    }
    family("spl_http_request_duration_seconds", "histogram", "Time to answer an HTTP request, by route.");
    for (const [route, h] of this.routes) {
      const r = label(route);
      let acc = 0;
      LATENCY_BUCKETS.forEach((le, i) => {
        acc += h.counts[i]!;
        out.push(`spl_http_request_duration_seconds_bucket{route="${r}",le="${le}"} ${acc}`);
      });
      out.push(`spl_http_request_duration_seconds_bucket{route="${r}",le="+Inf"} ${h.count}`);
      out.push(`spl_http_request_duration_seconds_sum{route="${r}"} ${h.sum}`, `spl_http_request_duration_seconds_count{route="${r}"} ${h.count}`);
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

    family("spl_backup_last_success", "gauge", "1 when the startup backup was written, 0 when it was not (see outcome).");
    const b = src.backup;
    out.push(`spl_backup_last_success{outcome="${label(b?.outcome ?? "none")}"} ${b?.outcome === "written" ? 1 : 0}`);
    family("spl_backup_age_seconds", "gauge", "Seconds since the latest startup backup was written.");
    const at = b?.written_at ? Date.parse(b.written_at) : NaN;
    if (Number.isFinite(at)) out.push(`spl_backup_age_seconds ${Math.max(0, (Date.now() - at) / 1000)}`);

    const writer: MetricsOut = {
      family,
      sample(name, value, labels) {
        const l = labels ? Object.entries(labels).map(([k, v]) => `${k}="${label(v)}"`) : [];
        out.push(`${name}${l.length ? `{${l.join(",")}}` : ""} ${value}`);
      },
    };
    for (const add of src.capabilities) add(writer);

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

// Continuous replication, the daemon's side: starts the replication thread (ship-worker.ts),
// tells it about commits through shared memory (no message, no copy, nothing that could delay
// an acknowledgement), and keeps what it reports for status, doctor, /metrics and the log.
// A thread that dies is restarted after a pause; on stop it first ships what is left (bounded).
import type { MetricsOut } from "../../capability";
import type { Logger } from "../../log";
import type { HomePaths } from "../../paths";
import { workerEntry } from "../../worker-entry";
import { CommitRing } from "./commit-ring";
import type { OffsiteConfig } from "./config";
import type { ShipInit, WorkerReport, WorkerRequest } from "./ship-worker";
import { awsChain } from "./aws-chain";

const RESTART_MS = 5000;
const DRAIN_WAIT_MS = 10_000;
const CLOSE_WAIT_MS = 2000;
const LAGS_KEPT = 1024;
/** Upper bounds (seconds) of the ship-lag histogram's buckets. */
const LAG_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300];

export interface ReplicationStatus {
  state: "starting" | "caught up" | "shipping" | "failing" | "stopped";
  generation: string | null;
  folder: string | null;
  sync_interval_secs: number;
  /** Every record up to this seq is off-host. */
  shipped_through: number;
  /** The newest committed seq. */
  committed_through: number;
  behind_records: number;
  /** How long the oldest record not yet off-host has waited (0 when caught up). */
  lag_secs: number;
  last_ship: { at: string; first: number; last: number; records: number; ms: number; lag_ms: number; url: string } | null;
  /** When a segment was last stored (the last success), and the latest attempt's failure. */
  last_ok_at: string | null;
  last_error: { at: string; message: string } | null;
  consecutive_failures: number;
  next_retry_at: string | null;
  /** When the segment being stored now was started (null: none is). */
  shipping_since: string | null;
  /** Time to store a segment, and how long records waited to be off-host (recent segments). */
  ship_ms: { last: number; max: number };
  lag_ms: { p50: number; p99: number; max: number; samples: number };
  segments_shipped: number;
  records_shipped: number;
  compactions: number;
}

export class Replicator {
  private readonly ring = new CommitRing();
  private worker: Worker | null = null;
  private stopped = false;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private waiters: { type: string; resolve: () => void }[] = [];
  private readonly lags: number[] = [];
  private readonly lagCounts = new Array(LAG_BUCKETS.length + 1).fill(0);
  private lagSum = 0;
  /** Failed shipments since start (spl_replication_errors_total). */
  private errors = 0;
  private st: ReplicationStatus;
  private readonly log: Logger;
  /** When the oldest record not yet off-host was committed (null: none waits). */
  private behindSince: number | null = null;

  constructor(
    private readonly o: {
      paths: HomePaths;
      config: OffsiteConfig;
      log: Logger;
      /** The store's newest seq when the daemon started (records before it were committed earlier). */
      startSeq: () => number;
      /** A generation has no snapshot on the remote yet: push one now. */
      needsSnapshot: () => void;
    },
  ) {
    this.log = o.log.child("spl::replication");
    this.st = {
      state: "starting",
      generation: null,
      folder: null,
      sync_interval_secs: o.config.syncIntervalSecs,
      shipped_through: 0,
      committed_through: 0,
      behind_records: 0,
      lag_secs: 0,
      last_ship: null,
      last_ok_at: null,
      last_error: null,
      consecutive_failures: 0,
      next_retry_at: null,
      shipping_since: null,
      ship_ms: { last: 0, max: 0 },
      lag_ms: { p50: 0, p99: 0, max: 0, samples: 0 },
      segments_shipped: 0,
      records_shipped: 0,
      compactions: 0,
    };
  }

  start(): void {
    const seq = this.o.startSeq();
    this.ring.committed(seq);
    this.st.committed_through = seq;
    this.spawn();
  }

  /** After every commit (the daemon's hook): two numbers into shared memory. */
  committed(lastSeq: number): void {
    this.ring.committed(lastSeq);
    if (this.behindSince === null) this.behindSince = Date.now();
  }

  /** After a report: the commit time of the first record still waiting (exact from the ring, else its acceptance second). */
  private waiting(through: number, since: number | null): void {
    if (since === null && this.ring.latest <= through) this.behindSince = null;
    else this.behindSince = this.ring.commitTime(through + 1) ?? since ?? this.behindSince ?? Date.now();
  }

  private spawn(): void {
    this.restartTimer = null;
    if (this.stopped) return;
    const w = new Worker(workerEntry("lib/backup/offsite/ship-worker.ts"));
    w.onmessage = (e: MessageEvent<WorkerReport>) => this.onReport(e.data);
    w.onerror = (e) => this.crashed(e.message);
    w.postMessage({ home: this.o.paths.home, config: this.o.config, ring: this.ring.buffer } satisfies ShipInit);
    this.worker = w;
  }

  private crashed(error: string): void {
    this.worker?.terminate();
    this.worker = null;
    if (this.stopped || this.restartTimer) return; // one restart for an error reported twice (onerror and its report)
    this.st.state = "failing";
    this.st.last_error = { at: new Date().toISOString(), message: `replication thread failed: ${error}` };
    this.log.error(`replication thread failed (restarting in ${RESTART_MS / 1000}s; ingest is unaffected): ${error}`);
    this.restartTimer = setTimeout(() => this.spawn(), RESTART_MS);
  }

  private onReport(r: WorkerReport): void {
    const st = this.st;
    switch (r.type) {
      case "generation":
        st.generation = r.generation;
        st.folder = r.folder;
        st.shipped_through = r.through;
        this.waiting(r.through, r.waiting_since);
        if (r.fresh) this.log.info("replication: new generation", { generation: r.generation, folder: r.folder, from_seq: r.through, reason: r.reason });
        else this.log.info("replication: continuing", { generation: r.generation, folder: r.folder, shipped_through: r.through });
        break;
      case "needs_snapshot":
        this.log.info("replication: the generation has no snapshot off-host yet; pushing one now", { generation: r.generation });
        this.o.needsSnapshot();
        break;
      case "shipping":
        st.shipping_since = r.at;
        break;
      case "shipped": {
        st.shipping_since = null;
        if (st.consecutive_failures > 0) this.log.info("replication: shipping again", { after_failures: st.consecutive_failures, first: r.first });
        st.shipped_through = r.last;
        this.waiting(r.last, r.waiting_since);
        st.last_ship = { at: r.at, first: r.first, last: r.last, records: r.records, ms: r.ms, lag_ms: r.lag_ms, url: r.url };
        st.last_ok_at = r.at;
        st.last_error = null;
        st.consecutive_failures = 0;
        st.next_retry_at = null;
        st.ship_ms = { last: r.ms, max: Math.max(st.ship_ms.max, r.ms) };
        st.segments_shipped++;
        st.records_shipped += r.records;
        this.noteLag(r.lag_ms);
        break;
      }
      case "failed":
        this.errors++;
        st.shipping_since = null;
        st.last_error = { at: r.at, message: r.error };
        st.consecutive_failures = r.attempt;
        this.waiting(st.shipped_through, r.waiting_since);
        st.next_retry_at = new Date(Date.now() + r.retry_in_ms).toISOString();
        // Every failure counts; the log gets attempts 1, 2, 4, 8, … and then one every 64.
        if ((r.attempt & (r.attempt - 1)) === 0 || r.attempt % 64 === 0) {
          this.log.error(`replication FAILED (attempt ${r.attempt}, retrying in ${(r.retry_in_ms / 1000).toFixed(1)}s; ingest is unaffected): ${r.error}`, {
            url: this.o.config.url,
            attempt: r.attempt,
            shipped_through: st.shipped_through,
          });
        }
        break;
      case "compacted":
        st.compactions++;
        this.log.debug("replication: segments merged", { url: r.url, merged: r.merged });
        break;
      case "retention":
        this.log.info("replication: retention deleted old copies and segments", { deleted: r.deleted.length });
        break;
      case "maintenance_failed":
        this.log.warn(`replication: merging segments or retention failed (retried at the next window): ${r.error}`);
        break;
      case "crashed":
        this.crashed(r.error);
        break;
      case "credentials?":
        void awsChain().then((creds) => this.worker?.postMessage({ type: "credentials", creds } satisfies WorkerRequest));
        break;
    }
    if (this.waiters.some((w) => w.type === r.type)) {
      const [now, later] = [this.waiters.filter((w) => w.type === r.type), this.waiters.filter((w) => w.type !== r.type)];
      this.waiters = later;
      for (const w of now) w.resolve();
    }
  }

  private noteLag(ms: number): void {
    this.lags.push(ms);
    if (this.lags.length > LAGS_KEPT) this.lags.shift();
    let i = 0;
    while (i < LAG_BUCKETS.length && ms / 1000 > LAG_BUCKETS[i]!) i++;
    this.lagCounts[i]++;
    this.lagSum += ms / 1000;
  }

  /** Until the thread reports `type`, or `ms` passed (the waiter is dropped either way). */
  private waitFor(type: string, ms: number): Promise<void> {
    let waiter: { type: string; resolve: () => void } | undefined;
    const reported = new Promise<void>((resolve) => this.waiters.push((waiter = { type, resolve })));
    return Promise.race([reported, Bun.sleep(ms)]).finally(() => (this.waiters = this.waiters.filter((w) => w !== waiter)));
  }

  /** Ships what is left (up to DRAIN_WAIT_MS), then ends the thread. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const w = this.worker;
    if (!w) return;
    w.postMessage("drain");
    await this.waitFor("drained", DRAIN_WAIT_MS);
    w.postMessage("close");
    await this.waitFor("closed", CLOSE_WAIT_MS);
    w.terminate();
    this.worker = null;
    this.st.state = "stopped";
  }

  status(): ReplicationStatus {
    const st = this.st;
    const now = Date.now();
    st.committed_through = Math.max(st.committed_through, this.ring.latest);
    st.behind_records = Math.max(0, st.committed_through - st.shipped_through);
    st.lag_secs = st.behind_records && this.behindSince !== null ? Math.max(0, (now - this.behindSince) / 1000) : 0;
    if (st.state !== "stopped") st.state = st.generation === null ? "starting" : st.consecutive_failures > 0 ? "failing" : st.behind_records ? "shipping" : "caught up";
    const sorted = [...this.lags].sort((a, b) => a - b);
    const q = (p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]! : 0);
    st.lag_ms = { p50: q(0.5), p99: q(0.99), max: sorted.length ? sorted[sorted.length - 1]! : 0, samples: sorted.length };
    return { ...st };
  }

  /** Prometheus families (README "Observability"): outcome, lag, watermark, counters, lag histogram. */
  metrics(out: MetricsOut): void {
    const s = this.status();
    const gauge = (name: string, help: string, value: number | null, type: "gauge" | "counter" = "gauge") => {
      out.family(name, type, help);
      if (value !== null) out.sample(name, value);
    };
    gauge("spl_replication_up", "1 when the last segment shipment succeeded (0 while it fails, or before the first).", s.last_ok_at && !s.last_error ? 1 : 0);
    gauge("spl_replication_last_success_timestamp_seconds", "When a segment was last stored off-host.", s.last_ok_at ? Date.parse(s.last_ok_at) / 1000 : null);
    gauge("spl_replication_lag_seconds", "How long the oldest record not yet off-host has waited (0 when caught up).", s.lag_secs);
    gauge("spl_replication_behind_records", "Committed sequences not yet off-host.", s.behind_records);
    gauge("spl_replication_shipped_seq", "Every record up to this sequence is off-host.", s.shipped_through);
    gauge("spl_replication_failures", "Consecutive failed shipments (0 after a success).", s.consecutive_failures);
    gauge("spl_replication_errors_total", "Shipments that failed since the daemon started (each retried).", this.errors, "counter");
    gauge("spl_replication_segments_total", "Segments stored off-host since the daemon started.", s.segments_shipped, "counter");
    gauge("spl_replication_records_total", "Records shipped off-host since the daemon started.", s.records_shipped, "counter");
    out.family("spl_replication_ship_lag_seconds", "histogram", "Per segment: from the commit of its first record until it was stored off-host.");
    let acc = 0;
    LAG_BUCKETS.forEach((le, i) => {
      acc += this.lagCounts[i]!;
      out.sample("spl_replication_ship_lag_seconds_bucket", acc, { le: String(le) });
    });
    out.sample("spl_replication_ship_lag_seconds_bucket", acc + this.lagCounts[LAG_BUCKETS.length]!, { le: "+Inf" });
    out.sample("spl_replication_ship_lag_seconds_sum", this.lagSum);
    out.sample("spl_replication_ship_lag_seconds_count", s.segments_shipped);
  }
}

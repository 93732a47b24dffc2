// Off-host series on GET /metrics. Every off-host stream follows one naming rule (README
// "Metrics", checked by test/metrics.test.ts): spl_offsite_<stream>_last_success_timestamp_seconds
// (gauge), spl_offsite_<stream>_errors_total (counter), and where a stream lags,
// spl_offsite_<stream>_lag_seconds and _lag_records (gauges); no labels. Streams: `push` (the
// scheduled snapshot, here) and `replication` (continuous segments).
import type { MetricsOut } from "../../capability";
import type { OffsiteStatus } from "./service";

export function offsiteMetrics(status: () => OffsiteStatus | null) {
  return (m: MetricsOut) => {
    const s = status();
    m.family("spl_offsite_configured", "gauge", "1 when [backup.offsite] names a destination, 0 when every backup is on this machine only.");
    m.sample("spl_offsite_configured", s ? 1 : 0);
    if (!s) return;
    const ok = s.last_push?.last_ok_at ?? (s.last_push?.ok ? s.last_push.at : undefined);
    m.family("spl_offsite_push_last_success_timestamp_seconds", "gauge", "When a snapshot was last pushed off-host and verified, unix seconds (the daemon's schedule or spl backup push).");
    if (ok) m.sample("spl_offsite_push_last_success_timestamp_seconds", Math.floor(Date.parse(ok) / 1000));
    m.family("spl_offsite_push_errors_total", "counter", "Scheduled off-host pushes that failed since the daemon started (each retried with backoff).");
    m.sample("spl_offsite_push_errors_total", s.failures_total);
  };
}

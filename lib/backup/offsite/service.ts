// The daemon's off-host service ([backup.offsite]):
// - snapshots: every `snapshot_every` (and at once when there is none, or when a new replication
//   generation has none), run `spl backup push` as a child process (the snapshot, compression
//   and upload then never stall the daemon's event loop, so ingest goes on); after a failure
//   retry with backoff (2 s, 4 s, 8 s … up to `snapshot_every`), each failure an ERROR line;
// - with `continuous` (the default), the replication thread ships committed records as segments
//   (replicator.ts).
// status() is what GET /v1/status `offsite` shows: read fresh at every call (a push by
// `spl backup push` beside the daemon counts as much as the daemon's own), so a failed push after
// a good one shows as failed; metrics() the same as Prometheus lines.
import { selfCommand } from "../../daemonctl/control";
import type { MetricsOut } from "../../capability";
import type { Logger } from "../../log";
import type { HomePaths } from "../../paths";
import type { StoredRecord } from "../../records/types";
import { StoreReader } from "../../store/reader";
import type { OffsiteConfig } from "./config";
import { type LastPush, readLastPush } from "./push";
import { Replicator, type ReplicationStatus } from "./replicator";

const FIRST_RETRY_MS = 2000;
/** How often offsite.json is read for a push that failed beside the daemon. */
const EXTERNAL_CHECK_MS = 5000;
/** With replication and no push yet: the latest the first snapshot waits for the thread's word. */
const FIRST_PUSH_WAIT_MS = 30_000;
/** How long a stopping daemon waits for its push child after SIGTERM before SIGKILL. */
const STOP_PUSH_MS = 10_000;

export interface OffsiteStatus {
  configured: true;
  url: string;
  continuous: boolean;
  every_secs: number;
  snapshot_every_secs: number;
  sync_interval_secs: number;
  keep_days: number;
  /** The latest push attempt, whoever made it, and the last one that succeeded. */
  last_push: LastPush | null;
  last_push_ok_at: string | null;
  consecutive_failures: number;
  next_push_at: string | null;
  pushing: boolean;
  /** Continuous replication (null when `continuous = false`). */
  replication: ReplicationStatus | null;
}

export interface OffsiteService {
  readonly name: string;
  start(): void;
  stop(): Promise<void>;
  afterCommit(created: StoredRecord[]): void;
  status(): OffsiteStatus;
  /** Its families in GET /metrics. */
  metrics(out: MetricsOut): void;
}

export function offsiteService(o: { paths: HomePaths; config: OffsiteConfig; log: Logger }): OffsiteService {
  const log = o.log.child("spl::offsite");
  const everyMs = o.config.everySecs * 1000;
  /** The daemon's own last attempt (a child killed before it wrote offsite.json shows here). */
  let mine: LastPush | null = null;
  let failures = 0;
  /** Failed pushes since start (spl_offsite_push_errors_total). */
  let failuresTotal = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let nextAt: number | null = null;
  let child: ReturnType<typeof Bun.spawn> | null = null;
  let again = false;
  let stopped = false;
  /** The offsite.json entry last accounted for (the daemon's own pushes, or one seen failing beside it). */
  let seenExternal = "";

  const schedule = (ms: number) => {
    if (stopped) return;
    if (timer) clearTimeout(timer);
    nextAt = Date.now() + ms;
    timer = setTimeout(run, ms);
  };

  /** The newer of offsite.json (every push writes it) and the daemon's own view. */
  const lastPush = (): LastPush | null => {
    const file = readLastPush(o.paths);
    if (!mine) return file;
    if (!file || Date.parse(mine.at) > Date.parse(file.at)) return { ...mine, last_ok_at: mine.ok ? mine.at : (file?.last_ok_at ?? null), last_ok_url: mine.ok ? mine.url : (file?.last_ok_url ?? null) };
    return file;
  };

  async function run() {
    timer = null;
    nextAt = null;
    again = false;
    const at = new Date().toISOString();
    const proc = Bun.spawn([...selfCommand(), "backup", "push", "-o", "json"], {
      env: { ...process.env, SYNCROPEL_HOME: o.paths.home, NO_COLOR: "1" },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    child = proc;
    const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    child = null;
    seenExternal = readLastPush(o.paths)?.at ?? seenExternal; // the child's own entry is not someone else's
    if (stopped) return;
    if (code === 0) {
      failures = 0;
      let r: any = {};
      try {
        r = JSON.parse(stdout);
      } catch {}
      mine = { at, ok: true, url: r.url, records: r.records };
      log.info("off-host backup pushed", { url: r.url, records: r.records, bytes: r.bytes, compressed_bytes: r.compressed_bytes, generation: r.generation, deleted: r.deleted?.length ?? 0 });
      schedule(again ? 0 : everyMs);
      return;
    }
    failures++;
    failuresTotal++;
    const reason = (stderr.trim().split("\n").pop() ?? "").replace(/^error:\s*/, "") || `spl backup push exited ${code}`;
    mine = { at, ok: false, error: reason };
    const retryMs = Math.min(everyMs, FIRST_RETRY_MS * 2 ** (failures - 1));
    log.error(`off-host backup push FAILED (attempt ${failures}, retrying in ${Math.round(retryMs / 1000)}s; ingest is unaffected): ${reason}`, {
      url: o.config.url,
      attempt: failures,
      retry_in_ms: retryMs,
    });
    schedule(retryMs);
  }

  /**
   * A push that failed beside the daemon (`spl backup push` by hand) counts as the daemon's own:
   * it is retried with the same backoff rather than at the next `snapshot_every`.
   */
  let watchExternal: ReturnType<typeof setInterval> | null = null;
  const checkExternal = () => {
    const file = readLastPush(o.paths);
    if (!file || file.ok || child || file.at === seenExternal || (mine && Date.parse(mine.at) >= Date.parse(file.at))) return;
    seenExternal = file.at;
    failures++;
    failuresTotal++;
    schedule(Math.min(everyMs, FIRST_RETRY_MS * 2 ** (failures - 1)));
  };

  /** A snapshot now (a new replication generation needs one), or right after the one running. */
  const pushSoon = () => {
    if (child) again = true;
    else if (failures === 0) schedule(0);
  };

  const replicator = o.config.continuous
    ? new Replicator({
        paths: o.paths,
        config: o.config,
        log: o.log,
        startSeq: () => {
          try {
            const r = StoreReader.open(o.paths.store, "shared");
            try {
              return (r.db.query("SELECT MAX(seq) AS m FROM records").get() as { m: number | null }).m ?? 0;
            } finally {
              r.close();
            }
          } catch {
            return 0;
          }
        },
        needsSnapshot: pushSoon,
      })
    : null;

  const status = (): OffsiteStatus => {
    const last = lastPush();
    return {
      configured: true,
      url: o.config.url,
      continuous: o.config.continuous,
      every_secs: o.config.everySecs,
      snapshot_every_secs: o.config.everySecs,
      sync_interval_secs: o.config.syncIntervalSecs,
      keep_days: o.config.keepDays,
      last_push: last,
      last_push_ok_at: last?.last_ok_at ?? null,
      consecutive_failures: last && !last.ok ? Math.max(1, failures) : 0,
      next_push_at: nextAt ? new Date(nextAt).toISOString() : null,
      pushing: child !== null,
      replication: replicator?.status() ?? null,
    };
  };

  return {
    name: "offsite-backup",
    start() {
      // Due one `snapshot_every` after the last successful push (now, if there never was one).
      // With replication, the thread says at once whether its generation has a snapshot yet
      // (needsSnapshot), so a first push waits for that word instead of racing it.
      const last = readLastPush(o.paths);
      const lastOk = last?.last_ok_at ? Date.parse(last.last_ok_at) : 0;
      const due = Math.max(0, Math.min(everyMs, lastOk + everyMs - Date.now()));
      schedule(replicator && !lastOk ? Math.min(everyMs, FIRST_PUSH_WAIT_MS) : due);
      replicator?.start();
      watchExternal = setInterval(checkExternal, EXTERNAL_CHECK_MS);
    },
    async stop() {
      stopped = true;
      if (watchExternal) clearInterval(watchExternal);
      if (timer) clearTimeout(timer);
      timer = null;
      const c = child;
      if (c) {
        // A push stopped mid-way leaves no half copy (it writes under temp names): 10 s, then SIGKILL.
        c.kill("SIGTERM");
        if ((await Promise.race([c.exited, Bun.sleep(STOP_PUSH_MS).then(() => "late" as const)])) === "late") {
          log.warn(`the off-host push (pid ${c.pid}) did not stop within ${STOP_PUSH_MS / 1000} s of SIGTERM: killed`);
          c.kill("SIGKILL");
          await c.exited;
        }
      }
      await replicator?.stop();
    },
    afterCommit(created) {
      if (replicator && created.length) replicator.committed(created[created.length - 1]!.sequence);
    },
    status,
    metrics(out) {
      const s = status();
      out.family("spl_offsite_push_last_success", "gauge", "1 when the latest off-host snapshot push succeeded, 0 when it failed (or none yet).");
      out.sample("spl_offsite_push_last_success", s.last_push?.ok ? 1 : 0);
      out.family("spl_offsite_push_last_success_timestamp_seconds", "gauge", "When an off-host snapshot push last succeeded.");
      if (s.last_push_ok_at) out.sample("spl_offsite_push_last_success_timestamp_seconds", Date.parse(s.last_push_ok_at) / 1000);
      out.family("spl_offsite_push_failures", "gauge", "Consecutive failed snapshot pushes.");
      out.sample("spl_offsite_push_failures", s.consecutive_failures);
      out.family("spl_offsite_push_errors_total", "counter", "Snapshot pushes that failed since the daemon started (each retried with backoff).");
      out.sample("spl_offsite_push_errors_total", failuresTotal);
      replicator?.metrics(out);
    },
  };
}

// The daemon's off-host schedule: every `every`, run `spl backup push` as a child process (the
// snapshot, compression and upload then never stall the daemon's event loop, so ingest goes on),
// and after a failure retry with backoff (2 s, 4 s, 8 s … up to `every`), each failure an ERROR
// line in the log. The last result is shown by GET /v1/status `offsite` and `spl doctor`.
import { selfCommand } from "../../daemonctl/control";
import type { Logger } from "../../log";
import type { HomePaths } from "../../paths";
import type { OffsiteConfig } from "./config";
import { type LastPush, lastOkAt, readLastPush } from "./push";

const FIRST_RETRY_MS = 2000;

export interface OffsiteStatus {
  configured: true;
  url: string;
  every_secs: number;
  keep_days: number;
  last_push: LastPush | null;
  consecutive_failures: number;
  /** Pushes that failed since the daemon started (spl_offsite_push_errors_total). */
  failures_total: number;
  next_push_at: string | null;
  pushing: boolean;
}

export interface OffsiteService {
  readonly name: string;
  start(): void;
  stop(): Promise<void>;
  status(): OffsiteStatus;
}

export function offsiteService(o: { paths: HomePaths; config: OffsiteConfig; log: Logger }): OffsiteService {
  const log = o.log.child("spl::offsite");
  const everyMs = o.config.everySecs * 1000;
  let last = readLastPush(o.paths);
  let failures = 0;
  let failuresTotal = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  let nextAt: number | null = null;
  let child: ReturnType<typeof Bun.spawn> | null = null;
  let stopped = false;

  const schedule = (ms: number) => {
    if (stopped) return;
    nextAt = Date.now() + ms;
    timer = setTimeout(run, ms);
  };

  async function run() {
    timer = null;
    nextAt = null;
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
    if (stopped) return;
    if (code === 0) {
      failures = 0;
      let r: any = {};
      try {
        r = JSON.parse(stdout);
      } catch {}
      last = { at, ok: true, url: r.url, records: r.records, last_ok_at: at };
      log.info("off-host backup pushed", { url: r.url, records: r.records, bytes: r.bytes, compressed_bytes: r.compressed_bytes, deleted: r.deleted?.length ?? 0 });
      schedule(everyMs);
      return;
    }
    failures++;
    failuresTotal++;
    const reason = (stderr.trim().split("\n").pop() ?? "").replace(/^error:\s*/, "") || `spl backup push exited ${code}`;
    last = { at, ok: false, error: reason, last_ok_at: lastOkAt(last) };
    const retryMs = Math.min(everyMs, FIRST_RETRY_MS * 2 ** (failures - 1));
    log.error(`off-host backup push FAILED (attempt ${failures}, retrying in ${Math.round(retryMs / 1000)}s; ingest is unaffected): ${reason}`, {
      url: o.config.url,
      attempt: failures,
      retry_in_ms: retryMs,
    });
    schedule(retryMs);
  }

  return {
    name: "offsite-backup",
    start() {
      // Due one `every` after the last successful push (now, if there never was one).
      const lastOk = last?.ok ? Date.parse(last.at) : 0;
      schedule(Math.max(0, Math.min(everyMs, lastOk + everyMs - Date.now())));
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      const c = child;
      if (c) {
        c.kill("SIGTERM");
        await c.exited;
      }
    },
    status() {
      return {
        configured: true,
        url: o.config.url,
        every_secs: o.config.everySecs,
        keep_days: o.config.keepDays,
        last_push: last,
        consecutive_failures: failures,
        failures_total: failuresTotal,
        next_push_at: nextAt ? new Date(nextAt).toISOString() : null,
        pushing: child !== null,
      };
    },
  };
}

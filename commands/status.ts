// spl status [-o json]: is the daemon up, and what does it hold. Exit 1 when not running.
import { defineCommand } from "citty";
import { DaemonError, NotRunningError, request, urlArg } from "../lib/client";
import { formatDuration, out, outputArgs, printJson, wantsJson } from "../lib/cli/output";
import { VERSION } from "../lib/version";
import { portArg, useInstanceOnPort } from "../lib/daemonctl/home-by-port";

export default defineCommand({
  meta: { name: "status", description: "Show whether the daemon is running and what it holds" },
  args: { ...outputArgs, ...urlArg, ...portArg },
  async run({ args }) {
    const json = wantsJson(args);
    useInstanceOnPort(args.port);
    const { resolveTarget } = await import("../lib/client");
    let reply;
    try {
      reply = await request("GET", "/v1/status", undefined, resolveTarget(args.url));
    } catch (err) {
      if (!(err instanceof NotRunningError)) throw err;
      // The socket is gone (run/ deleted?) but the daemon may still serve its port.
      const found = args.url || process.env.SPL_SERVE_URL ? null : await (await import("../lib/daemonctl/control")).daemonByPort();
      if (found) {
        reply = await request("GET", "/v1/status", undefined, resolveTarget(found.url));
        process.stderr.write(`note: reached spl serve (pid ${found.pid}) on ${found.url}; its socket ${resolveTarget().describe} does not answer — 'spl serve --restart' recreates it\n`);
      }
    }
    if (!reply) {
      if (json) printJson({ status: "not running", version: VERSION });
      else out(`Syncropel kernel ${VERSION}\nStatus:   not running`);
      process.stderr.write("hint: start it with 'spl serve --daemon'\n");
      process.exitCode = 1;
      return;
    }
    const s = reply.body;
    if (reply.status !== 200) {
      if (reply.status === 503 && s?.code === "STARTING") {
        if (json) printJson({ status: "starting" });
        else out(`Syncropel kernel ${VERSION}\nStatus:   starting (rebuilding state from the store)`);
        process.exitCode = 1;
        return;
      }
      throw DaemonError.fromReply(reply); // what — fix [CODE], like every other verb
    }
    if (json) return printJson(s);
    out(
      [
        `Syncropel kernel ${s.version}`,
        `Status:   ${s.status}`,
        `PID:      ${s.pid}   Uptime: ${formatDuration(s.uptime_secs)}`,
        `Records:  ${s.records} across ${s.threads} threads`,
        `Store:    ${s.store}`,
        `Instance: ${s.instance_did}`,
        ...backupLine(s.backup),
        ...offsiteLine(s.offsite),
        ...storageWarnings(s.storage, s.backup?.outcome?.startsWith("in progress") === true),
      ].join("\n"),
    );
  },
});

/** Storage trouble the daemon has seen (its `storage` status); nothing when all is well. */
function storageWarnings(st: any, backupInProgress: boolean): string[] {
  if (!st) return [];
  const lines: string[] = [];
  if (st.last_error) lines.push(`Storage:  last write error at ${st.last_error.at}: ${st.last_error.message} (see 'spl doctor')`);
  // The startup backup's pinned snapshot holds checkpoints off until it is written: expected.
  if (st.checkpoint_ok === false && !backupInProgress) lines.push(`Storage:  the WAL (${st.wal_bytes} bytes) is not being checkpointed (see 'spl doctor')`);
  const log = st.log;
  if (log && !log.ok) lines.push(`Log:      cannot be written since ${log.since}: ${log.last_error?.message} (${log.dropped_lines} lines dropped; retried every second)`);
  return lines;
}

/** The startup backup while it is being written, or when it failed (a written one needs no line). */
function backupLine(b: any): string[] {
  if (!b || b.outcome === "written") return [];
  return [`Backup:   ${b.path} (${b.outcome})`];
}

/** The off-host schedule's last result and replication, when [backup.offsite] is configured. */
function offsiteLine(o: any): string[] {
  if (!o?.configured) return [];
  const last = o.last_push;
  const lines = [
    !last
      ? `Offsite:  ${o.url} (no push yet${o.pushing ? ", pushing now" : ""})`
      : `Offsite:  ${o.url} — last push ${last.ok ? "ok" : `FAILED (${last.error}; last success ${last.last_ok_at ?? "never"})`} at ${last.at}`,
  ];
  const r = o.replication;
  if (r) {
    const lag = `lag ${Number(r.lag_secs).toFixed(1)}s, shipped through seq ${r.shipped_through}`;
    if (r.state === "failing") lines.push(`Replica:  FAILING (${r.last_error?.message}; last success ${r.last_ok_at ?? "never"}) — ${lag}`);
    else lines.push(`Replica:  ${r.state} — ${lag}${r.last_ok_at ? `, last segment ${r.last_ok_at}` : ""}`);
  }
  return lines;
}

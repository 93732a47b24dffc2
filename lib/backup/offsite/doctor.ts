// The doctor's off-host rows: configured or not (with the line to add), the newest snapshot's
// age against `snapshot_every`, the last push's result (the running daemon's view, which reads
// <home>/offsite.json afresh, else that file), and continuous replication: outcome and lag from
// the running daemon, else where <home>/replication.json says it stopped.
import { sectionOf } from "../../config";
import { OFFSITE_EXAMPLE, offsiteSection, type OffsiteConfig } from "./config";
import { formatDuration, plural } from "../../cli/output";
import { type Check, type CheckResult, type DoctorContext, fail, pass, warn } from "../../doctor/types";

const LIST_TIMEOUT_MS = 5000;

export const offsiteBackup: Check = async (ctx) => {
  const name = "off-host backup";
  if (!ctx.config) return null; // the config row says why
  const cfg = sectionOf(ctx.config, offsiteSection);
  if (!cfg) return pass(name, `not configured: every backup lives on this machine only — add to ${ctx.paths.config}: ${OFFSITE_EXAMPLE}`);
  const { readLastPush } = await import("./push");
  const { readFolders } = await import("./listing");
  const { remoteFor } = await import("./aws-chain");
  const rows: CheckResult[] = [];
  const every = formatDuration(cfg.everySecs);
  try {
    const folders = await Promise.race([
      readFolders(remoteFor(cfg.url, ctx.paths, cfg)),
      Bun.sleep(LIST_TIMEOUT_MS).then(() => {
        throw new Error(`no answer within ${LIST_TIMEOUT_MS / 1000}s`);
      }),
    ]);
    const copies = folders.flatMap((f) => f.copies).sort((a, b) => b.time_ms - a.time_ms);
    const newest = copies.find((c) => c.checksum);
    if (!newest) rows.push(warn(name, `${cfg.url} holds no copy yet — 'spl backup push' pushes one now (the daemon pushes every ${every})`));
    else {
      const ageSecs = Math.max(0, Math.floor((Date.now() - newest.time_ms) / 1000));
      const what = `newest snapshot ${newest.url} is ${formatDuration(ageSecs)} old (every ${every}, ${plural(copies.length, "snapshot", "snapshots")})`;
      rows.push(ageSecs > 2 * cfg.everySecs ? warn(name, `${what}: older than twice 'snapshot_every' — check 'spl doctor' last push, or 'spl backup push'`) : pass(name, what));
    }
  } catch (err) {
    const msg = (err as { oneLine?: string }).oneLine ?? (err as Error).message;
    rows.push(warn(name, `cannot list ${cfg.url}: ${msg}`));
  }
  const last = (ctx.daemonIsOurs ? ctx.status?.offsite?.last_push : undefined) ?? readLastPush(ctx.paths);
  const lastOk = last?.last_ok_at ? `; last success ${last.last_ok_at}` : "; no push has succeeded yet";
  if (!last) rows.push(warn("last off-host push", "none yet — 'spl backup push' pushes now; the running daemon pushes on its schedule"));
  else if (!last.ok) rows.push(fail("last off-host push", `FAILED at ${last.at}: ${last.error} (the daemon retries with backoff${lastOk})`));
  else rows.push(pass("last off-host push", `ok at ${last.at}: ${last.url} (${last.records} records)`));
  rows.push(await replicationRow(ctx, cfg));
  return rows;
};

async function replicationRow(ctx: DoctorContext, cfg: OffsiteConfig): Promise<CheckResult> {
  const name = "off-host replication";
  if (!cfg.continuous) return pass(name, `off (continuous = false): a host lost between snapshots loses up to ${formatDuration(cfg.everySecs)} of records`);
  const r = ctx.daemonIsOurs ? ctx.status?.offsite?.replication : undefined;
  const interval = `sync_interval ${cfg.syncIntervalSecs}s`;
  if (r) {
    if (r.state === "failing") {
      return fail(name, `FAILING since ${r.last_ok_at ? `the last success at ${r.last_ok_at}` : "the start"} (attempt ${r.consecutive_failures}): ${r.last_error?.message ?? "?"}; ${r.behind_records} records (${r.lag_secs.toFixed(1)}s) not off-host yet — the daemon retries with backoff`);
    }
    if (r.state === "starting") return warn(name, `starting (${interval})`);
    const what = `shipped through seq ${r.shipped_through} (generation ${r.generation}), lag ${r.lag_secs.toFixed(1)}s, ${r.behind_records} records waiting; last segment ${r.last_ok_at ?? "none yet"} (${interval})`;
    // More than 10 intervals (at least a minute) behind: the remote is slow or overloaded.
    return r.lag_secs > Math.max(60, 10 * cfg.syncIntervalSecs) ? warn(name, `${what}: falling behind`) : pass(name, what);
  }
  const { readReplicaState } = await import("./replica-state");
  const st = readReplicaState(ctx.paths);
  if (!st) return pass(name, `nothing shipped yet: the daemon ships committed records while it runs (${interval})`);
  const where = `shipped through seq ${st.through} (generation ${st.generation}), last segment ${st.shipped_at ?? "none yet"}`;
  if (st.last_error) return warn(name, `daemon not running; ${where}; its last attempt failed at ${st.last_error.at}: ${st.last_error.message}`);
  return pass(name, `daemon not running; ${where} — it ships the rest when it starts`);
}

// The fleet rows of `spl doctor` (README "Fleet"): this member's role, whether its coordinator answers,
// and when the coordinator last acknowledged a heartbeat. A plain instance has none of them.
import { request } from "../client";
import { formatDuration } from "../cli/output";
import { sectionOf } from "../config";
import { fleetMember, fleetSection } from "./config";
import { type Check, type CheckResult, fail, pass, warn } from "../doctor/types";

export const fleetRows: Check = async (ctx) => {
  const fleet = ctx.config && sectionOf(ctx.config, fleetSection);
  if (!ctx.config || !fleet?.enabled) return null;
  const running = ctx.daemonIsOurs ? await request("GET", "/v1/fleet/member", undefined, ctx.target, 3000).catch(() => null) : null;
  const self = running?.status === 200 ? running.body : null;
  const planned = fleetMember(fleet, ctx.config.server, ctx.paths.home);
  const role: string = self?.role ?? planned.role;
  const coordinatorUrl: string | null = self?.coordinator_url ?? planned.coordinatorUrl;
  const rows: CheckResult[] = [pass("fleet role", `${role} '${self?.name ?? planned.name}'${self ? ` (${self.did})` : ""}${role === "worker" ? ` of ${coordinatorUrl}` : ""}`)];
  if (role === "worker" && coordinatorUrl) {
    const where = `check [fleet] coordinator_url in ${ctx.paths.config} (spl config show | grep coordinator) and that the coordinator runs: curl -fsS ${coordinatorUrl}/health`;
    try {
      const res = await fetch(`${coordinatorUrl}/health`, { signal: AbortSignal.timeout(3000) });
      await res.text();
      rows.push(res.status === 200 ? pass("fleet coordinator", `${coordinatorUrl} answers /health`) : fail("fleet coordinator", `${coordinatorUrl}/health answered ${res.status} — ${where}`));
    } catch (err) {
      const why = (err as Error).name === "TimeoutError" ? "no answer within 3 s" : "cannot connect";
      rows.push(fail("fleet coordinator", `${coordinatorUrl} did not answer (${why}) — ${where}`));
    }
  }
  if (!self) rows.push(warn("fleet heartbeat", "the daemon is not running, so it sends no heartbeats — start it with 'spl serve --daemon'"));
  else if (self.last_error) rows.push(fail("fleet heartbeat", `last beat failed at ${new Date(self.last_error.at * 1000).toISOString()}: ${self.last_error.message}`));
  else if (self.last_ack_unix) rows.push(pass("fleet heartbeat", `last beat acknowledged ${formatDuration(Math.max(0, Math.floor(Date.now() / 1000) - self.last_ack_unix))} ago (every ${self.heartbeat_interval_secs}s)`));
  else rows.push(warn("fleet heartbeat", "no beat acknowledged yet"));
  return rows;
};

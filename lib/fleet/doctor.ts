// The fleet rows of `spl doctor` (README "Fleet"): this member's role and epoch, whether its
// coordinator answers (over TLS with [fleet] ca_file), when the coordinator last acknowledged a
// heartbeat, and what would keep a fleet across hosts from working or safe: no member
// credential, a coordinator advertising loopback while listening elsewhere, a fleet credential
// sent over plain HTTP to another host, a worker following another coordinator than its config
// names, a deposed coordinator, new work refused while the coordinator is unreachable.
import { request } from "../client";
import { formatDuration } from "../cli/output";
import { readSettingFile, sectionOf, serverSection } from "../config";
import { isLoopback, isTlsFailure } from "../net";
import { CA_FIX, fleetMember, fleetSection, loopbackAdvertised } from "./config";
import { readMemberCredential } from "./credentials";
import { type Check, type CheckResult, fail, pass, warn } from "../doctor/types";

/** A URL a fleet credential would travel to in clear text over the network (http://, not loopback). */
export const plainAcrossHosts = (url: string | null | undefined) => {
  if (!url) return false;
  try {
    const u = new URL(url);
    return u.protocol === "http:" && !isLoopback(u.hostname);
  } catch {
    return false;
  }
};

export const fleetRows: Check = async (ctx) => {
  const fleet = ctx.config && sectionOf(ctx.config, fleetSection);
  if (!ctx.config || !fleet?.enabled) return null;
  const server = sectionOf(ctx.config, serverSection);
  const running = ctx.daemonIsOurs ? await request("GET", "/v1/fleet/member", undefined, ctx.target, 3000).catch(() => null) : null;
  const self = running?.status === 200 ? running.body : null;
  const planned = fleetMember(fleet, { ...server, tls: server.tlsCertFile !== null }, ctx.paths.home);
  const role: string = self?.role ?? planned.role;
  const coordinatorUrl: string | null = self?.coordinator_url ?? planned.coordinatorUrl;
  const rows: CheckResult[] = [pass("fleet role", `${role} '${self?.name ?? planned.name}'${self ? ` (${self.did})` : ""}${role === "worker" ? ` of ${coordinatorUrl}` : ""}`)];
  if (self?.deposed) {
    rows.push(fail("fleet epoch", `deposed: coordinator is now ${self.deposed.coordinator_url ?? "another member"} (epoch ${self.deposed.epoch}) — make this home its worker: set [fleet] coordinator_url = "${self.deposed.coordinator_url ?? "<new coordinator>"}" in ${ctx.paths.config} and restart`));
  } else if (self?.epoch && role === "coordinator") rows.push(pass("fleet epoch", `coordinator of epoch ${self.epoch}`));
  if (role === "worker" && self && self.configured_coordinator_url && self.coordinator_url !== self.configured_coordinator_url) {
    rows.push(warn("fleet epoch", `following ${self.coordinator_url} (epoch ${self.epoch}), which replaced ${self.configured_coordinator_url} — set [fleet] coordinator_url = "${self.coordinator_url}" in ${ctx.paths.config}`));
  }
  // The running daemon knows where it listens (a --host flag is not in config.toml).
  const loopback = self ? self.endpoint_warning : loopbackAdvertised(planned, ctx.config.server.host);
  if (loopback) rows.push(warn("fleet endpoint", loopback));
  if (role === "worker" && !readMemberCredential(ctx.paths.home)) rows.push(fail("fleet credential", `this member holds no member credential (${ctx.paths.home}/secrets/fleet_member) — join: spl fleet join ${coordinatorUrl} --name ${planned.name} --token-file FILE`));
  const plain = [role === "worker" ? coordinatorUrl : null, self?.endpoint ?? planned.endpoint].filter(plainAcrossHosts);
  if (plain.length) rows.push(warn("fleet transport", `the fleet credential goes over plain HTTP to ${[...new Set(plain)].join(", ")}, readable on the network — serve HTTPS ([server] tls_cert_file, tls_key_file) and use https:// URLs with [fleet] ca_file (README "Fleet": TLS)`));
  if (role === "worker" && coordinatorUrl) {
    const where = `check [fleet] coordinator_url in ${ctx.paths.config} (spl config show | grep coordinator) and that the coordinator runs: curl -fsS ${coordinatorUrl}/health`;
    let ca: string | undefined;
    try {
      ca = fleet.caFile ? readSettingFile("[fleet] ca_file", fleet.caFile, CA_FIX) : undefined;
    } catch (err) {
      rows.push(fail("fleet ca_file", `${(err as Error).message}: the daemon will not start with it — ${CA_FIX}`));
    }
    try {
      const res = await fetch(`${coordinatorUrl}/health`, { signal: AbortSignal.timeout(3000), tls: ca ? { ca } : undefined } as RequestInit);
      await res.text();
      rows.push(res.status === 200 ? pass("fleet coordinator", `${coordinatorUrl} answers /health`) : fail("fleet coordinator", `${coordinatorUrl}/health answered ${res.status} — ${where}`));
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      const tls = isTlsFailure(e);
      const why = e.name === "TimeoutError" ? "no answer within 3 s" : tls ? `its certificate is not trusted (${e.code ?? e.message}): set [fleet] ca_file to the CA that signed it` : "cannot connect";
      rows.push(fail("fleet coordinator", `${coordinatorUrl} did not answer (${why}) — ${where}`));
    }
  }
  if (!self) rows.push(warn("fleet heartbeat", "the daemon is not running, so it sends no heartbeats — start it with 'spl serve --daemon'"));
  else if (self.fail_closed?.active) rows.push(fail("fleet heartbeat", `no beat acknowledged for ${formatDuration(Math.max(0, Math.floor(Date.now() / 1000) - self.fail_closed.last_contact_unix))}: new INTEND/DO/CALL are refused (fail_closed_after_secs = ${self.fail_closed.after_secs})${self.last_error ? ` — last error: ${self.last_error.message}` : ""}`));
  else if (self.last_error) rows.push(fail("fleet heartbeat", `last beat failed at ${new Date(self.last_error.at * 1000).toISOString()}: ${self.last_error.message}`));
  else if (self.last_ack_unix) rows.push(pass("fleet heartbeat", `last beat acknowledged ${formatDuration(Math.max(0, Math.floor(Date.now() / 1000) - self.last_ack_unix))} ago (every ${self.heartbeat_interval_secs}s)`));
  else rows.push(warn("fleet heartbeat", "no beat acknowledged yet"));
  return rows;
};

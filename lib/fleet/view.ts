// What the fleet verbs read and print: where the coordinator is (README "Fleet": [fleet] coordinator_url,
// else the local daemon), picking one member by DID, tail or name, and the runbook's layouts.
import { existsSync, readFileSync } from "node:fs";
import { call, request, resolveTarget, type Target } from "../client";
import { loadConfig, readSettingFile, sectionOf } from "../config";
import { UserError } from "../errors";
import { homePaths } from "../paths";
import { formatDuration } from "../cli/output";
import { CA_FIX, fleetMember, fleetSection } from "./config";
import type { MemberView } from "./registry";
import type { EmergencyState, Freeze } from "./control";
import type { ElectionStatus } from "./contract";
import { readMemberCredential } from "./credentials";

export interface FleetStatus {
  coordinator_url: string;
  heartbeat_interval_secs: number;
  epoch?: number;
  /** Set on a coordinator that was replaced: who holds the fleet now. */
  deposed?: { coordinator_url: string | null; epoch: number } | null;
  counts: { live: number; stale: number; archived: number };
  instances: MemberView[];
  freezes: Freeze[];
  emergency: EmergencyState;
  /** Fan-outs still waiting on children (filled by the fan-out side; empty until then). */
  pending_fanouts?: unknown[];
  /** With [fleet.etcd]: the election, as the answering member sees it. */
  election?: ElectionStatus;
  /** A member answered for itself: its coordinator did not answer it (why). */
  coordinator_unreachable?: string;
}

/** A token for another member: SPL_TOKEN, else this member's credential, else the home's own. */
function memberToken(home: string): string | undefined {
  if (process.env.SPL_TOKEN) return process.env.SPL_TOKEN;
  const member = readMemberCredential(home);
  if (member) return member;
  const p = homePaths(home);
  return existsSync(p.token) ? readFileSync(p.token, "utf8").trim() || undefined : undefined;
}

/** [fleet] ca_file's PEM for https members (none: the system roots). */
function fleetCa(): string | undefined {
  const p = homePaths();
  if (!existsSync(p.config)) return undefined;
  const file = sectionOf(loadConfig(p.config), fleetSection).caFile;
  if (!file) return undefined;
  return readSettingFile("[fleet] ca_file", file, CA_FIX);
}

/** Another member by URL: with this home's credential for it and the fleet's CA. */
export function memberTarget(url: string): Target {
  const clean = url.replace(/\/+$/, "");
  return { url: clean, token: memberToken(homePaths().home), describe: clean, ca: fleetCa() };
}

/**
 * Where the fleet's coordinator is, by what the daemon says about itself (GET /v1/fleet/member:
 * a worker names its coordinator; anything else is the coordinator, or a plain instance, itself):
 * the local daemon, or the one --url / SPL_SERVE_URL names. Only when that daemon does not answer
 * is it worked out from config.toml, as the daemon would.
 */
export async function coordinatorTarget(urlOverride?: string): Promise<Target> {
  const p = homePaths();
  const url = urlOverride || process.env.SPL_SERVE_URL;
  const here: Target = url ? memberTarget(url) : resolveTarget();
  const self = await request("GET", "/v1/fleet/member", undefined, here, 5000).catch(() => null);
  if (self?.status === 200 && typeof self.body?.role === "string") return self.body.role === "worker" && self.body.coordinator_url ? memberTarget(self.body.coordinator_url) : here;
  if (url) return here;
  const config = loadConfig(p.config);
  const me = fleetMember(sectionOf(config, fleetSection), config.server, p.home);
  return me.role === "worker" && me.coordinatorUrl ? memberTarget(me.coordinatorUrl) : here;
}

export const fetchStatus = (target: Target) => call<FleetStatus>("GET", "/v1/fleet/status", undefined, target);

const label = (m: MemberView) => `${m.name || "?"} (${m.did})`;

/** One member by full DID, its 16-hex tail, or its name (its live holder first); otherwise a one-line error listing them. */
export function pickMember(status: FleetStatus, key: string): MemberView {
  const all = status.instances;
  const byId = all.filter((m) => m.did === key || m.did.endsWith(`:${key}`));
  const byName = all.filter((m) => m.name === key);
  const unique = byId.length ? byId : byName.filter((m) => m.status === "live").length ? byName.filter((m) => m.status === "live") : byName;
  if (unique.length === 1) return unique[0]!;
  if (unique.length > 1) throw new UserError(`'${key}' names ${unique.length} members: ${unique.map(label).join(", ")}`, "give the full DID");
  const known = all.length ? all.map(label).join(", ") : "(none registered yet)";
  throw new UserError(`no fleet member '${key}' — members: ${known}`);
}

const cell = (s: string, width: number) => (s.length < width ? s.padEnd(width) : `${s} `);

export const countsLine = (c: FleetStatus["counts"]) => `${c.live} live · ${c.stale} stale · ${c.archived} archived`;

/** How long ago a unix time was, as a person reads it ("12s ago"). */
export const agoText = (unix: number, nowMs = Date.now()) => `${formatDuration(Math.max(0, Math.floor(nowMs / 1000 - unix)))} ago`;

/**
 * An archived member's last beat is history: its uptime and health were true then, not now. It
 * shows how long ago it was last heard from instead (and that it said goodbye, if it did).
 */
function liveness(m: MemberView): { uptime: string; health: string } {
  if (m.status !== "archived") return { uptime: formatDuration(m.uptime_secs), health: m.health };
  return { uptime: "-", health: `${m.health === "draining" ? "stopped" : "gone"}, last seen ${agoText(m.last_heartbeat)}` };
}

export function renderList(s: FleetStatus): string {
  const row = (c: string[]) => `  ${cell(c[0]!, 41)}${cell(c[1]!, 26)}${cell(c[2]!, 9)}${cell(c[3]!, 9)}${cell(c[4]!, 11)}${c[5]}`;
  const lines = [row(["DID", "ENDPOINT", "STATUS", "VERSION", "UPTIME", "HEALTH"])];
  for (const m of s.instances) {
    const { uptime, health } = liveness(m);
    lines.push(row([m.did, m.endpoint, m.status, m.version, uptime, health]));
  }
  lines.push("", `  ${countsLine(s.counts)}`);
  return lines.join("\n");
}

export function renderStatus(s: FleetStatus): string {
  // The runbook's layout: "(none)" on the label's line, else one line per freeze under it.
  const freezes = s.freezes.length ? ["", ...s.freezes.map((f) => `    [${f.level}] ${f.namespace} — ${f.reason ?? "no reason given"}`)] : ["   (none)"];
  const e = s.emergency;
  const emergency = e.active ? ["", "  ⚠ EMERGENCY STOP ACTIVE", `    Reason: ${e.reason ?? "no reason given"}`, `    Issued by: ${e.issued_by ?? "unknown"}`] : ["   inactive"];
  // Only a replaced coordinator adds a line: the runbook's block is unchanged otherwise.
  const deposed = s.deposed ? [`  ⚠ deposed: coordinator is now ${s.deposed.coordinator_url ?? "unknown"} (epoch ${s.deposed.epoch})`] : [];
  return [
    "Fleet status",
    ...deposed,
    `  Coordinator URL:  ${s.coordinator_url}`,
    ...(s.election ? electedLines(s) : []),
    `  Heartbeat:        every ${s.heartbeat_interval_secs}s`,
    `  Instances:        ${countsLine(s.counts)}`,
    "",
    `  Active freezes:${freezes[0]}`,
    ...freezes.slice(1),
    "",
    `  Emergency stop:${emergency[0]}`,
    ...emergency.slice(1),
  ].join("\n");
}

/** With [fleet.etcd] (README "Automatic failover with etcd"): who the key names, at which epoch, since when — or why none. */
function electedLines(s: FleetStatus): string[] {
  const e = s.election!;
  const c = e.coordinator;
  const since = (unix: number) => `${new Date(unix * 1000).toISOString().replace(/\.\d{3}Z$/, "Z")} (${formatDuration(Math.max(0, Math.floor(Date.now() / 1000) - unix))} ago)`;
  const lines = [c ? `  Elected:          ${c.name}, epoch ${c.epoch}, since ${since(c.since_unix)} (etcd)` : `  Elected:          none now — ${e.reachable ? "a candidate takes the key within lease_ttl_secs" : "etcd does not answer, so no election happens"} (spl doctor)`];
  if (!e.reachable) lines.push(`  ✗ etcd:           ${e.error ?? "not reached"}`);
  if (s.coordinator_unreachable) lines.push(`  ! ${s.coordinator_unreachable}`);
  return lines;
}

/** `fleet status --live`: the status, then each member's load and the pending fan-outs. */
export function renderLive(s: FleetStatus): string {
  const row = (c: string[]) => `    ${cell(c[0]!, 14)}${cell(c[1]!, 10)}${cell(c[2]!, 12)}${cell(c[3]!, 11)}${c[4]}`;
  const members = s.instances.map((m) => row([m.name || "?", m.status, m.version, liveness(m).health, m.status === "archived" ? "-" : String(m.active_dispatches)]));
  const pending = s.pending_fanouts ?? [];
  return [
    renderStatus(s),
    "",
    "  Members:",
    row(["NAME", "STATUS", "VERSION", "HEALTH", "ACTIVE DISPATCHES"]),
    ...(members.length ? members : ["    (none registered yet)"]),
    "",
    `  Pending fan-outs: ${pending.length ? pending.length : "(none)"}`,
  ].join("\n");
}

export function renderShow(m: MemberView): string {
  const { uptime, health } = liveness(m);
  return [
    `Instance: ${m.did}`,
    `  Endpoint:         ${m.endpoint}`,
    `  Status:           ${m.status}`,
    `  Version:          ${m.version}`,
    `  Uptime:           ${uptime}`,
    `  Health:           ${health}`,
    `  Active dispatches: ${m.status === "archived" ? "-" : m.active_dispatches}`,
    `  Store records:    ${m.store_records}`,
    // The runbook's layout: unix seconds here (the console and `fleet list` say how long ago).
    `  Last heartbeat:   ${m.last_heartbeat} (unix)`,
  ].join("\n");
}

export interface Ping {
  did: string;
  endpoint: string;
  reachable: boolean;
  status: number | null;
  latency_ms: number | null;
  error: string | null;
}

export async function ping(m: MemberView): Promise<Ping> {
  const t0 = performance.now();
  try {
    const ca = fleetCa();
    const res = await fetch(`${m.endpoint}/health`, { signal: AbortSignal.timeout(5000), tls: ca ? { ca } : undefined } as RequestInit);
    await res.text();
    return { did: m.did, endpoint: m.endpoint, reachable: res.status === 200, status: res.status, latency_ms: Math.round(performance.now() - t0), error: null };
  } catch (err) {
    const why = (err as Error).name === "TimeoutError" ? "no answer within 5 s" : "cannot connect";
    return { did: m.did, endpoint: m.endpoint, reachable: false, status: null, latency_ms: null, error: why };
  }
}

export function renderPing(p: Ping): string {
  if (p.reachable) return `  ✓ ${p.did} reachable in ${p.latency_ms}ms (${p.status} OK)`;
  return `  ✗ ${p.did} unreachable at ${p.endpoint}: ${p.error ?? `/health answered ${p.status}`}`;
}

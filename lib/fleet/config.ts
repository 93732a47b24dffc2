// [fleet] in config.toml (README "Fleet"): whether this daemon is in a fleet, and as what.
//   no [fleet] section (and no SPL_FLEET_COORDINATOR_URL) → a plain instance: no heartbeats
//   coordinator_url absent, or equal to this daemon's advertised endpoint → the coordinator
//   otherwise → a worker that beats to coordinator_url
//   [fleet.etcd] set → every member starts as a worker; the election in etcd names the coordinator
import { hostname } from "node:os";
import { basename } from "node:path";
import type { ConfigSection } from "../config";
import { UserError } from "../errors";
import { isLoopback } from "../net";

/** The fix for a [fleet] ca_file that cannot be read. */
export const CA_FIX = "point [fleet] ca_file at the PEM of the CA that signed the members' certificates";

export const DEFAULT_HEARTBEAT_SECS = 15;
/** A worker that has not reached its coordinator for this long refuses new work (README "Fleet"). */
export const DEFAULT_FAIL_CLOSED_SECS = 300;

export interface FleetConfig {
  /** A [fleet] section exists (or the env names a coordinator). */
  enabled: boolean;
  coordinatorUrl: string | null;
  advertisedEndpoint: string | null;
  heartbeatSecs: number;
  name: string | null;
  /** The CA members trust for each other's https endpoints (PEM file); null: the system roots. */
  caFile: string | null;
  /** 0: never fail closed. */
  failClosedAfterSecs: number;
  /** [fleet.etcd] is set: the coordinator is elected there, not named by coordinator_url (README "Automatic failover with etcd"). */
  elected: boolean;
  /** This member campaigns for the coordinator's key ([fleet] candidate = true). */
  candidate: boolean;
}

export type FleetRole = "plain" | "coordinator" | "worker";

export interface FleetMember {
  role: FleetRole;
  endpoint: string;
  name: string;
  /** Where heartbeats go: null for a plain instance, this daemon's own endpoint for the coordinator. */
  coordinatorUrl: string | null;
  heartbeatSecs: number;
}

export const FLEET_KEYS = ["coordinator_url", "advertised_endpoint", "heartbeat_interval_secs", "name", "ca_file", "fail_closed_after_secs", "candidate"] as const;

export const defaultFleetConfig = (): FleetConfig => ({
  enabled: false,
  coordinatorUrl: null,
  advertisedEndpoint: null,
  heartbeatSecs: DEFAULT_HEARTBEAT_SECS,
  name: null,
  caFile: null,
  failClosedAfterSecs: DEFAULT_FAIL_CLOSED_SECS,
  elected: false,
  candidate: false,
});

/** Member names: what `fleet show`, subtask targets and `fleet forget` take. */
export const MEMBER_NAME = /^[A-Za-z0-9._-]{1,64}$/;

const isTable = (v: unknown): v is Record<string, unknown> => !!v && typeof v === "object" && !Array.isArray(v);

/** An http(s) URL without a trailing slash, or a UserError naming `what`. */
export function normaliseUrl(value: string, what: string, fix: string): string {
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    throw new UserError(`${what} is not a URL: '${value}'`, fix);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new UserError(`${what} must be an http:// or https:// URL, got '${value}'`, fix);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}`;
}

/** Reads [fleet] of a parsed config.toml, then SPL_FLEET_COORDINATOR_URL; a malformed value is a UserError naming its key. */
export function parseFleetConfig(raw: unknown, path: string, env = process.env): FleetConfig {
  const c = defaultFleetConfig();
  const fix = 'e.g. coordinator_url = "http://127.0.0.1:9100"';
  if (raw !== undefined) {
    if (!isTable(raw)) throw new UserError(`${path}: [fleet] must be a table`, "edit the file and try again");
    c.enabled = true;
    if (raw.coordinator_url !== undefined) {
      if (typeof raw.coordinator_url !== "string") throw new UserError(`${path}: [fleet] coordinator_url must be a string`, fix);
      c.coordinatorUrl = normaliseUrl(raw.coordinator_url, `${path}: [fleet] coordinator_url`, fix);
    }
    if (raw.advertised_endpoint !== undefined) {
      const efix = 'e.g. advertised_endpoint = "http://worker-a.example.com:9100"';
      if (typeof raw.advertised_endpoint !== "string") throw new UserError(`${path}: [fleet] advertised_endpoint must be a string`, efix);
      c.advertisedEndpoint = normaliseUrl(raw.advertised_endpoint, `${path}: [fleet] advertised_endpoint`, efix);
    }
    if (raw.heartbeat_interval_secs !== undefined) {
      const n = raw.heartbeat_interval_secs;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 1 || n > 3600) {
        throw new UserError(`${path}: [fleet] heartbeat_interval_secs must be an integer from 1 to 3600`, "e.g. heartbeat_interval_secs = 15");
      }
      c.heartbeatSecs = n;
    }
    if (raw.name !== undefined) {
      if (typeof raw.name !== "string" || !MEMBER_NAME.test(raw.name)) {
        throw new UserError(`${path}: [fleet] name must be 1-64 letters, digits, '.', '_' or '-'`, 'e.g. name = "worker-a"');
      }
      c.name = raw.name;
    }
    if (raw.ca_file !== undefined) {
      if (typeof raw.ca_file !== "string" || !raw.ca_file) throw new UserError(`${path}: [fleet] ca_file must be a file name`, 'e.g. ca_file = "/etc/spl/fleet-ca.pem"');
      c.caFile = raw.ca_file;
    }
    if (raw.fail_closed_after_secs !== undefined) {
      const n = raw.fail_closed_after_secs;
      if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 604_800) {
        throw new UserError(`${path}: [fleet] fail_closed_after_secs must be an integer from 0 (never) to 604800`, `e.g. fail_closed_after_secs = ${DEFAULT_FAIL_CLOSED_SECS}`);
      }
      c.failClosedAfterSecs = n;
    }
    if (raw.candidate !== undefined) {
      if (typeof raw.candidate !== "boolean") throw new UserError(`${path}: [fleet] candidate must be true or false`, "candidate = true lets this member be elected coordinator (it needs [fleet.etcd])");
      c.candidate = raw.candidate;
    }
    c.elected = raw.etcd !== undefined;
    if (c.candidate && !c.elected) throw new UserError(`${path}: [fleet] candidate = true needs [fleet.etcd]`, "add [fleet.etcd] endpoints = [...] (README \"Automatic failover with etcd\"), or remove candidate");
  }
  const fromEnv = env.SPL_FLEET_COORDINATOR_URL;
  if (fromEnv) {
    c.enabled = true;
    c.coordinatorUrl = normaliseUrl(fromEnv, "SPL_FLEET_COORDINATOR_URL", "set it to the coordinator's URL, e.g. http://127.0.0.1:9100");
  }
  return c;
}

/** A wildcard or name bind is advertised on loopback, the address local members reach it by. */
function advertisedHost(host: string): string {
  if (!host || isWildcard(host) || host === "localhost") return "127.0.0.1";
  return host.includes(":") ? `[${host}]` : host;
}

const isWildcard = (host: string) => host === "0.0.0.0" || host === "::";

/** This daemon's place in the fleet, from [fleet], its bind (https when [server] has a certificate) and its home. */
export function fleetMember(c: FleetConfig, bind: { host: string; port: number; tls?: boolean }, home: string): FleetMember {
  const endpoint = c.advertisedEndpoint ?? `${bind.tls ? "https" : "http"}://${advertisedHost(bind.host)}:${bind.port}`;
  // With [fleet.etcd] every member starts as a worker of no one: the election makes one coordinator.
  const role: FleetRole = !c.enabled ? "plain" : c.elected ? "worker" : !c.coordinatorUrl || c.coordinatorUrl === endpoint ? "coordinator" : "worker";
  const suffix = /\.syncro-(.+)$/.exec(basename(home))?.[1];
  // A home without a suffix (~/.syncro on its own host) is named after the host, never "syncro".
  const name = c.name ?? (role === "coordinator" ? "coordinator" : (suffix ?? hostName()));
  return { role, endpoint, name, coordinatorUrl: role === "plain" || c.elected ? null : role === "coordinator" ? endpoint : c.coordinatorUrl, heartbeatSecs: c.heartbeatSecs };
}

function hostName(): string {
  const h = hostname().split(".")[0]!.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 64);
  return h || "member";
}

/**
 * A coordinator listening on every address but advertising loopback: members on other hosts
 * would be told to reach 127.0.0.1. The warning names the fix (start log, doctor).
 */
export function loopbackAdvertised(member: FleetMember, bindHost: string): string | null {
  if (member.role !== "coordinator" || isLoopback(bindHost)) return null;
  const host = new URL(member.endpoint).hostname;
  if (!isLoopback(host)) return null;
  return `this coordinator listens on ${bindHost} but advertises ${member.endpoint}, which members on other hosts cannot reach — set [fleet] advertised_endpoint = "https://<this host's name>:${new URL(member.endpoint).port || 9100}" (or run 'spl fleet coordinate --advertise URL')`;
}

export const fleetSection: ConfigSection<FleetConfig> = {
  name: "fleet",
  keys: FLEET_KEYS,
  parse: (raw, file) => parseFleetConfig(raw, file),
  show: (c) =>
    c.enabled
      ? { coordinator_url: c.coordinatorUrl, advertised_endpoint: c.advertisedEndpoint, heartbeat_interval_secs: c.heartbeatSecs, name: c.name, ca_file: c.caFile, fail_closed_after_secs: c.failClosedAfterSecs, ...(c.elected ? { candidate: c.candidate } : {}) }
      : null,
};

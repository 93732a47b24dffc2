// The fleet's routes (README "Fleet", "HTTP API"):
//   GET  /v1/fleet/status     the coordinator's registry, counts, control state, epoch (a worker asks its coordinator)
//   GET  /v1/fleet/member     this daemon's own place in the fleet, never proxied (`spl doctor`, `spl fleet start`)
//   POST /v1/fleet/heartbeat  a member's beat (member credential; the body's DID must be the caller's)
//   POST /v1/fleet/join       a join credential (or the operator) for a member credential
//   POST /v1/fleet/token      the coordinator's current join credential, minted or rotated (operator)
//   POST /v1/fleet/forget     a member removed for good, its credential revoked (operator)
import type { Host } from "../capability";
import { ApiError, json } from "../api/http";
import { route } from "../api/route";
import { COORDINATOR_HEADER, EPOCH_HEADER, PeerError } from "../peer";
import { FANOUTS, KILL_SWITCH, type FleetView } from "./contract";
import { JOIN_ROUTE, ROTATION_GRACE_SECS, JOIN_TTL_SECS } from "./credentials";
import type { Fleet } from "./fleet";
import { admit, parseJoinRequest } from "./join";
import { counts } from "./registry";
import { loopbackAdvertised } from "./config";

const HEARTBEAT_BODY = 4096;
const SMALL_BODY = 16 * 1024;

export function fleetStatus(host: Host, fleet: FleetView, f: Fleet) {
  const { member } = fleet;
  const instances = fleet.members();
  const control = host.find(KILL_SWITCH);
  const deposed = f.epochs.deposedBy();
  return {
    object: "fleet_status",
    coordinator_url: member.coordinatorUrl ?? (f.election ? "(none elected)" : member.endpoint),
    heartbeat_interval_secs: member.heartbeatSecs,
    epoch: f.epochs.held?.epoch ?? f.epochs.current.epoch,
    deposed: deposed ? { coordinator_url: deposed.url, epoch: deposed.epoch } : null,
    counts: counts(instances),
    instances,
    freezes: control?.freezes ?? [],
    emergency: control?.emergency ?? { active: false, reason: null, issued_by: null, issued_at_unix: null },
    pending_fanouts: host.find(FANOUTS)?.pending() ?? [],
    // With [fleet.etcd]: who the key names, since when, and whether etcd answers (README "Automatic failover with etcd").
    ...(f.election ? { election: f.election.status() } : {}),
  };
}

async function fromCoordinator(host: Host, coordinator: string): Promise<Response> {
  let res: { status: number; body: any };
  try {
    res = await host.peers.request(coordinator, "GET", "/v1/fleet/status");
  } catch (err) {
    if (!(err instanceof PeerError)) throw err;
    throw new ApiError(502, "COORDINATOR_UNREACHABLE", `this worker's coordinator ${coordinator} did not answer — check it: curl -fsS ${coordinator}/health`);
  }
  if (res.status !== 200) {
    const why = res.status === 401 ? `it does not accept this member's credential (${res.body?.message ?? "spl fleet join"})` : (res.body?.message ?? "see the coordinator's log");
    throw new ApiError(502, "COORDINATOR_REFUSED", `this worker's coordinator ${coordinator} answered ${res.status}: ${why}`);
  }
  return json(200, res.body);
}

const utf8 = new TextDecoder();

function bodyOf(raw: Uint8Array): unknown {
  try {
    return JSON.parse(utf8.decode(raw));
  } catch {
    throw new ApiError(400, "INVALID_JSON", "the body must be a JSON object");
  }
}

const str = (v: unknown, max = 256) => (typeof v === "string" ? v.slice(0, max) : "");
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

/** An answer to a member, with the epoch this member knows (and its coordinator) in its headers: the caller learns it. */
function stamped(res: Response, f: Fleet): Response {
  const k = f.epochs.current;
  if (k.epoch) {
    res.headers.set(EPOCH_HEADER, String(k.epoch));
    if (k.url) res.headers.set(COORDINATOR_HEADER, k.url);
  }
  return res;
}

export function fleetRoutes(host: Host, fleet: FleetView, f: Fleet) {
  const { member } = fleet;
  const log = host.log.child("syncropel_fleet::members");
  const operatorOnly = (who: { token: unknown; scopes: readonly string[] | null }) => {
    if (who.token !== null && !who.scopes?.includes("admin")) throw new ApiError(403, "SCOPE_FORBIDDEN", "only the coordinator's operator may do this — run it on the coordinator's host (its socket), or with an admin token");
  };
  const mustCoordinate = () => {
    const deposed = f.epochs.deposedBy();
    if (deposed) throw new ApiError(409, "COORDINATOR_DEPOSED", `this member is no longer the fleet's coordinator: ${deposed.url ?? "another member"} holds epoch ${deposed.epoch} — run it there`, { coordinator_url: deposed.url, epoch: deposed.epoch });
    const at = f.heartbeat.status.target;
    if (member.role !== "coordinator" || !f.epochs.coordinating()) throw new ApiError(409, "NOT_COORDINATOR", at ? `this member is a worker of ${at} — run it on the coordinator` : "this member is not the fleet's coordinator, and none is elected now — see 'spl fleet status' and 'spl doctor'", { coordinator_url: at });
  };
  /** A worker answers for its coordinator; an elected one with none to ask (or that does not answer) answers itself, saying so. */
  const status = async () => {
    const at = f.heartbeat.status.target;
    if (member.role !== "worker" || (!at && f.election)) return json(200, fleetStatus(host, fleet, f));
    if (!f.election) return fromCoordinator(host, at!);
    return fromCoordinator(host, at!).catch((err) => (err instanceof ApiError ? json(200, { ...fleetStatus(host, fleet, f), coordinator_unreachable: err.message }) : Promise.reject(err)));
  };
  return [
    route({ method: "GET", path: "/v1/fleet/status", cls: "fleet_read", doc: { summary: "The fleet: members and their status, counts, freezes, emergency stop, epoch (a worker asks its coordinator)" } }, status),
    route({ method: "GET", path: "/v1/fleet/member", cls: "fleet_read", doc: { summary: "This daemon's place in the fleet: role, epoch, coordinator, last acknowledged beat" } }, () => {
      const control = host.find(KILL_SWITCH);
      const deposed = f.epochs.deposedBy();
      const known = f.epochs.current;
      return stamped(json(200, {
        object: "fleet_member",
        did: host.instanceDid,
        role: member.role,
        name: f.name(),
        endpoint: member.endpoint,
        coordinator_url: member.role === "worker" ? f.heartbeat.status.target : member.coordinatorUrl,
        configured_coordinator_url: f.configuredCoordinatorUrl,
        heartbeat_interval_secs: member.role === "worker" ? f.heartbeat.status.intervalSecs : member.heartbeatSecs,
        epoch: known.epoch,
        coordinator_did: known.did,
        deposed: deposed ? { coordinator_url: deposed.url, epoch: deposed.epoch } : null,
        credential: f.hasCredential(),
        last_ack_unix: member.role === "coordinator" ? Math.floor(host.now() / 1000) : f.heartbeat.status.lastAckUnix,
        last_error: f.heartbeat.status.lastError,
        fail_closed: f.failClosed(),
        endpoint_warning: loopbackAdvertised(member, host.bind.host),
        control_pending: f.sync.pending(),
        freezes: control?.freezes ?? [],
        emergency: control?.emergency ?? { active: false, reason: null, issued_by: null, issued_at_unix: null },
        ...(f.election ? { election: f.election.status() } : {}),
      }), f);
    }),
    route({ method: "POST", path: "/v1/fleet/heartbeat", cls: "record_write", maxBody: HEARTBEAT_BODY, hot: true, doc: { summary: "A member's heartbeat (its member credential; the body's did is the caller's)", body: "{did, name, endpoint, role, version, uptime_secs, active_dispatches, store_records, health, sent_at_unix}" } }, ({ caller, body }) => {
      if (caller.token?.env !== "member") throw new ApiError(403, "MEMBER_CREDENTIAL_REQUIRED", "heartbeats come from fleet members, with their member credential — join first: spl fleet join <coordinator_url> --name NAME --token-file FILE");
      const b = bodyOf(body) as Record<string, unknown>;
      if (b?.did !== caller.actor) {
        log.warn("heartbeat refused: it names another member than the credential it came with", { credential_of: caller.actor, claimed: str(b?.did, 100) });
        throw new ApiError(403, "FORGED_HEARTBEAT", `this credential belongs to ${caller.actor}; a heartbeat for ${JSON.stringify(str(b?.did, 100))} is refused — each member beats for itself`);
      }
      mustCoordinate();
      f.liveness.beat(
        { did: caller.actor, name: str(b.name, 64), endpoint: str(b.endpoint), role: str(b.role, 32), version: str(b.version, 64), uptime_secs: num(b.uptime_secs), active_dispatches: num(b.active_dispatches), store_records: num(b.store_records), health: str(b.health, 32), sent_at_unix: num(b.sent_at_unix) },
        host.now(),
      );
      const own = f.epochs.held!;
      // The epoch is in the body, which the member reads (heartbeat.ts): no headers to set per beat.
      return json(200, { object: "heartbeat_ack", epoch: own.epoch, coordinator: { did: own.did, url: own.endpoint }, heartbeat_interval_secs: member.heartbeatSecs, digests: f.digests.get() });
    }),
    route({ method: JOIN_ROUTE.split(" ")[0] as "POST", path: JOIN_ROUTE.split(" ")[1]!, cls: "record_write", rulesPerRecord: true, maxBody: SMALL_BODY, doc: { summary: "Join the fleet: a join credential (or the operator) for a member credential bound to the DID", body: "{did, name, endpoint, version}" } }, async ({ caller, body }) => {
      const req = parseJoinRequest(bodyOf(body));
      const m = await admit({ host, registry: f.registry, liveness: f.liveness, epochs: f.epochs, intervalSecs: member.heartbeatSecs }, req, caller);
      log.info(m.credential ? "member joined" : "member rejoined with its credential", { did: m.did, name: m.name, endpoint: req.endpoint });
      return json(200, m);
    }),
    route({ method: "POST", path: "/v1/fleet/token", cls: "admin", maxBody: SMALL_BODY, doc: { summary: "The coordinator's join credential: the current one (minted when none is valid), or a new one with rotate:true", body: "{rotate?, grace_secs?, ttl_secs?}" } }, async ({ body, caller }) => {
      operatorOnly(caller);
      mustCoordinate();
      const b = (body.length ? bodyOf(body) : {}) as Record<string, unknown>;
      const secs = (v: unknown, name: string, fallback: number, min: number) => {
        if (v === undefined) return fallback;
        if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > 365 * 86_400) throw new ApiError(400, "INVALID_BODY", `'${name}' must be whole seconds from ${min} to ${365 * 86_400}`);
        return v;
      };
      const t = await f.joinToken({ rotate: b.rotate === true, graceSecs: secs(b.grace_secs, "grace_secs", ROTATION_GRACE_SECS, 0), ttlSecs: secs(b.ttl_secs, "ttl_secs", JOIN_TTL_SECS, 60) });
      return json(200, { object: "fleet_join_token", ...t });
    }),
    route({ method: "POST", path: "/v1/fleet/forget", cls: "admin", maxBody: SMALL_BODY, doc: { summary: "Remove a member for good and revoke its credential", body: "{member: did | 16-hex tail | name}" } }, async ({ body, caller }) => {
      operatorOnly(caller);
      mustCoordinate();
      const key = str((bodyOf(body) as Record<string, unknown>)?.member);
      const m = f.resolve(key);
      if (m.did === host.instanceDid) throw new ApiError(409, "FORGET_SELF", "the coordinator cannot forget itself — promote another member first (README: replacing a coordinator)");
      await f.forget(m.did, m.name);
      log.info("member forgotten", { did: m.did, name: m.name });
      return json(200, { object: "fleet_forgotten", did: m.did, name: m.name });
    }),
  ];
}

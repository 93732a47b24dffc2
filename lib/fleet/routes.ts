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
import { AnyObject, NO_QUERY, T, UnixSecs, nullable, oneOf } from "../api/schema";
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
    route(
      {
        method: "GET",
        path: "/v1/fleet/status",
        cls: "fleet_read",
        summary: "The fleet: members and their status, counts, freezes, emergency stop, epoch (a worker asks its coordinator)",
        query: NO_QUERY,
        answers: { 200: { description: "the fleet", schema: FleetStatus } },
        errors: { 502: "COORDINATOR_UNREACHABLE, COORDINATOR_REFUSED (on a worker)" },
      },
      status,
    ),
    route(
      {
        method: "GET",
        path: "/v1/fleet/member",
        cls: "fleet_read",
        summary: "This daemon's place in the fleet: role, epoch, coordinator, last acknowledged beat",
        query: NO_QUERY,
        answers: { 200: { description: "this member", schema: FleetMember } },
      },
      () => {
        const control = host.find(KILL_SWITCH);
        const deposed = f.epochs.deposedBy();
        const known = f.epochs.current;
        return stamped(
          json(200, {
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
          }),
          f,
        );
      },
    ),
    route(
      {
        method: "POST",
        path: "/v1/fleet/heartbeat",
        cls: "record_write",
        maxBody: HEARTBEAT_BODY,
        hot: true,
        summary: "A member's heartbeat (its member credential; the body's did is the caller's)",
        query: NO_QUERY,
        body: HeartbeatBody,
        bodyCheckedBy: "the handler: each field kept to its type and length, the did must be the credential's (FORGED_HEARTBEAT)",
        answers: { 200: { description: "acknowledged, with the coordinator's epoch and the synced threads' digests", schema: HeartbeatAck } },
        errors: { 401: "MEMBER_UNKNOWN", 403: "MEMBER_CREDENTIAL_REQUIRED, FORGED_HEARTBEAT", 409: "STALE_EPOCH, NOT_COORDINATOR, COORDINATOR_DEPOSED" },
      },
      ({ caller, body }) => {
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
      },
    ),
    route(
      {
        method: JOIN_ROUTE.split(" ")[0] as "POST",
        path: JOIN_ROUTE.split(" ")[1]!,
        cls: "record_write",
        rulesPerRecord: true,
        maxBody: SMALL_BODY,
        summary: "Join the fleet: a join credential (or the operator) for a member credential bound to the DID",
        query: NO_QUERY,
        body: JoinBody,
        bodyCheckedBy: "join.ts parseJoinRequest (INVALID_BODY naming the field)",
        answers: { 200: { description: "the member, with its new credential (null when it rejoined with its own)", schema: AnyObject } },
        errors: { 409: "NAME_TAKEN, NOT_COORDINATOR" },
      },
      async ({ caller, body }) => {
        const req = parseJoinRequest(bodyOf(body));
        const m = await admit({ host, registry: f.registry, liveness: f.liveness, epochs: f.epochs, intervalSecs: member.heartbeatSecs }, req, caller);
        log.info(m.credential ? "member joined" : "member rejoined with its credential", { did: m.did, name: m.name, endpoint: req.endpoint });
        return json(200, m);
      },
    ),
    route(
      {
        method: "POST",
        path: "/v1/fleet/token",
        cls: "admin",
        maxBody: SMALL_BODY,
        summary: "The coordinator's join credential: the current one (minted when none is valid), or a new one with rotate:true",
        query: NO_QUERY,
        body: TokenBody,
        bodyOptional: true,
        bodyCheckedBy: "the handler (INVALID_BODY naming the field and its range)",
        answers: { 200: { description: "the join credential", schema: T.Object({ object: T.Literal("fleet_join_token") }, { additionalProperties: true }) } },
        errors: { 409: "NOT_COORDINATOR, COORDINATOR_DEPOSED" },
      },
      async ({ body, caller }) => {
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
      },
    ),
    route(
      {
        method: "POST",
        path: "/v1/fleet/forget",
        cls: "admin",
        maxBody: SMALL_BODY,
        summary: "Remove a member for good and revoke its credential",
        query: NO_QUERY,
        body: ForgetBody,
        bodyCheckedBy: "the handler (the member must resolve to exactly one)",
        answers: { 200: { description: "the member forgotten", schema: T.Object({ object: T.Literal("fleet_forgotten"), did: T.String(), name: T.String() }) } },
        errors: { 404: "MEMBER_NOT_FOUND", 409: "FORGET_SELF, NOT_COORDINATOR, COORDINATOR_DEPOSED" },
      },
      async ({ body, caller }) => {
        operatorOnly(caller);
        mustCoordinate();
        const key = str((bodyOf(body) as Record<string, unknown>)?.member);
        const m = f.resolve(key);
        if (m.did === host.instanceDid) throw new ApiError(409, "FORGET_SELF", "the coordinator cannot forget itself — promote another member first (README: replacing a coordinator)");
        await f.forget(m.did, m.name);
        log.info("member forgotten", { did: m.did, name: m.name });
        return json(200, { object: "fleet_forgotten", did: m.did, name: m.name });
      },
    ),
  ];
}

// The answers' schemas (GET /openapi.json and the checks of lib/api/validate.ts); fields a later
// fleet feature adds belong here too.
const Member = T.Object(
  {
    did: T.String(),
    name: T.String(),
    endpoint: T.String(),
    role: T.String(),
    status: oneOf(["live", "stale", "archived"], { description: "by heartbeat age, N the interval: live ≤ 2N < stale ≤ 3N < archived" }),
    version: T.String(),
    uptime_secs: T.Integer({ minimum: 0, description: "as of its last heartbeat" }),
    health: T.String({ description: "as of its last heartbeat" }),
    active_dispatches: T.Integer({ minimum: 0 }),
    store_records: T.Integer({ minimum: 0 }),
    last_heartbeat: UnixSecs,
  },
  { $id: "FleetMember", additionalProperties: true },
);

/** With [fleet.etcd] (README "Automatic failover with etcd"): the election as the answering member sees it. */
const Election = T.Object(
  {
    source: T.Literal("etcd"),
    reachable: T.Boolean({ description: "etcd answers this member" }),
    error: nullable(T.String({ description: "why etcd does not answer, and the fix" })),
    coordinator: nullable(T.Object({ did: T.String(), name: T.String(), url: T.String(), epoch: T.Integer({ minimum: 1, description: "the etcd revision of its win" }), since_unix: UnixSecs }, { description: "the elected coordinator once it took office; null: none now" })),
    candidate: T.Boolean({ description: "this member may be elected ([fleet] candidate)" }),
    lease_ttl_secs: T.Integer({ minimum: 2 }),
    control_pending: T.Array(T.String(), { description: "control records written here that etcd does not hold yet" }),
  },
  { description: "with [fleet.etcd] only" },
);

const FleetStatus = T.Object(
  {
    object: T.Literal("fleet_status"),
    coordinator_url: T.String(),
    heartbeat_interval_secs: T.Integer({ minimum: 1 }),
    counts: T.Object({}, { additionalProperties: T.Integer(), description: "members by status" }),
    instances: T.Array(Member),
    freezes: T.Array(T.Object({ namespace: T.String(), level: T.String(), grace_secs: T.Integer(), reason: nullable(T.String()), issued_by: T.String(), issued_at_unix: UnixSecs })),
    emergency: T.Object({ active: T.Boolean(), reason: nullable(T.String()), issued_by: nullable(T.String()), issued_at_unix: nullable(UnixSecs) }),
    pending_fanouts: T.Array(T.Object({ thread: T.String(), record: T.String(), join: T.String(), subtasks: T.Integer(), spawned: T.Integer(), completed: T.Integer() })),
    epoch: nullable(T.Integer({ minimum: 0, description: "the coordinator's epoch (README \"Epochs and fencing\")" })),
    election: T.Optional(Election),
    coordinator_unreachable: T.Optional(T.String({ description: "with [fleet.etcd]: a member answered for itself because its coordinator did not (why)" })),
  },
  { $id: "FleetStatus", additionalProperties: true },
);

const FleetMember = T.Object(
  {
    object: T.Literal("fleet_member"),
    did: T.String(),
    role: T.String(),
    name: T.String(),
    endpoint: T.String(),
    coordinator_url: nullable(T.String()),
    heartbeat_interval_secs: T.Integer(),
    last_ack_unix: nullable(UnixSecs),
    last_error: nullable(T.Object({ at: UnixSecs, url: T.String(), message: T.String() })),
    epoch: nullable(T.Integer({ minimum: 0 })),
    coordinator_did: nullable(T.String()),
    deposed: nullable(T.Object({ coordinator_url: nullable(T.String()), epoch: T.Integer() })),
    credential: T.Boolean({ description: "whether this member holds a member credential" }),
    election: T.Optional(Election),
  },
  { additionalProperties: true },
);

const HeartbeatBody = T.Object(
  {
    did: T.String({ description: "the member's DID: the credential's" }),
    name: T.String(),
    endpoint: T.String(),
    role: T.String(),
    version: T.String(),
    uptime_secs: T.Number(),
    active_dispatches: T.Number(),
    store_records: T.Number(),
    health: T.String({ description: "healthy, or draining on its way out" }),
    sent_at_unix: T.Number(),
  },
  { description: "a member's heartbeat" },
);

const HeartbeatAck = T.Object(
  {
    object: T.Literal("heartbeat_ack"),
    epoch: T.Integer({ minimum: 0 }),
    coordinator: T.Object({ did: nullable(T.String()), url: nullable(T.String()) }),
    heartbeat_interval_secs: T.Integer({ minimum: 1 }),
    digests: T.Object({}, { additionalProperties: T.String(), description: "each synced thread's digest: a member whose copy differs pulls what it lacks" }),
  },
  { additionalProperties: true },
);

const JoinBody = T.Object({ did: T.String(), name: T.String(), endpoint: T.String(), version: T.String() }, { description: "the joining member" });
const TokenBody = T.Object(
  { rotate: T.Optional(T.Boolean()), grace_secs: T.Optional(T.Integer({ minimum: 0 })), ttl_secs: T.Optional(T.Integer({ minimum: 60 })) },
  { description: "rotate: a new join credential; the previous one stays valid for grace_secs" },
);
const ForgetBody = T.Object({ member: T.String({ description: "its DID, the DID's 16-hex tail, or its name" }) });

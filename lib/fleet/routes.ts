// GET /v1/fleet/status (README "Fleet"): the coordinator's registry, counts and control state; a
// worker answers it by asking its coordinator (through the peer client). GET /v1/fleet/member:
// this daemon's own place in the fleet and its last acknowledged beat, never proxied (`spl doctor`).
import type { Host } from "../capability";
import { ApiError, json } from "../api/http";
import { route } from "../api/route";
import { NO_QUERY, T, UnixSecs, nullable, oneOf } from "../api/schema";
import { PeerError } from "../peer";
import { FANOUTS, KILL_SWITCH, type FleetView } from "./contract";
import type { HeartbeatService } from "./heartbeat";
import { counts } from "./registry";

export function fleetStatus(host: Host, fleet: FleetView) {
  const { member } = fleet;
  const instances = fleet.members();
  const control = host.find(KILL_SWITCH);
  return {
    object: "fleet_status",
    coordinator_url: member.coordinatorUrl ?? member.endpoint,
    heartbeat_interval_secs: member.heartbeatSecs,
    counts: counts(instances),
    instances,
    freezes: control?.freezes ?? [],
    emergency: control?.emergency ?? { active: false, reason: null, issued_by: null, issued_at_unix: null },
    pending_fanouts: host.find(FANOUTS)?.pending() ?? [],
  };
}

async function fromCoordinator(host: Host, coordinator: string): Promise<Response> {
  let res: { status: number; body: unknown };
  try {
    res = await host.peers.request(coordinator, "GET", "/v1/fleet/status");
  } catch (err) {
    if (!(err instanceof PeerError)) throw err;
    throw new ApiError(502, "COORDINATOR_UNREACHABLE", `this worker's coordinator ${coordinator} did not answer — check it: curl -fsS ${coordinator}/health`);
  }
  if (res.status !== 200) {
    throw new ApiError(
      502,
      "COORDINATOR_REFUSED",
      `this worker's coordinator ${coordinator} answered ${res.status} — ${res.status === 401 ? "this member lacks the fleet token: spl fleet join" : "see the coordinator's log"}`,
    );
  }
  return json(200, res.body);
}

export function fleetRoutes(host: Host, fleet: FleetView, heartbeat: HeartbeatService) {
  const { member } = fleet;
  return [
    route(
      {
        method: "GET",
        path: "/v1/fleet/status",
        cls: "fleet_read",
        summary: "The fleet as its coordinator sees it: members, counts, freezes, the emergency stop (a worker asks its coordinator)",
        query: NO_QUERY,
        answers: { 200: { description: "the fleet", schema: FleetStatus } },
        errors: { 502: "COORDINATOR_UNREACHABLE, COORDINATOR_REFUSED (on a worker)" },
      },
      () => (member.role === "worker" ? fromCoordinator(host, member.coordinatorUrl!) : json(200, fleetStatus(host, fleet))),
    ),
    route(
      {
        method: "GET",
        path: "/v1/fleet/member",
        cls: "fleet_read",
        summary: "This daemon's own place in the fleet and its last acknowledged heartbeat",
        query: NO_QUERY,
        answers: { 200: { description: "this member", schema: FleetMember } },
      },
      () =>
        json(200, {
          object: "fleet_member",
          did: host.instanceDid,
          role: member.role,
          name: member.name,
          endpoint: member.endpoint,
          coordinator_url: member.coordinatorUrl,
          heartbeat_interval_secs: member.heartbeatSecs,
          last_ack_unix: heartbeat.status.lastAckUnix,
          last_error: heartbeat.status.lastError,
        }),
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
    name_clash: T.Boolean(),
  },
  { $id: "FleetMember", additionalProperties: true },
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
  },
  { additionalProperties: true },
);

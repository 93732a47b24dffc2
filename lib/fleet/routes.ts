// GET /v1/fleet/status (README "Fleet"): the coordinator's registry, counts and control state; a
// worker answers it by asking its coordinator (through the peer client). GET /v1/fleet/member:
// this daemon's own place in the fleet and its last acknowledged beat, never proxied (`spl doctor`).
import type { Host } from "../capability";
import { ApiError, json } from "../api/http";
import { route } from "../api/route";
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
    throw new ApiError(502, "COORDINATOR_REFUSED", `this worker's coordinator ${coordinator} answered ${res.status} — ${res.status === 401 ? "this member lacks the fleet token: spl fleet join" : "see the coordinator's log"}`);
  }
  return json(200, res.body);
}

export function fleetRoutes(host: Host, fleet: FleetView, heartbeat: HeartbeatService) {
  const { member } = fleet;
  return [
    route({ method: "GET", path: "/v1/fleet/status", cls: "fleet_read" }, () => (member.role === "worker" ? fromCoordinator(host, member.coordinatorUrl!) : json(200, fleetStatus(host, fleet)))),
    route({ method: "GET", path: "/v1/fleet/member", cls: "fleet_read" }, () =>
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

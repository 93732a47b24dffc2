// GET /v1/fleet/status (SPEC 14): the coordinator's registry, counts and control state; a worker
// answers it by asking its coordinator (with the fleet token). GET /v1/fleet/member: this daemon's
// own place in the fleet and its last acknowledged beat, never proxied (`spl doctor`).
import type { DaemonState } from "../state";
import { ApiError, json } from "../http";
import { route } from "../route";
import { counts } from "../../fleet/registry";
import { readFleetToken } from "../../fleet/token";

const PROXY_TIMEOUT_MS = 5000;

export function fleetStatus(state: DaemonState) {
  const { member, registry } = state.fleet;
  const instances = registry.view(member.heartbeatSecs);
  return {
    object: "fleet_status",
    coordinator_url: member.coordinatorUrl ?? member.endpoint,
    heartbeat_interval_secs: member.heartbeatSecs,
    counts: counts(instances),
    instances,
    freezes: state.fleet.control.freezes,
    emergency: state.fleet.control.emergency,
    pending_fanouts: state.fanout.table.pending().map((f) => ({
      thread: f.parent.thread,
      record: f.parent.id,
      join: f.join,
      subtasks: f.children.length,
      spawned: f.children.filter((c) => c.spawned || c.result).length,
      completed: f.children.filter((c) => c.result).length,
    })),
  };
}

async function fromCoordinator(state: DaemonState): Promise<Response> {
  const url = `${state.fleet.member.coordinatorUrl}/v1/fleet/status`;
  const token = readFleetToken(state.paths.home);
  let res: Response;
  try {
    res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, signal: AbortSignal.timeout(PROXY_TIMEOUT_MS) });
  } catch {
    throw new ApiError(502, "COORDINATOR_UNREACHABLE", `this worker's coordinator ${state.fleet.member.coordinatorUrl} did not answer — check it: curl -fsS ${state.fleet.member.coordinatorUrl}/health`);
  }
  const text = await res.text();
  if (res.status !== 200) {
    throw new ApiError(502, "COORDINATOR_REFUSED", `this worker's coordinator ${state.fleet.member.coordinatorUrl} answered ${res.status} — ${res.status === 401 ? "this member lacks the fleet token: spl fleet join" : "see the coordinator's log"}`);
  }
  return new Response(text, { status: 200, headers: { "content-type": "application/json" } });
}

export function fleetRoutes(state: DaemonState) {
  return [
    route({ method: "GET", path: "/v1/fleet/status", cls: "fleet_read" }, () => (state.fleet.member.role === "worker" ? fromCoordinator(state) : json(200, fleetStatus(state)))),
    route({ method: "GET", path: "/v1/fleet/member", cls: "fleet_read" }, () => {
      const { member, heartbeat } = state.fleet;
      return json(200, {
        object: "fleet_member",
        did: state.instanceDid,
        role: member.role,
        name: member.name,
        endpoint: member.endpoint,
        coordinator_url: member.coordinatorUrl,
        heartbeat_interval_secs: member.heartbeatSecs,
        last_ack_unix: heartbeat.status.lastAckUnix,
        last_error: heartbeat.status.lastError,
      });
    }),
  ];
}

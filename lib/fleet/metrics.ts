// The fleet's series on GET /metrics (README "Metrics"): members by status as the registry sees
// them (a coordinator's view; a plain daemon sees itself), each member's last heartbeat, and this
// member's last acknowledged beat. `member` is a member's name (its DID when it has none): one
// series per member of the fleet, which is as many as the operator runs.
import type { MetricsOut } from "../capability";
import type { FleetView } from "./contract";
import type { HeartbeatState } from "./heartbeat";
import { counts } from "./registry";

export function fleetMetrics(fleet: FleetView, heartbeat: HeartbeatState) {
  return (m: MetricsOut) => {
    const members = fleet.members();
    m.family("spl_fleet_members", "gauge", "Fleet members the registry knows, by status (live, stale, archived).");
    for (const [status, n] of Object.entries(counts(members))) m.sample("spl_fleet_members", n, { status });
    m.family("spl_fleet_member_last_heartbeat_timestamp_seconds", "gauge", "When each member last sent a heartbeat the registry holds, unix seconds.");
    for (const mv of members) m.sample("spl_fleet_member_last_heartbeat_timestamp_seconds", mv.last_heartbeat, { member: mv.name || mv.did });
    m.family("spl_fleet_heartbeat_last_ack_timestamp_seconds", "gauge", "When this member's heartbeat was last acknowledged (by its coordinator, or its own registry), unix seconds.");
    if (heartbeat.lastAckUnix !== null) m.sample("spl_fleet_heartbeat_last_ack_timestamp_seconds", heartbeat.lastAckUnix);
  };
}

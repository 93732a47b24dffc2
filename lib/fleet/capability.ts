// The fleet (README "Fleet", ARCHITECTURE.md "The fleet protocol"): [fleet] makes this daemon a
// coordinator or a worker. This is its declaration; fleet.ts assembles a daemon's part from the
// modules: the registry of membership events and liveness in memory (registry.ts, liveness.ts),
// epochs and fencing (epoch.ts), member and join credentials the gate asks about
// (credentials.ts, join.ts), the heartbeat (heartbeat.ts), how the fleet's threads reach every
// member (control-sync.ts), the fail-closed check (failclosed.ts), the routes (routes.ts) and the
// doctor's rows (doctor.ts). It is last in the capability list, so its heartbeat starts last and
// stops first: the draining beat goes out while everything else still runs.
import type { Capability, Service } from "../capability";
import { FLEET_CONTROL_THREAD, INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import { fleetSection } from "./config";
import { FLEET, FLEET_SEAT, type FleetView } from "./contract";
import { controlForwarder } from "./control-sync";
import { REGISTRY_SCOPE } from "./credentials";
import { fleetRows } from "./doctor";
import { failClosedCheck } from "./failclosed";
import { createFleet } from "./fleet";
import { livenessService } from "./liveness";
import { fleetMetrics } from "./metrics";
import { fleetRoutes } from "./routes";

export const fleetCapability: Capability = {
  name: "fleet",
  config: fleetSection,
  reservedThreads: [
    { thread: INSTANCE_REGISTRY_THREAD, what: "the fleet registry", write: REGISTRY_SCOPE, code: "RESERVED_THREAD", fix: "it is written by the fleet's coordinator only (members join with 'spl fleet join')" },
  ],
  doctor: [fleetRows],
  setup(host) {
    const f = createFleet(host);
    const { member } = f;
    const coordinating = () => f.epochs.coordinating();
    const fleet: FleetView = {
      member,
      // The coordinator's view; a worker holds a copy of the registry but no liveness (it asks its coordinator).
      members: () => (member.role === "coordinator" ? f.liveness.view(host.now(), { did: host.instanceDid, beat: () => f.beat("healthy") }) : []),
      epoch: () => f.epochs.current,
      coordinating,
    };
    host.provide(FLEET, fleet);
    // An elected member (lib/failover) may be either in turn: it runs both sides, each acting only in its role.
    if (f.election) host.provide(FLEET_SEAT, f.seat);
    const elected = f.election !== undefined;
    // The heartbeat is last on every member (it beats only on a worker): it stops first.
    const services: Service[] = [
      ...(member.role === "coordinator" || elected
        ? [livenessService(host, { liveness: f.liveness, intervalSecs: member.heartbeatSecs, coordinating, log: host.log.child("syncropel_fleet::liveness"), endpointOf: (did) => f.registry.get(did)?.endpoint ?? null }), controlForwarder(host, fleet, coordinating)]
        : []),
      ...(member.role === "worker" ? [{ name: "fleet-sync", start() {}, stop() {}, afterCommit: f.sync.afterCommit }] : []),
      f.heartbeat,
    ];
    return {
      folds: [
        {
          name: "fleet_registry",
          consumes: { act: "LEARN", threads: [INSTANCE_REGISTRY_THREAD] },
          apply(rec) {
            const changed = f.registry.apply(rec);
            if (changed && rec.body.topic === "elected") f.epochs.observe({ epoch: rec.body.epoch as number, did: rec.body.did as string, url: rec.body.endpoint as string });
            if (changed && rec.body.topic === "forgotten") f.liveness.forget(rec.body.did as string);
            return changed;
          },
        },
        { name: "fleet_digests", consumes: { act: "LEARN", threads: [FLEET_CONTROL_THREAD, INSTANCE_REGISTRY_THREAD] }, apply: (rec) => f.digests.apply(rec) },
      ],
      services,
      routes: fleetRoutes(host, fleet, f),
      metrics: fleetMetrics(fleet, f.heartbeat.status),
      writeChecks: [
        failClosedCheck({
          limitSecs: f.failClosedAfterSecs,
          isWorker: () => member.role === "worker",
          lastContactMs: f.lastContactMs,
          now: () => host.now(),
          coordinator: () => f.heartbeat.status.target ?? "",
          deposedBy: () => f.epochs.deposedBy(),
        }),
      ],
      credentials: f.credentials,
      boot: f.boot,
    };
  },
};

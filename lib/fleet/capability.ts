// The fleet (README "Fleet"): [fleet] makes this daemon a coordinator or a worker. This capability
// adds the heartbeat service, the registry fold over th_instance_registry (the coordinator's view
// of its members), how control records reach every member (control-sync.ts: forwarded by the
// coordinator, pulled by a worker after each acknowledged beat), GET /v1/fleet/status and
// /v1/fleet/member, the fleet token every member registers at start, the credential the peer
// client sends, and the doctor's fleet rows. It is last in the capability list, so its heartbeat
// starts last and stops first: the draining beat goes out while everything else still runs.
import type { Capability } from "../capability";
import { DISPATCHES } from "../dispatch/capability";
import { AUTH_THREAD, INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import { VERSION } from "../version";
import { fleetMember, fleetSection } from "./config";
import { FLEET, type FleetView } from "./contract";
import { fleetControlForwarder, fleetControlPuller } from "./control-sync";
import { fleetRows } from "./doctor";
import { heartbeatService } from "./heartbeat";
import { FleetRegistry } from "./registry";
import { fleetMetrics } from "./metrics";
import { fleetRoutes } from "./routes";
import { ensureFleetToken, readFleetToken } from "./token";

export const fleetCapability: Capability = {
  name: "fleet",
  config: fleetSection,
  reservedThreads: [{ thread: INSTANCE_REGISTRY_THREAD, what: "the fleet registry", write: "fleet:control", code: "RESERVED_THREAD", fix: "it is written by fleet members only: use the fleet token (spl fleet token, spl fleet join)" }],
  doctor: [fleetRows],
  setup(host) {
    const member = fleetMember(host.config(fleetSection), host.bind, host.paths.home);
    const registry = new FleetRegistry();
    const credential = () => readFleetToken(host.paths.home);
    host.peers.authenticate(credential);
    const fleet: FleetView = { member, members: () => registry.view(member.heartbeatSecs) };
    const pullControl = fleetControlPuller(host, fleet, credential);
    const heartbeat = heartbeatService({
      member,
      instanceDid: host.instanceDid,
      version: VERSION,
      startedAt: host.startedAt,
      storeRecords: () => host.store.counts.records,
      activeDispatches: () => host.find(DISPATCHES)?.active() ?? 0,
      submitLocal: async (rec) => {
        const [r] = await host.submit([rec]);
        if (r!.status === "error") throw r!.error;
      },
      peers: host.peers,
      hasCredential: () => credential() !== null,
      afterAck: pullControl,
      log: host.log,
    });
    host.provide(FLEET, fleet);
    return {
      folds: [
        {
          name: "fleet_registry",
          consumes: { act: "DO", threads: [INSTANCE_REGISTRY_THREAD] },
          apply: (rec, { rebuilding }) => registry.apply(rec, rebuilding ? rec.created_at * 1000 : host.now()),
        },
      ],
      services: [...(member.role === "coordinator" ? [fleetControlForwarder(host, fleet)] : []), heartbeat],
      routes: fleetRoutes(host, fleet, heartbeat),
      metrics: fleetMetrics(fleet, heartbeat.status),
      async boot() {
        const r = await ensureFleetToken({ home: host.paths.home, role: member.role, registry: host.engine.tokens, write: (body) => host.write({ thread: AUTH_THREAD, act: "LEARN", body }).then(() => {}) });
        if (r === "minted" || r === "registered") host.log.info(`fleet token ${r}`, { path: "<home>/secrets/fleet_token" });
        if (member.role !== "plain") host.log.info("fleet member", { role: member.role, name: member.name, endpoint: member.endpoint, coordinator_url: member.coordinatorUrl, heartbeat_interval_secs: member.heartbeatSecs });
      },
    };
  },
};

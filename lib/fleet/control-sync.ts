// How a th_fleet_control record reaches every member (README "Fleet", kill switch): the
// coordinator forwards each new control record to the live members at once, and a worker catches
// up with the coordinator's thread after every acknowledged heartbeat, so one that missed the
// forward (down, unreachable) enforces a freeze one interval after it returns. Records are copied
// as they are (content-addressed: a copy already held is a duplicate, never a second record), and
// a pulled record passes the same write path and checks as a pushed one: it is written as the
// fleet token's caller, as if the coordinator had posted it.
import type { Host, Service } from "../capability";
import { toWire } from "../records/wire";
import { prepareRecord } from "../records/envelope";
import { FLEET_CONTROL_THREAD } from "../records/reserved-threads";
import type { FleetView } from "./contract";

const PAGE = 1000;

interface WirePage {
  data: { id: string; sequence: number }[];
  has_more: boolean;
}

/** A worker's catch-up after an acknowledged beat: the control records it lacks, through the write path. */
export function fleetControlPuller(host: Host, fleet: FleetView, credential: () => string | null): () => Promise<void> {
  const log = host.log.child("syncropel_fleet::control_sync");
  let after = 0; // the coordinator's sequence of the last control record copied
  return async () => {
    const base = fleet.member.coordinatorUrl;
    if (!base) return;
    try {
      for (;;) {
        const res = await host.peers.request<WirePage>(base, "GET", `/v1/records?thread=${FLEET_CONTROL_THREAD}&limit=${PAGE}&after=${after}`);
        if (res.status !== 200) return log.warn(`cannot read the coordinator's ${FLEET_CONTROL_THREAD}: ${res.status} — check the fleet token (spl fleet join)`);
        const page = res.body;
        const fresh = page.data.filter((r) => !host.store.get(r.id));
        if (fresh.length) {
          const token = credential();
          const caller = token ? host.callerFor(token) : null;
          if (!caller) return log.warn(`${FLEET_CONTROL_THREAD} records from the coordinator are not accepted: this member does not know the fleet token it holds — spl fleet join`);
          const results = await host.submit(
            fresh.map((r) => prepareRecord(r)),
            { caller, route: { cls: "record_write", label: "fleet control pull" } },
          );
          const failed = results.find((r) => r.status === "error");
          if (failed && failed.status === "error") return log.warn(`a fleet control record was refused here: ${failed.error.message}`);
          log.info("fleet control updated from the coordinator", { records: fresh.length });
        }
        if (page.data.length) after = page.data[page.data.length - 1]!.sequence;
        if (!page.has_more) return;
      }
    } catch (err) {
      log.warn(`cannot read the coordinator's ${FLEET_CONTROL_THREAD}: ${(err as Error).message}`);
    }
  };
}

/**
 * The coordinator forwards each new control record to every live member at once, so a freeze
 * holds fleet-wide well within an interval; a member it misses catches up by the pull.
 */
export function fleetControlForwarder(host: Host, fleet: FleetView): Service {
  const log = host.log.child("syncropel_fleet::control_forward");
  let running = false;
  return {
    name: "fleet-control-forward",
    start() {
      running = true;
    },
    stop() {
      running = false;
    },
    afterCommit(created) {
      if (!running) return;
      const fresh = created.filter((r) => r.thread === FLEET_CONTROL_THREAD);
      if (!fresh.length) return;
      const body = { records: fresh.map(toWire) };
      for (const m of fleet.members()) {
        if (m.status !== "live" || m.did === host.instanceDid || !m.endpoint) continue;
        host.peers.request(m.endpoint, "POST", "/v1/records/batch", body).then(
          (res) => res.status !== 200 && log.warn(`forwarding fleet control to ${m.name} answered ${res.status}; it catches up after its next heartbeat`),
          () => log.warn(`cannot forward fleet control to ${m.name} at ${m.endpoint}; it catches up after its next heartbeat`),
        );
      }
    },
  };
}

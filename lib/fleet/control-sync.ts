// th_fleet_control from the coordinator to every member (SPEC 15): the coordinator forwards each
// new control record to the live members at once, and a worker catches up with the coordinator's
// thread after every acknowledged heartbeat, so one that missed the forward (down, unreachable)
// enforces a freeze one interval after it returns. Records are copied as they are (content-addressed:
// a copy already held is a duplicate, never a second record); only the new ones are fetched.
import type { DaemonState } from "../daemon/state";
import type { Service } from "../daemon/services";
import { toWire } from "../records/wire";
import { readFleetToken } from "./token";
import { prepareRecord } from "../records/envelope";
import { FLEET_CONTROL_THREAD } from "../records/reserved-threads";

const PAGE = 1000;
const PULL_TIMEOUT_MS = 5000;

interface WirePage {
  data: { id: string; sequence: number }[];
  has_more: boolean;
}

export function fleetControlPuller(state: DaemonState): (token: string | null) => Promise<void> {
  const log = state.log.child("syncropel_fleet::control_sync");
  let after = 0; // the coordinator's sequence of the last control record copied
  return async (token) => {
    const base = state.fleet.member.coordinatorUrl;
    if (!base) return;
    try {
      for (;;) {
        const res = await fetch(`${base}/v1/records?thread=${FLEET_CONTROL_THREAD}&limit=${PAGE}&after=${after}`, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
          signal: AbortSignal.timeout(PULL_TIMEOUT_MS),
        });
        if (res.status !== 200) return log.warn(`cannot read the coordinator's ${FLEET_CONTROL_THREAD}: ${res.status} — check the fleet token (spl fleet join)`);
        const page = (await res.json()) as WirePage;
        const fresh = page.data.filter((r) => !state.store.get(r.id));
        if (fresh.length) {
          const results = await state.ingest.submit(fresh.map((r) => prepareRecord(r)));
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
 * The coordinator forwards each new control record to every live member at once (SPEC 15), so a
 * freeze holds fleet-wide well within an interval; a member it misses catches up by the pull.
 * A coordinator's service only (services.ts).
 */
export function fleetControlForwarder(state: DaemonState): Service {
  const log = state.log.child("syncropel_fleet::control_forward");
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
      const { member, registry } = state.fleet;
      const token = readFleetToken(state.paths.home);
      const body = JSON.stringify({ records: fresh.map(toWire) });
      for (const m of registry.view(member.heartbeatSecs)) {
        if (m.status !== "live" || m.did === state.instanceDid || !m.endpoint) continue;
        fetch(`${m.endpoint}/v1/records/batch`, {
          method: "POST",
          headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body,
          signal: AbortSignal.timeout(PULL_TIMEOUT_MS),
        }).then(
          (res) => res.status !== 200 && log.warn(`forwarding fleet control to ${m.name} answered ${res.status}; it catches up after its next heartbeat`),
          () => log.warn(`cannot forward fleet control to ${m.name} at ${m.endpoint}; it catches up after its next heartbeat`),
        );
      }
    },
  };
}

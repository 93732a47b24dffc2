// Automatic coordinator failover on etcd (README "Automatic failover with etcd", ARCHITECTURE.md
// "Automatic failover"). With [fleet.etcd] the fleet's coordinator is elected there rather than
// named by [fleet] coordinator_url: this capability runs the election (election.ts) and drives the
// fleet's seat (lib/fleet: take office, step down, follow), keeps freezes and the emergency stop
// as keys every member watches (control-keys.ts), and keeps pending fan-outs where the next
// coordinator resumes them (fanouts.ts), offered to the fan-out service as its ledger. While this
// member does not coordinate, it refuses new fan-outs and their retries and cancels, naming the
// coordinator. Without [fleet.etcd] it adds nothing.
//
// It comes before the fleet in the list: the fleet sees the election when it is set up, its
// service starts first (the lease before the first heartbeat) and stops last (the lease revoked,
// so the key goes at once, after the fleet's draining beat).
import type { Capability, Host } from "../capability";
import { ApiError } from "../api/http";
import { ELECTION, FANOUT_LEDGER, FLEET, FLEET_SEAT, type FleetSeat } from "../fleet/contract";
import { fleetSection } from "../fleet/config";
import { etcdClient, etcdSection } from "./config";
import { ControlKeys } from "./control-keys";
import { failoverRows } from "./doctor";
import { Election } from "./election";
import { FanoutState } from "./fanouts";
import { keys } from "./keys";
import { present, watchMembers } from "./members";

const STEER_TOPICS = new Set(["fanout_retry_subtask", "fanout_cancel"]);


export const failoverCapability: Capability = {
  name: "failover",
  config: etcdSection,
  doctor: [failoverRows],
  setup(host: Host) {
    const config = host.config(etcdSection);
    if (!config) return {};
    const fleet = host.config(fleetSection);
    const etcd = etcdClient(config);
    const k = keys(config.prefix);
    const seat = (): FleetSeat => host.use(FLEET_SEAT);
    const control = new ControlKeys({ host, etcd, keys: k });
    let fanouts: FanoutState;
    let members: AbortController | null = null;
    let membersFrom = 0;
    const election = new Election({
      host,
      etcd,
      keys: k,
      ttlSecs: config.leaseTtlSecs,
      candidate: fleet.candidate,
      seat,
      self: () => {
        const m = host.use(FLEET).member;
        return { did: host.instanceDid, name: m.name, endpoint: m.endpoint };
      },
      founding: () => seat().eligibility().founding,
      notEligible: () => seat().eligibility().notEligible,
      knownEpoch: () => host.use(FLEET).epoch().epoch,
      hooks: {
        async beforeOffice(epoch) {
          await fanouts.takeOffice(epoch);
          const now = await present(etcd, k);
          membersFrom = now.revision + 1;
          return now.dids;
        },
        office(epoch) {
          fanouts.office(epoch);
          members?.abort();
          members = epoch === null ? null : watchMembers(etcd, k, membersFrom, (did) => seat().lapsed(did));
        },
        control: (events) => void control.bringIn(events),
        reconnected() {
          void control.publish();
          fanouts.reconnected();
        },
      },
    });
    fanouts = new FanoutState({ host, etcd, keys: k, epoch: () => election.epoch });
    host.provide(ELECTION, { lastContactMs: () => election.lastContactMs(), status: () => election.status(control.waiting()) });
    host.provide(FANOUT_LEDGER, fanouts);
    const notCoordinator = () => {
      const c = election.status([]).coordinator;
      const where = c ? `${c.name} at ${c.url} is (epoch ${c.epoch}) — run it there (--url ${c.url})` : "none is elected now — see 'spl fleet status' and 'spl doctor'";
      return new ApiError(409, "NOT_COORDINATOR", `this member is not the fleet's coordinator: ${where}`, { coordinator_url: c?.url ?? null });
    };
    return {
      services: [
        {
          name: "failover",
          start: () => election.start(),
          stop: () => {
            control.stop();
            return election.stop();
          },
          afterCommit(created) {
            control.afterCommit(created);
            fanouts.afterCommit(created);
          },
        },
      ],
      writeChecks: [
        {
          // Fan-outs start, retry and cancel where the fan-out service runs: on the elected coordinator.
          name: "elected coordinator",
          phase: "control",
          check(rec) {
            const b = rec.body;
            const steers = (rec.act === "INTEND" && Array.isArray(b?.subtasks)) || (rec.act === "LEARN" && STEER_TOPICS.has(String(b?.topic)));
            if (steers && election.epoch === null) throw notCoordinator();
          },
        },
      ],
      metrics(out) {
        const s = election.status([]);
        out.family("spl_failover_etcd_reachable", "gauge", "1 while etcd answers this member ([fleet.etcd])");
        out.sample("spl_failover_etcd_reachable", s.reachable ? 1 : 0);
        out.family("spl_failover_coordinating", "gauge", "1 while this member is the elected coordinator");
        out.sample("spl_failover_coordinating", election.epoch === null ? 0 : 1);
        out.family("spl_failover_epoch", "gauge", "the elected coordinator's epoch (the etcd revision of its win); 0: none elected");
        out.sample("spl_failover_epoch", s.coordinator?.epoch ?? 0);
      },
    };
  },
};

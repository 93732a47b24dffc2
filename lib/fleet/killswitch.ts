// The kill switch (README "Fleet"): `spl kill` / `spl unkill` write LEARNs on th_fleet_control,
// and every member refuses new work in a frozen namespace (or everywhere, under the emergency
// stop). This capability adds the control fold, the write check that enforces it (before the
// permission rules), the thread's write scope, CEL fleet_*() and what the reconciler and
// `fleet status` read of it. How control records travel between members is the fleet's
// (control-sync.ts).
import type { Capability } from "../capability";
import type { FactProvider } from "../engine/vocabulary";
import { FLEET_CONTROL_THREAD } from "../records/reserved-threads";
import { KILL_SWITCH } from "./contract";
import { FleetControl, type FleetFacts } from "./control";

const NOTHING_FROZEN: FleetFacts = { frozen: [], hardPastGrace: [], emergency: false };

export const FLEET_FACTS: FactProvider<FleetFacts, FleetFacts> = { name: "fleet", empty: NOTHING_FROZEN, restore: (facts) => facts };

export const killSwitchCapability: Capability = {
  name: "kill switch",
  reservedThreads: [{ thread: FLEET_CONTROL_THREAD, what: "the fleet's kill switch", write: "fleet:control", code: "RESERVED_THREAD", fix: "it is written by fleet members only: use 'spl kill' / 'spl unkill' (or the fleet token: spl fleet token, spl fleet join)" }],
  cel: [
    { signature: "fleet_frozen_namespaces(): list<string>", facts: FLEET_FACTS, call: (f: FleetFacts) => [...f.frozen] },
    { signature: "fleet_hard_frozen_past_grace(): list<string>", facts: FLEET_FACTS, call: (f: FleetFacts) => [...f.hardPastGrace] },
    { signature: "fleet_emergency_active(): bool", facts: FLEET_FACTS, call: (f: FleetFacts) => f.emergency },
  ],
  setup(host) {
    const control = new FleetControl();
    host.provide(KILL_SWITCH, {
      mayStartWork: (ns) => control.mayStartWork(ns),
      get freezes() {
        return control.freezes;
      },
      get emergency() {
        return control.emergency;
      },
    });
    return {
      folds: [{ name: "fleet_control", consumes: { act: "LEARN", threads: [FLEET_CONTROL_THREAD] }, apply: (rec) => control.apply(rec) }],
      writeChecks: [
        {
          name: "freezes",
          phase: "control",
          check(rec) {
            const refused = control.refusal(rec, host.now());
            if (refused) throw refused;
          },
        },
      ],
      facts: [{ provider: FLEET_FACTS, live: (nowSecs) => control.facts(nowSecs * 1000), snapshot: (nowSecs) => control.facts(nowSecs * 1000) }],
    };
  },
};

// Dispatch (README "Dispatch"): the reconciler routes every committed INTEND (explicit target →
// routing rules → trust fallback → default) and hands it to the target's adapter. This capability
// adds the dispatch fold, the reconciler service, GET /v1/dispatches, its metrics, and [dispatch].
import type { ConfigSection } from "../config";
import { slot, type Capability } from "../capability";
import { KILL_SWITCH } from "../fleet/contract";
import { defaultDispatchConfig, parseDispatchConfig, type DispatchConfig } from "./config";
import { DISPATCH_RECORDS, DispatchTable } from "./fold";
import { dispatchRoutes } from "./routes";
import type { StoredRecord } from "../records/types";
import type { Undispatched } from "./reconciler";
import { reconcilerService } from "./service";

export const dispatchSection: ConfigSection<DispatchConfig> = {
  name: "dispatch",
  keys: ["concurrency", "targets"],
  freeform: ["targets"],
  parse: (raw, file) => (raw === undefined ? defaultDispatchConfig() : parseDispatchConfig(raw, file)),
  show: (c) => ({
    concurrency: c.concurrency,
    targets: Object.fromEntries(Object.entries(c.targets).map(([did, t]) => [did, { adapter: t.adapter ?? null, command: t.command ?? null, timeout_secs: t.timeoutSecs, cwd: t.cwd ?? null, delay_ms: t.delayMs, verdicts: t.verdicts }])),
  }),
  template: () => `# Dispatch: routed INTENDs go to the target's adapter (README "Dispatch"). Targets not listed
# get the echo adapter. Example:
# [dispatch]
# concurrency = 4
# [dispatch.targets."did:sync:agent:builder"]
# adapter = "exec"
# command = ["/usr/local/bin/build-task"]
# timeout_secs = 600`,
};

/** What other capabilities read of dispatch and ask of it. */
export interface DispatchView {
  /** How many are running (heartbeats report it). */
  active(): number;
  /** Whether an INTEND was handed to an adapter (its DO dispatch_handled is committed). */
  handled(intend: string): boolean;
  /** Ends an INTEND's dispatch, queued or running (README "Fan-out": a cancelled child). */
  cancel(intend: string, reason: string): void;
  /** Called for each INTEND the reconciler decided not to dispatch (no route, frozen, cancelled first). */
  onUndispatched(listener: (rec: StoredRecord, why: Undispatched) => void): void;
}
export const DISPATCHES = slot<DispatchView>("dispatches");

export const dispatchCapability: Capability = {
  name: "dispatch",
  config: dispatchSection,
  setup(host) {
    const table = new DispatchTable();
    const killSwitch = () => host.find(KILL_SWITCH);
    const listeners: Array<(rec: StoredRecord, why: Undispatched) => void> = [];
    const service = reconcilerService(host, {
      config: host.config(dispatchSection),
      dispatches: table,
      mayStartWork: (rec) => killSwitch()?.mayStartWork(rec.body.namespace) ?? true,
      undispatched: (rec, why) => listeners.forEach((l) => l(rec, why)),
    });
    host.provide(DISPATCHES, {
      active: () => table.active,
      handled: (intend) => table.handled(intend),
      cancel: (intend, reason) => void service.reconciler.cancel(intend, reason),
      onUndispatched: (l) => void listeners.push(l),
    });
    return {
      folds: [{ name: "dispatches", consumes: DISPATCH_RECORDS, apply: (rec) => table.apply(rec) }],
      services: [service],
      routes: dispatchRoutes(service),
      metrics(m) {
        const { queued, running } = service.reconciler.stats;
        m.family("spl_dispatches", "gauge", "Dispatches in the dispatch fold.");
        m.sample("spl_dispatches", table.size);
        m.family("spl_dispatches_active", "gauge", "Dispatches not yet closed.");
        m.sample("spl_dispatches_active", table.active);
        m.family("spl_reconciler_queued", "gauge", "INTENDs waiting for the reconciler.");
        m.sample("spl_reconciler_queued", queued);
        m.family("spl_reconciler_running", "gauge", "Adapters running now.");
        m.sample("spl_reconciler_running", running);
        m.family("spl_reconciler_decisions_total", "counter", "Reconciler events since start: decided, dispatched, defaulted, failed, finished.");
        for (const [event, n] of Object.entries(service.reconciler.counts)) m.sample("spl_reconciler_decisions_total", n, { event });
      },
    };
  },
};

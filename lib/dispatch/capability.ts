// Dispatch (README "Dispatch"): the reconciler routes every committed INTEND (explicit target →
// routing rules → trust fallback → default) and hands it to the target's adapter. This capability
// adds the dispatch fold, the reconciler service, GET /v1/dispatches, its metrics, and [dispatch].
import type { ConfigSection } from "../config";
import { slot, type Capability } from "../capability";
import { KILL_SWITCH } from "../fleet/contract";
import { defaultDispatchConfig, parseDispatchConfig, type DispatchConfig } from "./config";
import { DISPATCH_RECORDS, DispatchTable } from "./fold";
import { dispatchRoutes } from "./routes";
import { reconcilerService } from "./service";

export const dispatchSection: ConfigSection<DispatchConfig> = {
  name: "dispatch",
  keys: ["concurrency", "targets"],
  freeform: ["targets"],
  parse: (raw, file) => (raw === undefined ? defaultDispatchConfig() : parseDispatchConfig(raw, file)),
  show: (c) => ({
    concurrency: c.concurrency,
    targets: Object.fromEntries(Object.entries(c.targets).map(([did, t]) => [did, { adapter: t.adapter ?? null, command: t.command ?? null, timeout_secs: t.timeoutSecs, cwd: t.cwd ?? null, delay_ms: t.delayMs }])),
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

/** What other capabilities read of dispatch: how many are running (heartbeats report it). */
export const DISPATCHES = slot<{ active(): number }>("dispatches");

export const dispatchCapability: Capability = {
  name: "dispatch",
  config: dispatchSection,
  setup(host) {
    const table = new DispatchTable();
    const killSwitch = () => host.find(KILL_SWITCH);
    const service = reconcilerService(host, {
      config: host.config(dispatchSection),
      dispatches: table,
      mayStartWork: (rec) => killSwitch()?.mayStartWork(rec.body.namespace) ?? true,
    });
    host.provide(DISPATCHES, { active: () => table.active });
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

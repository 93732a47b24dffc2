// The reconciler as a daemon service: fed after each commit, writing as the engine's actor
// through the write path, routing with the engine's rules and trust, dispatching to the adapters
// config.toml names.
import type { Host, Service } from "../capability";
import { ENGINE_ACTOR } from "../instance";
import { prepareRecord } from "../records/envelope";
import type { StoredRecord } from "../records/types";
import { adapterFor, type DispatchConfig } from "./config";
import type { DispatchTable } from "./fold";
import { type Draft, Reconciler, type Undispatched } from "./reconciler";
import { RoutingRules } from "./rules";

export type ReconcilerService = Service & { readonly reconciler: Reconciler; readonly dispatches: DispatchTable };

export function reconcilerService(host: Host, o: {
  config: DispatchConfig;
  /** Dispatches folded from the log (the dispatch fold applies to it). */
  dispatches: DispatchTable;
  /** Whether work may start for this record now (the kill switch); absent: always. */
  mayStartWork?: (rec: StoredRecord) => boolean;
  /** An INTEND decided but not dispatched (nothing routes it, frozen, cancelled first). */
  undispatched?: (rec: StoredRecord, why: Undispatched) => void;
}): ReconcilerService {
  const log = host.log.child("syncropel_engine::reconciler");
  const rules = new RoutingRules(host.engine, host.startedAt, log, new Set(Object.keys(o.config.targets)));
  const write = async (drafts: Draft[]) => {
    const results = await host.submit(drafts.map((d) => prepareRecord({ ...d, actor: ENGINE_ACTOR })));
    return results.map((r) => {
      if (r.status === "error") throw r.error;
      return r.record;
    });
  };
  const reconciler = new Reconciler({
    write,
    route: () => rules.inputs(),
    adapterFor: (target) => adapterFor(o.config, target),
    outcomesAreVerdicts: (target) => o.config.targets[target]?.verdicts === true,
    isSystemActor: (did) => did.startsWith("did:sync:system:"),
    mayStartWork: o.mayStartWork,
    undispatched: o.undispatched,
    dispatches: o.dispatches,
    concurrency: o.config.concurrency,
    log,
    dispatchLog: host.log.child("syncropel_engine::dispatch"),
  });
  return {
    name: "reconciler",
    reconciler,
    dispatches: o.dispatches,
    start: () => reconciler.start(),
    stop: () => reconciler.stop(),
    afterCommit: (created) => {
      if (created.some((r) => r.act === "KNOW" && r.body.verdict != null)) rules.trustChanged();
      reconciler.enqueue(created);
    },
  };
}

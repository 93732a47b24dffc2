// The reconciler as a daemon service: fed by the commit hook, writing as the engine's actor
// through the ingest queue, routing with the engine's rules and trust, dispatching to the
// adapters config.toml names.
import type { Service } from "../daemon/services";
import type { DaemonState } from "../daemon/state";
import { ENGINE_ACTOR } from "../instance";
import { prepareRecord } from "../records/envelope";
import type { StoredRecord } from "../records/types";
import { adapterFor } from "./config";
import type { DispatchTable } from "./fold";
import { type Draft, Reconciler } from "./reconciler";
import { RoutingRules } from "./rules";

export type ReconcilerService = Service & { readonly reconciler: Reconciler; readonly dispatches: DispatchTable };

export interface ReconcilerWiring extends Pick<DaemonState, "engine" | "config" | "log" | "startedAt"> {
  /** Dispatches folded from the log (the engine applies dispatchFold to it). */
  dispatches: DispatchTable;
  /** The ingest queue's submit (records are written without a caller's authorizer: the engine's own). */
  submit: DaemonState["ingest"]["submit"];
  /** The kill switch: whether work may start for this record now. */
  mayStartWork?: (rec: StoredRecord) => boolean;
}

export function reconcilerService(state: ReconcilerWiring): ReconcilerService {
  const log = state.log.child("syncropel_engine::reconciler");
  const rules = new RoutingRules(state.engine, state.startedAt, log);
  const write = async (drafts: Draft[]) => {
    const results = await state.submit(drafts.map((d) => prepareRecord({ ...d, actor: ENGINE_ACTOR })));
    for (const r of results) if (r.status === "error") throw r.error;
  };
  const reconciler = new Reconciler({
    write,
    route: () => rules.inputs(),
    adapterFor: (target) => adapterFor(state.config.dispatch, target),
    isSystemActor: (did) => did.startsWith("did:sync:system:"),
    mayStartWork: state.mayStartWork,
    dispatches: state.dispatches,
    concurrency: state.config.dispatch.concurrency,
    log,
    dispatchLog: state.log.child("syncropel_engine::dispatch"),
  });
  return {
    name: "reconciler",
    reconciler,
    dispatches: state.dispatches,
    start: () => reconciler.start(),
    stop: () => reconciler.stop(),
    afterCommit: (created) => {
      if (created.some((r) => r.act === "KNOW" && r.body.verdict != null)) rules.trustChanged();
      reconciler.enqueue(created);
    },
  };
}

// The engine's folds: each names the records it consumes (one RecordFilter: the store's fold index
// keeps the records any fold's filter matches, which rebuild_from_store() replays, and the filter
// is the predicate on every commit) and how it applies one of them. Runtime walks this list for
// both; a capability's folds come after these (Engine.addFolds), and the index re-indexes once
// for a new one.
import type { Logger } from "../log";
import type { RecordFilter } from "../records/filter";
import type { StoredRecord } from "../records/types";
import type { TokenRegistry } from "../auth/tokens";
import { AUTH_THREAD, ENGINE_CONFIG_THREAD } from "../records/reserved-threads";
import type { EngineConfig } from "./config-fold";
import type { TrustTable } from "./trust";

export interface FoldContext {
  /** true while rebuild_from_store() replays the log; false for records just committed. */
  rebuilding: boolean;
  log: Logger;
  /** A stored record by id (verdicts name the work they judge by id). */
  recordOf(id: string): StoredRecord | null;
}

export interface Fold {
  readonly name: string;
  readonly consumes: RecordFilter;
  /** Folds one record, in store order. Returns whether it counted (for the rebuild stats). */
  apply(rec: StoredRecord, ctx: FoldContext): boolean;
}

/** The state the built-in folds write to. */
export interface EngineState {
  readonly config: EngineConfig;
  readonly trust: TrustTable;
  readonly tokens: TokenRegistry;
}

const configFold = (engine: EngineState): Fold => ({
  name: "config",
  consumes: { act: "LEARN", threads: [ENGINE_CONFIG_THREAD] },
  apply(rec, { rebuilding, log }) {
    if (!rebuilding) log.info("reload_config: processing LEARN record", { record: rec.id, actor: rec.actor, topic: rec.body.topic ?? null });
    const r = engine.config.apply(rec);
    if (r.warning) log.warn(r.warning, { record: rec.id, actor: rec.actor, thread: rec.thread });
    if (r.changed) syncTrustParams(engine);
    return true;
  },
});

const tokenFold = (engine: EngineState): Fold => ({
  name: "tokens",
  consumes: { act: "LEARN", threads: [AUTH_THREAD] },
  apply(rec, { rebuilding, log }) {
    const changed = engine.tokens.apply(rec);
    if (changed && !rebuilding) log.info("token registry updated", { record: rec.id, topic: rec.body.topic, token_id: rec.body.token_id });
    return changed;
  },
});

const trustFold = (engine: EngineState): Fold => ({
  name: "trust",
  consumes: { act: "KNOW", bodyField: "verdict" },
  apply: (rec, { recordOf }) => engine.trust.apply(rec, recordOf),
});

/** The built-in folds, in the order each record visits them. */
export const ENGINE_FOLDS: ReadonlyArray<(engine: EngineState) => Fold> = [configFold, tokenFold, trustFold];

function syncTrustParams(engine: EngineState): void {
  const want = engine.config.trustParams;
  const have = engine.trust.trustParams;
  if (
    want.prior_success !== have.prior_success ||
    want.prior_failure !== have.prior_failure ||
    want.z !== have.z ||
    want.half_life_days !== have.half_life_days
  ) {
    engine.trust.setParams(want);
  }
}

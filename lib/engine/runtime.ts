// The engine the daemon holds: config, trust and tokens folded from the record log.
// rebuild_from_store() replays the log once at startup; afterwards every committed record is
// applied as it lands, so config changes take effect on the next request without a restart.
// Both walk the same list of folds (folds.ts).
import type { Logger } from "../log";
import { matchesFilter } from "../records/filter";
import type { StoredRecord } from "../records/types";
import type { RecordStore } from "../store/records";
import type { CatchUpPlan } from "../store/fold-index";
import { TokenRegistry } from "../auth/tokens";
import { VERSION } from "../version";
import type { CelScope } from "./cel";
import type { FanoutTable } from "../fanout/fold";
import type { AdHocScope } from "./expr-eval";
import { EngineConfig } from "./config-fold";
import { PermissionEnforcer } from "./enforce";
import { ENGINE_FOLDS, type EngineState, type Fold, type FoldContext } from "./folds";
import { TrustTable } from "./trust";
import { TaskTable, taskFacts, type TaskFacts } from "../tasks/fold";
import type { FleetFacts } from "./vocabulary";

export interface RebuildStats {
  /** Records the store holds. */
  records: number;
  /** Records that fed a fold (config LEARNs, verdicts, token records). */
  folded: number;
  config_learns: number;
  verdicts: number;
  tokens: number;
  /** Records each fold counted. */
  by_fold: Record<string, number>;
  ms: number;
}

// How often the rebuild yields, so /health can answer 503 meanwhile.
const PAGE = 5000;

export interface EngineOptions {
  /** Folds beyond the built-in ones (ENGINE_FOLDS), applied after them. */
  extraFolds?: ReadonlyArray<(engine: EngineState) => Fold>;
  /** Prefix of minted task aliases (config.toml [tasks] alias_prefix). */
  taskAliasPrefix?: string;
  /** The fleet's kill switch, for the fleet_* CEL functions (lib/fleet/control.ts). */
  fleetFacts?: (nowMs: number) => FleetFacts;
  /** The fan-outs this member holds, for fanout_status() (lib/fanout/fold.ts). */
  fanouts?: Pick<FanoutTable, "status" | "statuses">;
}

export class Engine implements EngineState {
  readonly config = new EngineConfig();
  readonly trust = new TrustTable();
  readonly tokens = new TokenRegistry();
  readonly tasks: TaskTable;
  readonly permissions = new PermissionEnforcer(this);
  readonly folds: readonly Fold[];
  lastRebuild: RebuildStats | null = null;
  readonly log: Logger;
  private readonly live: FoldContext;
  /** Records committed before the rebuild has finished; applied after it unless its scan saw them. */
  private heldBack: StoredRecord[] | null = [];
  /** What the store's fold index has to catch up on before the rebuild can read it. */
  private indexPlan: CatchUpPlan | null;

  constructor(
    private readonly store: RecordStore,
    log: Logger,
    private readonly opts: EngineOptions = {},
  ) {
    this.log = log.child("spl::engine");
    this.tasks = new TaskTable(opts.taskAliasPrefix);
    this.folds = [...ENGINE_FOLDS, ...(opts.extraFolds ?? [])].map((make) => make(this));
    this.live = { rebuilding: false, log: this.log, actorOf: (id) => store.actorOf(id) };
    // Before any write of ours, so every record committed from here on is indexed as it lands.
    this.indexPlan = store.foldIndex.use(this.folds.map((f) => f.consumes));
  }

  /**
   * rebuild_from_store(): replays, in store order, the records some fold consumes, read from the
   * store's fold index (brought up to date first: the records written without it, or all of them
   * once when the filters changed). Yields every PAGE records so the daemon stays responsive (its
   * /health answers "starting" until this resolves).
   */
  async rebuild(progress?: { update(done: number): void; end(records: number): void }): Promise<RebuildStats> {
    const t0 = performance.now();
    this.heldBack ??= [];
    const ctx: FoldContext = { ...this.live, rebuilding: true };
    const byFold: Record<string, number> = Object.fromEntries(this.folds.map((f) => [f.name, 0]));
    let folded = 0;
    let lastSeen = 0;
    try {
      await this.catchUpIndex(progress);
      for (const rec of this.store.foldIndex.records(PAGE)) {
        folded++;
        lastSeen = rec.sequence;
        for (const fold of this.applyAll(rec, ctx)) byFold[fold]!++;
        if (folded % PAGE === 0) {
          progress?.update(lastSeen);
          await new Promise((r) => setImmediate(r));
        }
      }
    } finally {
      progress?.end(this.store.counts.records);
      const held = this.heldBack;
      this.heldBack = null;
      this.applyCommitted(held.filter((rec) => rec.sequence > lastSeen));
    }
    const stats: RebuildStats = {
      records: this.store.counts.records,
      folded,
      config_learns: byFold.config ?? 0,
      verdicts: byFold.trust ?? 0,
      tokens: this.tokens.list().length,
      by_fold: byFold,
      ms: Math.round(performance.now() - t0),
    };
    this.lastRebuild = stats;
    this.log.info("rebuild_from_store finished", {
      ...stats,
      trust_rows: this.trust.size,
      permissions_enabled: this.config.permissionsEnabled,
      refused: this.config.refused().length,
      skipped: this.config.skipped().count,
    });
    return stats;
  }

  /** Indexes what the fold index lacks, yielding between chunks, and logs why when there is any. */
  private async catchUpIndex(progress?: { update(done: number): void }): Promise<void> {
    const { from, to, reindex } = this.indexPlan ?? { from: 0, to: 0, reindex: null };
    this.indexPlan = null; // a second rebuild has at most what was written since: nothing to say
    const t0 = performance.now();
    if (to > from && reindex) this.log.info(`fold index: indexing every record once: ${reindex}`, { records_to_scan: to });
    else if (to > from) this.log.info("fold index: indexing records written without it (an older spl, an offline writer, or a crash since its last move)", { from_seq: from + 1, to_seq: to });
    for (const seq of this.store.foldIndex.catchUp()) {
      progress?.update(seq);
      await new Promise((r) => setImmediate(r));
    }
    if (to > from) this.log.info("fold index: caught up", { ms: Math.round(performance.now() - t0), through_seq: this.store.foldIndex.watermark()?.seq ?? 0 });
  }

  /** Applies records the ingest queue just committed (hot reload); the commit hook calls this. */
  applyCommitted(records: StoredRecord[]): void {
    // Task records staged for write-time checks are committed now (or were never written).
    this.tasks.settle();
    if (this.heldBack) {
      this.heldBack.push(...records);
      return;
    }
    for (const rec of records) this.applyAll(rec, this.live);
  }

  /** Runs every fold that consumes `rec`; one that throws is logged and the others still run. */
  private applyAll(rec: StoredRecord, ctx: FoldContext): string[] {
    const counted: string[] = [];
    for (const fold of this.folds) {
      if (!matchesFilter(rec, fold.consumes)) continue;
      try {
        if (fold.apply(rec, ctx)) counted.push(fold.name);
      } catch (err) {
        this.log.error("fold failed on a record; its state may lag until the next restart", {
          fold: fold.name,
          record: rec.id,
          thread: rec.thread,
          error: (err as Error)?.message ?? String(err),
        });
      }
    }
    return counted;
  }

  /** The CEL caller scope for one request or evaluation. */
  scope(actor: string, nowSecs = Math.floor(Date.now() / 1000)): CelScope {
    const task = (ref: string) => {
      const t = this.tasks.get(ref);
      return t && taskFacts(t, nowSecs);
    };
    const fanouts = this.opts.fanouts;
    return { ...this.trust.scopeFor(actor, nowSecs), task, fleet: () => this.opts.fleetFacts?.(nowSecs * 1000), ...(fanouts ? { fanoutStatus: (thread: string) => fanouts.status(thread) } : {}) };
  }

  /** The caller scope as plain data, for an evaluation in a worker thread (expr-eval.ts). */
  scopeSnapshot(actor: string, nowSecs = Math.floor(Date.now() / 1000)): AdHocScope {
    return {
      actor,
      nowSecs,
      trust: this.trust.rows(nowSecs).map((r) => [r.actor, r.domain, r.trust, r.total]),
      prior: this.trust.score("", "", nowSecs), // no evidence is ever recorded for an empty actor
      fleet: this.opts.fleetFacts?.(nowSecs * 1000),
      tasks: this.tasks.list(true).flatMap((t) => {
        const facts = taskFacts(t, nowSecs);
        return [[t.alias.toUpperCase(), facts], [t.thread, facts]] as [string, TaskFacts][];
      }),
      fanouts: this.opts.fanouts?.statuses() ?? [],
    };
  }

  /** The `system` map CEL rules see. */
  system(startedAt: number): Record<string, unknown> {
    const { records, threads } = this.store.counts;
    return {
      uptime_secs: Math.floor((Date.now() - startedAt) / 1000),
      records_total: records,
      threads_total: threads,
      daemon_version: VERSION,
      active_dispatches: [],
      today: { dispatches: 0, cost_usd: 0, tasks_completed: 0 },
    };
  }
}

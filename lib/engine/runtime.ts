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
import type { AdHocScope } from "./expr-eval";
import { EngineConfig } from "./config-fold";
import { PermissionEnforcer } from "./enforce";
import { ENGINE_FOLDS, type EngineState, type Fold, type FoldContext } from "./folds";
import { TrustTable } from "./trust";
import { TRUST_FACTS, type FactSource, type TrustLookup, type TrustSnapshot } from "./vocabulary";

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

export class Engine implements EngineState {
  readonly config = new EngineConfig();
  readonly trust = new TrustTable();
  readonly tokens = new TokenRegistry();
  readonly permissions = new PermissionEnforcer(this);
  private readonly allFolds: Fold[];
  lastRebuild: RebuildStats | null = null;
  readonly log: Logger;
  private readonly live: FoldContext;
  /** Records committed before the rebuild has finished; applied after it unless its scan saw them. */
  private heldBack: StoredRecord[] | null = [];
  /** What the store's fold index has to catch up on before the rebuild can read it (null until open()). */
  private indexPlan: CatchUpPlan | null = null;
  private opened = false;
  /** Live facts behind CEL functions, by provider name (the trust table's, and each capability's). */
  private readonly facts = new Map<string, FactSource>();

  constructor(
    private readonly store: RecordStore,
    log: Logger,
  ) {
    this.log = log.child("spl::engine");
    this.allFolds = ENGINE_FOLDS.map((make) => make(this));
    this.live = { rebuilding: false, log: this.log, recordOf: (id) => store.get(id) };
    this.addFacts([trustFacts(this.trust)]);
  }

  /** The engine's folds and the capabilities', in the order each record visits them. */
  get folds(): readonly Fold[] {
    return this.allFolds;
  }

  /** Folds after the built-in ones (a capability's); only before open(). */
  addFolds(folds: readonly Fold[]): void {
    if (this.opened) throw new Error("folds are added before the engine opens the fold index");
    this.allFolds.push(...folds);
  }

  addFacts(sources: readonly FactSource[]): void {
    for (const s of sources) this.facts.set(s.provider.name, s);
  }

  /** Every fold is known: the store's fold index starts indexing for them. Before any write of ours. */
  open(): void {
    if (this.opened) return;
    this.opened = true;
    this.indexPlan = this.store.foldIndex.use(this.allFolds.map((f) => f.consumes));
  }

  /**
   * rebuild_from_store(): replays, in store order, the records some fold consumes, read from the
   * store's fold index (brought up to date first: the records written without it, or all of them
   * once when the filters changed). Yields every PAGE records so the daemon stays responsive (its
   * /health answers "starting" until this resolves).
   */
  async rebuild(progress?: { update(done: number): void; end(records: number): void }): Promise<RebuildStats> {
    this.open();
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

  /** The CEL caller scope for one request or evaluation: each provider's facts, looked up once when first read. */
  scope(actor: string, nowSecs = Math.floor(Date.now() / 1000)): CelScope {
    const seen = new Map<string, unknown>();
    return {
      actor,
      nowSecs,
      facts: (p) => {
        if (seen.has(p.name)) return seen.get(p.name) as any;
        const v = this.facts.get(p.name)?.live(nowSecs) ?? p.empty;
        seen.set(p.name, v);
        return v;
      },
    };
  }

  /** The caller scope as plain data, for an evaluation in a worker thread (expr-eval.ts). */
  scopeSnapshot(actor: string, nowSecs = Math.floor(Date.now() / 1000)): AdHocScope {
    const facts: Record<string, unknown> = {};
    for (const [name, source] of this.facts) facts[name] = source.snapshot(nowSecs);
    return { actor, nowSecs, facts };
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

/** trust() and trust_count() over the live trust table. */
function trustFacts(trust: TrustTable): FactSource<TrustLookup, TrustSnapshot> {
  return {
    provider: TRUST_FACTS,
    live: (nowSecs) => ({ score: (a, d) => trust.score(a, d, nowSecs), count: (a, d) => trust.count(a, d) }),
    snapshot: (nowSecs) => ({
      rows: trust.rows(nowSecs).map((r) => [r.actor, r.domain, r.trust, r.total]),
      prior: trust.score("", "", nowSecs), // no evidence is ever recorded for an empty actor
    }),
  };
}

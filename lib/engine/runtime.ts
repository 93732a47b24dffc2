// The engine the daemon holds: config, trust and tokens folded from the record log.
// rebuild_from_store() replays the log once at startup; afterwards every committed record is
// applied as it lands, so config changes take effect on the next request without a restart.
import type { Logger } from "../log";
import type { StoredRecord } from "../records/types";
import { rowToRecord, type RecordStore } from "../store/records";
import { AUTH_THREAD, TokenRegistry } from "../auth/tokens";
import { VERSION } from "../version";
import type { CelScope } from "./cel";
import { EngineConfig, ENGINE_CONFIG_THREAD } from "./config-fold";
import { PermissionEnforcer } from "./enforce";
import { TrustTable } from "./trust";

export interface RebuildStats {
  /** Records the store holds (all of them are scanned once). */
  records: number;
  /** Records that fed a fold (config LEARNs, verdicts, token records). */
  folded: number;
  config_learns: number;
  verdicts: number;
  tokens: number;
  ms: number;
}

// Page size for the rebuild scan, and how often it yields so /health can answer 503 meanwhile.
const PAGE = 5000;

export class Engine {
  readonly config = new EngineConfig();
  readonly trust = new TrustTable();
  readonly tokens = new TokenRegistry();
  readonly permissions = new PermissionEnforcer(this);
  lastRebuild: RebuildStats | null = null;
  readonly log: Logger;
  private readonly actorOf: (id: string) => string | undefined;

  constructor(
    private readonly store: RecordStore,
    log: Logger,
  ) {
    this.log = log.child("spl::engine");
    this.actorOf = (id) => store.actorOf(id);
  }

  /**
   * rebuild_from_store(): replays the log in store order. SQLite walks every record; only
   * those that can feed a fold are decoded. Yields between pages so the daemon stays
   * responsive (its /health answers "starting" until this resolves).
   */
  async rebuild(): Promise<RebuildStats> {
    const t0 = performance.now();
    const stmt = this.store.db.prepare(
      `SELECT seq, id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at FROM records
       WHERE seq > ? AND ((act = 'LEARN' AND thread IN ('${ENGINE_CONFIG_THREAD}', '${AUTH_THREAD}'))
                          OR (act = 'KNOW' AND instr(body, '"verdict"') > 0))
       ORDER BY seq LIMIT ?`,
    );
    const stats: RebuildStats = { records: this.store.counts.records, folded: 0, config_learns: 0, verdicts: 0, tokens: 0, ms: 0 };
    let after = 0;
    for (;;) {
      const rows = stmt.all(after, PAGE) as any[];
      for (const row of rows) {
        const rec = rowToRecord(row);
        stats.folded++;
        if (rec.thread === ENGINE_CONFIG_THREAD && rec.act === "LEARN") stats.config_learns++;
        if (this.applyOne(rec, true) === "verdict") stats.verdicts++;
      }
      if (rows.length < PAGE) break;
      after = rows[rows.length - 1].seq;
      await new Promise((r) => setImmediate(r));
    }
    stmt.finalize();
    stats.tokens = this.tokens.list().length;
    stats.ms = Math.round(performance.now() - t0);
    this.lastRebuild = stats;
    const refused = this.config.refused().length;
    this.log.info("rebuild_from_store finished", {
      ...stats,
      trust_rows: this.trust.size,
      permissions_enabled: this.config.permissionsEnabled,
      refused,
      skipped: this.config.skipped().count,
    });
    return stats;
  }

  /** Applies records the ingest queue just committed (hot reload). */
  applyCommitted(records: StoredRecord[]): void {
    for (const rec of records) this.applyOne(rec, false);
  }

  private applyOne(rec: StoredRecord, rebuilding: boolean): "config" | "verdict" | "token" | null {
    if (rec.act === "LEARN" && rec.thread === ENGINE_CONFIG_THREAD) {
      if (!rebuilding) this.log.info("reload_config: processing LEARN record", { record: rec.id, actor: rec.actor, topic: rec.body.topic ?? null });
      const r = this.config.apply(rec);
      if (r.warning) this.log.warn(r.warning, { record: rec.id, actor: rec.actor, thread: rec.thread });
      if (r.changed) this.syncTrustParams();
      return "config";
    }
    if (rec.act === "LEARN" && rec.thread === AUTH_THREAD) {
      if (this.tokens.apply(rec) && !rebuilding) this.log.info("token registry updated", { record: rec.id, topic: rec.body.topic, token_id: rec.body.token_id });
      return "token";
    }
    if (rec.act === "KNOW") return this.trust.apply(rec, this.actorOf) ? "verdict" : null;
    return null;
  }

  private syncTrustParams(): void {
    const want = this.config.trustParams;
    const have = this.trust.trustParams;
    if (
      want.prior_success !== have.prior_success ||
      want.prior_failure !== have.prior_failure ||
      want.z !== have.z ||
      want.half_life_days !== have.half_life_days
    ) {
      this.trust.setParams(want);
    }
  }

  /** The CEL caller scope for one request or evaluation. */
  scope(actor: string, nowSecs = Math.floor(Date.now() / 1000)): CelScope {
    return this.trust.scopeFor(actor, nowSecs);
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

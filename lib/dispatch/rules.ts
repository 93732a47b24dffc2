// The routing cascade's inputs from the live engine: routing rules compiled once per config
// generation (as enforce.ts does for permissions), and the trust fallback. A rule that cannot be
// evaluated does not match; it is logged once per config generation so a broken rule is visible
// without a line per record.
import type { Logger } from "../log";
import type { StoredRecord } from "../records/types";
import { bindContextDefaults, compileBool, toCelVars, type BoolEvaluator, type CelScope, type CelVars } from "../engine/cel";
import type { RoutingRule } from "../engine/config-fold";
import type { Engine } from "../engine/runtime";
import type { RouteInputs } from "./routing";

export class RoutingRules {
  private generation = -1;
  private compiled = new Map<RoutingRule, BoolEvaluator | null>();
  private needsSystem = false;
  private warned = new Set<string>();
  /** The trust fallback's table (it walks every trust row): recomputed after new verdicts, and each minute for decay. */
  private best: { at: number; byDomain: Map<string, string[]> } | null = null;

  constructor(
    private readonly engine: Pick<Engine, "config" | "trust" | "scope" | "system">,
    private readonly startedAt: number,
    private readonly log: Logger,
    /** Actors with a [dispatch.targets."<did>"] entry: the only ones the trust fallback hands work to. */
    private readonly dispatchTargets: ReadonlySet<string>,
  ) {}

  private refresh(): void {
    const config = this.engine.config;
    if (config.generation === this.generation) return;
    this.generation = config.generation;
    this.compiled = new Map();
    this.warned = new Set();
    this.needsSystem = config.routingRules.some((r) => /\bsystem\b/.test(r.expression));
  }

  private evaluator(rule: RoutingRule): BoolEvaluator | null {
    let fn = this.compiled.get(rule);
    if (fn === undefined) {
      try {
        fn = compileBool("routing", rule.expression);
      } catch (err) {
        this.warnOnce(rule, err);
        fn = null;
      }
      this.compiled.set(rule, fn);
    }
    return fn;
  }

  private warnOnce(rule: RoutingRule, err: unknown): void {
    if (this.warned.has(rule.name)) return;
    this.warned.add(rule.name);
    this.log.warn("routing rule could not be evaluated; it does not match", { rule: rule.name, error: (err as Error)?.message ?? String(err) });
  }

  private bestByDomain(nowSecs: number): Map<string, string[]> {
    const now = Date.now();
    if (!this.best || now - this.best.at >= 60_000) this.best = { at: now, byDomain: byTrust(this.engine, nowSecs, this.dispatchTargets) };
    return this.best.byDomain;
  }

  /** Called when verdicts were committed: the next trust fallback reads the trust table again. */
  trustChanged(): void {
    this.best = null;
  }

  /** The inputs for one batch of decisions: rules and trust as they are now. */
  inputs(): RouteInputs<RoutingRule> {
    this.refresh();
    const nowSecs = Math.floor(Date.now() / 1000);
    const system = this.needsSystem ? { system: this.engine.system(this.startedAt) } : {};
    let lastRecord: StoredRecord | null = null;
    let vars: CelVars = {};
    let scope: CelScope | null = null;
    return {
      rules: this.engine.config.routingRules,
      matches: (rule, rec) => {
        const fn = this.evaluator(rule);
        if (!fn) return false;
        try {
          if (rec !== lastRecord) {
            vars = bindContextDefaults("routing", toCelVars({ record: rec, ...system }));
            scope = this.engine.scope(rec.actor, nowSecs);
            lastRecord = rec;
          }
          return fn(vars, scope!);
        } catch (err) {
          this.warnOnce(rule, err);
          return false;
        }
      },
      trusted: (domain, requester) => this.bestByDomain(nowSecs).get(domain)?.find((actor) => actor !== requester),
    };
  }
}

/**
 * Per domain, the actors with evidence there that can take work (they have a dispatch target),
 * highest trust first (ties: more verdicts, then by name).
 */
function byTrust(engine: Pick<Engine, "trust">, nowSecs: number, targets: ReadonlySet<string>): Map<string, string[]> {
  const rows = new Map<string, { actor: string; trust: number; total: number }[]>();
  for (const r of engine.trust.rows(nowSecs)) {
    if (r.total === 0 || !targets.has(r.actor)) continue;
    rows.set(r.domain, [...(rows.get(r.domain) ?? []), r]);
  }
  const order = (a: { actor: string; trust: number; total: number }, b: typeof a) => b.trust - a.trust || b.total - a.total || (a.actor < b.actor ? -1 : 1);
  return new Map([...rows].map(([d, rs]) => [d, rs.sort(order).map((r) => r.actor)]));
}

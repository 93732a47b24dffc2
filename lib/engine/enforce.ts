// Permission checks on the request path. decide() holds the semantics; this keeps the
// per-request work small: rules are compiled once per config generation (not looked up in the
// expression cache on every request), and the `system` map is built only when a rule reads it.
import type { Logger } from "../log";
import type { Envelope } from "../records/types";
import { compileBool, type BoolEvaluator, type CelScope } from "./cel";
import type { EngineConfig, PermissionRule } from "./config-fold";
import { decide, type Decision, type RuleEvaluator } from "./permissions";

const WARN_EVERY_MS = 60_000;

interface EngineView {
  readonly config: EngineConfig;
  readonly log?: Logger;
  scope(actor: string, nowSecs?: number): CelScope;
  system(startedAt: number): Record<string, unknown>;
}

export class PermissionEnforcer {
  private generation = -1;
  private needsSystem = false;
  private needsClock = false;
  private compiled = new Map<PermissionRule, BoolEvaluator>();
  private readonly evaluate: RuleEvaluator = (rule, vars, scope) => {
    try {
      let fn = this.compiled.get(rule);
      if (!fn) {
        fn = compileBool("permission", rule.expression); // throws → decide() fails closed
        this.compiled.set(rule, fn);
      }
      return fn(vars, scope);
    } catch (err) {
      // decide() fails closed; say why, or an operator sees only a denial.
      this.warn(rule, scope.actor, err);
      throw err;
    }
  };
  /** Per rule name: when its failure was last logged, and how many failures since went unlogged. */
  private warned = new Map<string, { at: number; quiet: number }>();
  /** Decisions made and denied since start, and the time spent making them. */
  readonly stats = { checks: 0, denied: 0, micros: 0 };

  constructor(private readonly engine: EngineView) {}

  /** One WARN per rule per minute (a broken rule fails every request that reaches it). */
  private warn(rule: PermissionRule, actor: string, err: unknown): void {
    const now = Date.now();
    const w = this.warned.get(rule.name);
    if (w && now - w.at < WARN_EVERY_MS) {
      w.quiet++;
      return;
    }
    this.warned.set(rule.name, { at: now, quiet: 0 });
    this.engine.log?.warn("permission rule could not be evaluated; failing closed (an allow rule does not match, a deny rule does)", { rule: rule.name, actor, error: (err as Error)?.message ?? String(err), ...(w?.quiet ? { unlogged_since_last: w.quiet } : {}) });
  }

  /** Whether some rule reads record.clock (so a record whose clock the store assigns needs it first). */
  get readsClock(): boolean {
    this.refresh();
    return this.needsClock;
  }

  private refresh(): void {
    const config = this.engine.config;
    if (config.generation !== this.generation) {
      this.generation = config.generation;
      this.compiled = new Map();
      this.warned = new Map();
      this.needsSystem = config.permissionRules.some((r) => /\bsystem\b/.test(r.expression));
      this.needsClock = config.permissionRules.some((r) => /\bclock\b/.test(r.expression));
    }
  }

  check(actor: string, resource: string, record: Partial<Envelope> & { id?: string }, startedAt = Date.now()): Decision {
    const t0 = performance.now();
    const config = this.engine.config;
    this.refresh();
    const system = this.needsSystem ? { system: this.engine.system(startedAt) } : {};
    const d = decide(config.permissionRules, { actor, resource, record, ...system }, this.engine.scope(actor), this.evaluate);
    this.stats.checks++;
    if (!d.allowed) this.stats.denied++;
    this.stats.micros += (performance.now() - t0) * 1000;
    return d;
  }
}

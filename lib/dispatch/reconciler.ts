// The reconciler: routes committed INTENDs and dispatches them to adapters, off the ingest path.
// The commit hook only enqueues (O(1) per record); a drain on a later turn of the event loop
// decides routes and starts dispatches, so no acknowledgement ever waits for routing or work.
//
// Exactly once: before an adapter runs, a DO {dispatch_handled} is committed for the INTEND.
// The dispatch fold knows which INTENDs are handled, so a restart never dispatches one twice;
// handled-but-unfinished ones are closed as failed with reason "restarted" at startup.
import type { Logger } from "../log";
import type { JsonObject, StoredRecord } from "../records/types";
import { type Adapter, type Outcome, Semaphore } from "./adapters";
import type { DispatchTable } from "./fold";
import { DISPATCH_COMPLETE_TOPIC, dispatchThread } from "./fold";
import { decideRoute, type RouteInputs, type RoutingRuleLike, skipReason } from "./routing";

/** A record the reconciler asks the daemon to write (always as the engine's actor). */
export interface Draft {
  thread: string;
  act: "DO" | "KNOW";
  body: JsonObject;
  parents?: string[];
}

export interface ReconcilerDeps<R extends RoutingRuleLike> {
  /** Writes records through the ingest queue; resolves once they are committed. */
  write(drafts: Draft[]): Promise<void>;
  route: () => RouteInputs<R>;
  /** The adapter for a target, or an error message naming the config fix. */
  adapterFor(target: string): Adapter | string;
  isSystemActor(did: string): boolean;
  dispatches: DispatchTable;
  concurrency: number;
  log: Logger;
}

export class Reconciler<R extends RoutingRuleLike = RoutingRuleLike> {
  private queue: StoredRecord[] = [];
  private draining = false;
  private stopped = true;
  private readonly semaphore: Semaphore;
  private readonly inflight = new Set<Promise<void>>();
  /** Decisions made since start, by outcome (bench and status read these). */
  readonly counts = { routed: 0, dispatched: 0, defaulted: 0, skipped: 0, failed: 0 };

  constructor(private readonly deps: ReconcilerDeps<R>) {
    this.semaphore = new Semaphore(deps.concurrency);
  }

  get peakConcurrency(): number {
    return this.semaphore.peak;
  }

  get backlog(): number {
    return this.queue.length;
  }

  /** Called from the commit hook with the records one transaction created. Never blocks. */
  enqueue(records: readonly StoredRecord[]): void {
    if (this.stopped) return;
    for (const r of records) if (r.act === "INTEND") this.queue.push(r);
    if (this.queue.length && !this.draining) {
      this.draining = true;
      setImmediate(() => void this.drain());
    }
  }

  /** Closes dispatches a previous run left unfinished, then starts taking records. */
  async start(): Promise<void> {
    const orphans = this.deps.dispatches.unfinished();
    for (const d of orphans) {
      this.deps.log.warn("dispatch did not finish before the daemon stopped; closing it as failed", { record: d.intend, thread: d.thread, target: d.target, reason: "restarted" });
      await this.deps.write(completion(d.thread, d.intend, d.target, d.rule, d.domain, { ok: false, verdict: "failed", reason: "restarted" }, 0, "restart"));
    }
    this.stopped = false;
  }

  /** Stops taking records and waits (bounded by the caller) for running dispatches. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.queue = [];
    await Promise.allSettled([...this.inflight]);
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length && !this.stopped) {
        const batch = this.queue;
        this.queue = [];
        const inputs = this.deps.route();
        for (const rec of batch) await this.decide(rec, inputs);
        await new Promise((r) => setImmediate(r)); // let requests in between batches
      }
    } finally {
      this.draining = false;
      if (this.queue.length && !this.stopped) this.enqueue([]);
    }
  }

  private async decide(rec: StoredRecord, inputs: RouteInputs<R>): Promise<void> {
    const skip = skipReason(rec, this.deps.isSystemActor);
    if (skip || this.deps.dispatches.handled(rec.id)) {
      this.counts.skipped++;
      return;
    }
    const { rule, target } = decideRoute(rec, inputs);
    this.counts.routed++;
    const fields = { record: rec.id, thread: rec.thread, rule, target };
    if (target === null) {
      this.counts.defaulted++;
      this.deps.log.info("routing decision", { ...fields, outcome: "default" });
      return;
    }
    const adapter = this.deps.adapterFor(target);
    const broken = typeof adapter === "string";
    if (broken) this.deps.log.error("routing decision", { ...fields, outcome: "no_adapter", error: adapter });
    else this.deps.log.info("routing decision", { ...fields, outcome: "dispatch", adapter: adapter.kind });
    // Committed before the adapter runs: the record that makes a restart skip this INTEND.
    await this.deps.write([{ thread: rec.thread, act: "DO", body: { dispatch_handled: true, intend: rec.id, target, rule, domain: domainOf(rec) }, parents: [rec.id] }]);
    if (broken) {
      this.counts.failed++;
      await this.deps.write(completion(rec.thread, rec.id, target, rule, domainOf(rec), { ok: false, verdict: "failed", reason: adapter }, 0, "config"));
      return;
    }
    this.counts.dispatched++;
    const run = this.semaphore.run(() => this.dispatch(rec, target, rule, adapter));
    this.inflight.add(run);
    void run.finally(() => this.inflight.delete(run));
  }

  private async dispatch(rec: StoredRecord, target: string, rule: string, adapter: Adapter): Promise<void> {
    const t0 = performance.now();
    let outcome: Outcome;
    try {
      outcome = await adapter.run({ record: rec, target, goal: goalOf(rec) });
    } catch (err) {
      outcome = { ok: false, verdict: "reject", reason: `adapter ${adapter.kind} failed: ${(err as Error).message}` };
    }
    const latency = Math.round(performance.now() - t0);
    if (!outcome.ok) this.counts.failed++;
    this.deps.log.info("dispatch finished", { record: rec.id, thread: rec.thread, target, success: outcome.ok, latency_ms: latency, ...(outcome.ok ? {} : { reason: outcome.reason }) });
    try {
      await this.deps.write(completion(rec.thread, rec.id, target, rule, domainOf(rec), outcome, latency, adapter.kind));
    } catch (err) {
      this.deps.log.error("could not record a dispatch result", { record: rec.id, error: (err as Error).message });
    }
  }
}

function goalOf(rec: StoredRecord): string {
  const b = rec.body;
  return typeof b.goal === "string" ? b.goal : typeof b.text === "string" ? b.text : JSON.stringify(b);
}

function domainOf(rec: StoredRecord): string {
  return typeof rec.body.domain === "string" && rec.body.domain !== "" ? rec.body.domain : "general";
}

/**
 * The two records that close a dispatch: the KNOW fulfilling the INTEND (a verdict about the
 * target, so dispatch results are trust evidence) and the summary on the private sub-thread.
 */
function completion(thread: string, intend: string, target: string, rule: string, domain: string, outcome: Outcome, latencyMs: number, codepath: string): Draft[] {
  const verdict = outcome.ok ? "accept" : outcome.verdict;
  const fulfil: JsonObject = { fulfills: intend, verdict, subject: target, domain, ...(outcome.summary !== undefined ? { summary: outcome.summary } : {}) };
  if (!outcome.ok) fulfil.reason = outcome.reason;
  return [
    { thread, act: "KNOW", body: fulfil, parents: [intend] },
    {
      thread: dispatchThread(thread),
      act: "KNOW",
      body: {
        topic: DISPATCH_COMPLETE_TOPIC,
        intend,
        target,
        rule,
        success: outcome.ok,
        latency_ms: latencyMs,
        completion_codepath: codepath,
        failure_reason: outcome.ok ? null : outcome.reason,
      },
    },
  ];
}

// The reconciler: routes committed INTENDs and dispatches them to adapters, off the ingest path.
// The commit hook only enqueues (O(1) per record); a drain on a later turn of the event loop
// decides routes and starts dispatches, so no acknowledgement ever waits for routing or work.
//
// Exactly once: before an adapter runs, a DO {dispatch_handled} is committed for the INTEND.
// The dispatch fold knows which INTENDs are handled, so a restart never dispatches one twice;
// handled-but-unfinished ones are closed as failed with reason "restarted" at the next start.
import type { Logger } from "../log";
import type { JsonObject, StoredRecord } from "../records/types";
import { type Adapter, type Outcome, Semaphore } from "./adapters";
import type { Dispatch, DispatchTable } from "./fold";
import { DISPATCH_COMPLETE_TOPIC, dispatchThread } from "./fold";
import { decideRoute, type RouteInputs, type RoutingRuleLike, skipReason } from "./routing";

/** A record the reconciler asks the daemon to write (always as the engine's actor). */
export interface Draft {
  thread: string;
  act: "DO" | "KNOW";
  body: JsonObject;
  parents?: string[];
  judged_by?: string;
}

export interface ReconcilerDeps<R extends RoutingRuleLike> {
  /** Writes records in one submission; resolves with them once committed, throws if any was refused. */
  write(drafts: Draft[]): Promise<StoredRecord[]>;
  /** Whether a target's adapter outcomes are trust verdicts ([dispatch.targets."<did>"] verdicts = true). */
  outcomesAreVerdicts?(target: string): boolean;
  /** Routing rules and trust as they are now (called once per batch). */
  route(): RouteInputs<R>;
  /** The adapter for a target, or an error message naming the config fix. */
  adapterFor(target: string): Adapter | string;
  isSystemActor(did: string): boolean;
  /** The kill switch (README "Fleet"): false while the record's namespace is frozen or the fleet is stopped. */
  mayStartWork?(rec: StoredRecord): boolean;
  /** An INTEND decided but not dispatched: nothing routes it, its namespace is frozen, or it was cancelled first. */
  undispatched?(rec: StoredRecord, why: Undispatched): void;
  dispatches: DispatchTable;
  concurrency: number;
  /** Routing decisions (target syncropel_engine::reconciler). */
  log: Logger;
  /** Dispatch outcomes (target syncropel_engine::dispatch). */
  dispatchLog: Logger;
}

export type Undispatched = "default" | "frozen" | "cancelled";

/** INTENDs decided per turn of the event loop before requests get their turn again. */
const BATCH = 256;

interface Decision {
  rec: StoredRecord;
  target: string;
  rule: string;
  domain: string;
  adapter: Adapter | string;
}

export class Reconciler<R extends RoutingRuleLike = RoutingRuleLike> {
  private queue: StoredRecord[] = [];
  private draining: Promise<void> | null = null;
  private stopped = true;
  private abort = new AbortController();
  private readonly semaphore: Semaphore;
  private readonly inflight = new Set<Promise<void>>();
  /** INTENDs cancelled before or while they ran (README "Fan-out": a cancelled child), with the reason. */
  private readonly cancelled = new Map<string, string>();
  /** The abort of each running dispatch, by INTEND. */
  private readonly running = new Map<string, AbortController>();
  /** Since start: INTENDs decided, by outcome, and dispatches finished. */
  readonly counts = { decided: 0, dispatched: 0, defaulted: 0, failed: 0, finished: 0 };

  constructor(private readonly deps: ReconcilerDeps<R>) {
    this.semaphore = new Semaphore(deps.concurrency);
  }

  /** Queue depth, adapters running and waiting for a slot, the most ever running at once. */
  get stats() {
    return { queued: this.queue.length, running: this.semaphore.running, waiting: this.semaphore.queued, peak: this.semaphore.peak, concurrency: this.deps.concurrency, ...this.counts };
  }

  /**
   * Ends one INTEND's dispatch: one still queued is not dispatched, a running adapter is aborted
   * and the INTEND is fulfilled with verdict `cancelled`. Returns whether an adapter was running.
   */
  cancel(intend: string, reason: string): boolean {
    this.cancelled.set(intend, reason);
    const job = this.running.get(intend);
    job?.abort();
    return job !== undefined;
  }

  /** Called from the commit hook with the records one transaction created. Never blocks. */
  enqueue(records: readonly StoredRecord[]): void {
    if (this.stopped) return;
    for (const r of records) if (r.act === "INTEND") this.queue.push(r);
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (!this.queue.length || this.draining || this.stopped) return;
    this.draining = new Promise((r) => setImmediate(r)).then(() => this.drain());
  }

  /** Closes dispatches a previous run left unfinished, then takes records. */
  start(): void {
    this.stopped = false;
    this.abort = new AbortController();
    const orphans = this.deps.dispatches.unfinished();
    if (orphans.length) void this.closeOrphans(orphans);
  }

  private async closeOrphans(orphans: Dispatch[]): Promise<void> {
    for (const d of orphans) {
      this.deps.dispatchLog.warn("dispatch did not finish before the daemon stopped; closing it as failed", { record: d.intend, thread: d.thread, target: d.target, outcome: "failed", reason: "restarted" });
    }
    const failed: Outcome = { ok: false, verdict: "failed", reason: "restarted" };
    try {
      await this.deps.write(orphans.flatMap((d) => completion(d.intend, d.thread, d.target, d.rule, d.domain, failed, 0, "restart")));
    } catch (err) {
      this.deps.dispatchLog.error("could not close unfinished dispatches; they are closed at the next start", { count: orphans.length, error: (err as Error).message });
    }
  }

  /**
   * Stops taking records and ends running adapters. INTENDs already queued are still decided, so
   * none is lost unseen: the ones it would dispatch are marked handled and, like the interrupted
   * ones, closed as failed ("restarted") at the next start.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await this.draining;
    while (this.queue.length) await this.decideBatch();
    await Promise.allSettled([...this.inflight]);
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length && !this.stopped) {
        try {
          await this.decideBatch();
        } catch (err) {
          this.deps.log.error("reconciler failed on a batch of INTENDs; they are not dispatched", { error: (err as Error)?.stack ?? String(err) });
        }
        await new Promise((r) => setImmediate(r)); // let requests in between batches
      }
    } finally {
      this.draining = null;
      this.scheduleDrain();
    }
  }

  private async decideBatch(): Promise<void> {
    const batch = this.queue.splice(0, BATCH);
    const inputs = this.deps.route();
    const decisions: Decision[] = [];
    for (const rec of batch) {
      const d = this.decide(rec, inputs);
      if (d) decisions.push(d);
    }
    if (decisions.length) await this.handle(decisions);
  }

  /** Routes one INTEND and logs the decision; returns what to dispatch, or null. */
  private decide(rec: StoredRecord, inputs: RouteInputs<R>): Decision | null {
    if (skipReason(rec, this.deps.isSystemActor) || this.deps.dispatches.handled(rec.id)) return null;
    if (this.cancelled.has(rec.id)) {
      this.deps.log.info("routing decision", { record: rec.id, thread: rec.thread, outcome: "cancelled" });
      this.cancelled.delete(rec.id);
      this.deps.undispatched?.(rec, "cancelled");
      return null;
    }
    if (this.deps.mayStartWork && !this.deps.mayStartWork(rec)) {
      this.deps.log.info("routing decision", { record: rec.id, thread: rec.thread, outcome: "frozen", namespace: rec.body.namespace ?? null });
      this.deps.undispatched?.(rec, "frozen");
      return null;
    }
    const { rule, target } = decideRoute(rec, inputs);
    this.counts.decided++;
    const fields = { record: rec.id, thread: rec.thread, rule, target };
    if (target === null) {
      this.counts.defaulted++;
      this.deps.log.info("routing decision", { ...fields, outcome: "default" });
      this.deps.undispatched?.(rec, "default");
      return null;
    }
    const adapter = this.deps.adapterFor(target);
    if (typeof adapter === "string") {
      this.counts.failed++;
      this.deps.log.info("routing decision", { ...fields, outcome: "failed", error: adapter });
    } else {
      this.counts.dispatched++;
      this.deps.log.info("routing decision", { ...fields, outcome: "dispatched", adapter: adapter.kind });
    }
    return { rec, target, rule, domain: domainOf(rec), adapter };
  }

  /** Commits the batch's DO {dispatch_handled} records, then starts the dispatches. */
  private async handle(decisions: Decision[]): Promise<void> {
    const handled: Draft[] = decisions.map(({ rec, target, rule, domain }) => ({
      thread: rec.thread,
      act: "DO",
      body: { dispatch_handled: true, intend: rec.id, target, rule, domain },
      parents: [rec.id],
    }));
    try {
      await this.deps.write(handled);
    } catch (err) {
      this.deps.log.error("could not record dispatch decisions; these INTENDs are not dispatched", { records: decisions.length, error: (err as Error).message });
      return;
    }
    const broken: Draft[] = [];
    for (const d of decisions) {
      if (typeof d.adapter === "string") {
        this.deps.dispatchLog.error("dispatch failed", { record: d.rec.id, thread: d.rec.thread, target: d.target, outcome: "failed", reason: d.adapter });
        broken.push(...completion(d.rec.id, d.rec.thread, d.target, d.rule, d.domain, { ok: false, verdict: "failed", reason: d.adapter }, 0, "config"));
      } else if (!this.stopped) {
        this.run(d, d.adapter);
      } // stopping: handled but never started, so the next start closes it as "restarted"
    }
    if (broken.length) await this.finish(broken);
  }

  private run(d: Decision, adapter: Adapter): void {
    const own = new AbortController();
    const job = this.semaphore
      .run(async () => {
        if (this.stopped) return null;
        const t0 = performance.now();
        let outcome: Outcome;
        this.running.set(d.rec.id, own);
        if (this.cancelled.has(d.rec.id)) own.abort();
        try {
          outcome = own.signal.aborted ? cancelledOutcome() : await adapter.run({ record: d.rec, target: d.target, goal: goalOf(d.rec), signal: AbortSignal.any([this.abort.signal, own.signal]) });
        } catch (err) {
          outcome = { ok: false, verdict: "failed", reason: `adapter ${adapter.kind} failed: ${(err as Error).message}` };
        } finally {
          this.running.delete(d.rec.id);
        }
        if (own.signal.aborted && !this.abort.signal.aborted) outcome = { ...cancelledOutcome(this.cancelled.get(d.rec.id)), ...(outcome.summary !== undefined ? { summary: outcome.summary } : {}) };
        this.cancelled.delete(d.rec.id);
        return { outcome, latency: Math.round(performance.now() - t0) };
      })
      // The slot is free once the work is done; recording the result does not hold it.
      .then(async (done) => {
        if (!done || this.abort.signal.aborted) return;
        const { outcome, latency } = done;
        const fields = { record: d.rec.id, thread: d.rec.thread, target: d.target, outcome: outcome.ok ? "accept" : outcome.verdict, latency_ms: latency };
        if (outcome.ok) this.deps.dispatchLog.info("dispatch finished", fields);
        else this.deps.dispatchLog.warn("dispatch finished", { ...fields, reason: outcome.reason });
        const [fulfil] = await this.finish(completion(d.rec.id, d.rec.thread, d.target, d.rule, d.domain, outcome, latency, adapter.kind));
        // A target configured so: the engine judges the outcome (accept or reject) as a reviewer would.
        const verdict = outcome.ok ? "accept" : outcome.verdict === "reject" ? "reject" : null;
        if (fulfil && verdict && this.deps.outcomesAreVerdicts?.(d.target)) {
          await this.finish([{ thread: d.rec.thread, act: "KNOW", body: { verdict, subject: d.target, domain: d.domain, judged_as: "adapter outcome" }, parents: [fulfil.id], judged_by: fulfil.id }]);
        }
      });
    this.inflight.add(job);
    void job.finally(() => this.inflight.delete(job));
  }

  private async finish(drafts: Draft[]): Promise<StoredRecord[]> {
    try {
      const written = await this.deps.write(drafts);
      this.counts.finished += drafts.filter((d) => d.body.fulfills !== undefined).length;
      return written;
    } catch (err) {
      this.deps.dispatchLog.error("could not record a dispatch result; it is closed as failed at the next start", { records: drafts.length, error: (err as Error).message });
      return [];
    }
  }
}

const cancelledOutcome = (reason = "cancelled"): Outcome => ({ ok: false, verdict: "cancelled", reason });

function goalOf(rec: StoredRecord): string {
  const b = rec.body;
  return typeof b.goal === "string" ? b.goal : typeof b.text === "string" ? b.text : JSON.stringify(b);
}

function domainOf(rec: StoredRecord): string {
  return typeof rec.body.domain === "string" && rec.body.domain !== "" ? rec.body.domain : "general";
}

/**
 * The two records that close a dispatch: the KNOW fulfilling the INTEND (the adapter's outcome:
 * it names the target as subject, but judges no work, so it is not trust evidence — README
 * "Dispatch") and the summary on the sub-thread.
 */
function completion(intend: string, thread: string, target: string, rule: string, domain: string, outcome: Outcome, latencyMs: number, codepath: string): Draft[] {
  const fulfil: JsonObject = { fulfills: intend, verdict: outcome.ok ? "accept" : outcome.verdict, subject: target, domain };
  if (outcome.summary !== undefined) fulfil.summary = outcome.summary;
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

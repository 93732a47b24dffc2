// A worker's side of fan-out (README "Fan-out": reports): every child it was sent ends in exactly
// one report to its coordinator — the dispatch's outcome, `unrouted` at once when nothing here
// routes it, `cancelled` when the coordinator (or an emergency stop) ended it. Reports are durable:
// each is first written to this worker's own store as an outbox entry (DO {fanout_outbox:
// "queued"} on the child's thread), then sent with capped, jittered backoff — across restarts —
// until the coordinator acknowledges it (DO {fanout_outbox: "acked"}) or refuses it for good
// ("refused", logged as an ERROR). A report is one content-addressed record (its clock comes from
// the child INTEND's id), so a resend the coordinator already holds is a duplicate, never a second
// report.
import type { Host, Service } from "../capability";
import { DISPATCHES } from "../dispatch/capability";
import type { Undispatched } from "../dispatch/reconciler";
import type { Fold } from "../engine/folds";
import { FANOUT_LEDGER, FLEET, KILL_SWITCH } from "../fleet/contract";
import { ENGINE_ACTOR } from "../instance";
import { backoffMs } from "../peer";
import { FLEET_CONTROL_THREAD } from "../records/reserved-threads";
import type { JsonObject, StoredRecord } from "../records/types";
import { CHILD_DONE } from "./fold";
import { answerTimeoutMs, RecordSender, RETRY_CAP_MS } from "./sender";
import { DEFAULT_CHILD_TARGET } from "./spec";

/** The coordinator's cancel of one attempt, sent to its worker (LEARN on the child's thread). */
export const CHILD_CANCEL = "fanout_child_cancel";
/** The body field of this worker's outbox records. */
export const OUTBOX_FIELD = "fanout_outbox";

const TICK_MS = 1000;
const WARN_EVERY_MS = 60_000;
/**
 * Whether an answer will not change by sending again (the report is refused for good): a bad or
 * unknown report, or one the coordinator says this member may not send. A freeze, an emergency
 * stop, a credential the coordinator does not know yet, a stale epoch, an outage: sent again.
 */
const refusedForGood = (status: number, code: string) =>
  (status === 403 && (code === "FANOUT_FORBIDDEN" || code === "DID_CLAIM_DENIED")) || ([400, 404, 409, 413, 422].includes(status) && code !== "STALE_EPOCH");

/** A fan-out child INTEND this worker holds, from its body.fanout. */
export interface ChildRef {
  intend: string;
  thread: string;
  at: number;
  parentThread: string;
  parentRecord: string;
  index: number;
  attempt: number | undefined;
}

interface Entry {
  id: string;
  intend: string;
  report: JsonObject;
  tries: number;
  nextAt: number;
  sending: boolean;
}

const str = (v: unknown) => (typeof v === "string" ? v : "");

function childRef(rec: StoredRecord): ChildRef | null {
  const fo = rec.body.fanout as JsonObject | null;
  if (!fo || typeof fo !== "object" || Array.isArray(fo) || typeof fo.parent_record !== "string" || typeof fo.parent_thread !== "string" || !Number.isInteger(fo.index)) return null;
  return { intend: rec.id, thread: rec.thread, at: rec.created_at, parentThread: fo.parent_thread, parentRecord: fo.parent_record, index: fo.index as number, attempt: Number.isInteger(fo.attempt) ? (fo.attempt as number) : undefined };
}

/** What the outbox folds: children without a report yet, reports not yet acknowledged, cancels received. */
export class Outbox {
  readonly unreported = new Map<string, ChildRef>();
  readonly waiting = new Map<string, Entry>();
  readonly cancels = new Map<string, string>();

  apply(rec: StoredRecord): boolean {
    const b = rec.body;
    if (rec.act === "INTEND") {
      const ref = childRef(rec);
      if (!ref) return false;
      this.unreported.set(rec.id, ref);
      return true;
    }
    if (b.topic === CHILD_CANCEL && typeof b.cancel_intend === "string") {
      this.cancels.set(b.cancel_intend, str(b.reason) || "cancelled by the coordinator"); // it may come before the child
      return true;
    }
    if (rec.actor !== ENGINE_ACTOR) return false;
    if (b[OUTBOX_FIELD] === "queued" && b.report && typeof b.report === "object") {
      this.unreported.delete(str(b.intend));
      this.cancels.delete(str(b.intend));
      this.waiting.set(rec.id, { id: rec.id, intend: str(b.intend), report: b.report as JsonObject, tries: 0, nextAt: 0, sending: false });
      return true;
    }
    if (b[OUTBOX_FIELD] === "acked" || b[OUTBOX_FIELD] === "refused") return this.waiting.delete(str(b.entry));
    return false;
  }

  folds(): Fold[] {
    return [
      { name: "fanout_children", consumes: { act: "INTEND", bodyField: "fanout" }, apply: (rec) => this.apply(rec) },
      { name: "fanout_child_cancels", consumes: { bodyField: "cancel_intend" }, apply: (rec) => this.apply(rec) },
      { name: "fanout_outbox", consumes: { bodyField: OUTBOX_FIELD }, apply: (rec) => this.apply(rec) },
    ];
  }
}

/**
 * A fan-out service's pass: run on the next turn of the event loop when asked (requests in one
 * turn share it), and as a full pass (timeouts, resends) once a second, between start and stop.
 */
export function passLoop(pass: (full: boolean) => void): { schedule(full?: boolean): void; start(): void; stop(): void } {
  let timer: ReturnType<typeof setInterval> | null = null;
  let scheduled: "none" | "partial" | "full" = "none";
  let running = false;
  const schedule = (full = false) => {
    if (!running) return;
    const was = scheduled;
    if (was === "full" || (was === "partial" && !full)) return;
    scheduled = full ? "full" : "partial";
    if (was !== "none") return; // already queued: it runs as the larger pass
    setImmediate(() => {
      const which = scheduled;
      scheduled = "none";
      if (running) pass(which === "full");
    });
  };
  return {
    schedule,
    start() {
      running = true;
      timer = setInterval(() => schedule(true), TICK_MS);
      timer.unref?.();
      schedule(true);
    },
    stop() {
      running = false;
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}

/** A clock for the report that is the same on every resend (48 bits of the child INTEND's id). */
export const reportClock = (intend: string) => parseInt(intend.slice(0, 12), 16) || 1;

/** The worker's report service: queues a report for each child as it ends, and sends them. */
export function reportService(host: Host, outbox: Outbox): Service {
  const log = host.log.child("syncropel_engine::fanout");
  const dispatch = () => host.find(DISPATCHES);
  const loop = passLoop(() => flush());
  const post = new RecordSender(host.peers, () => host.find(FLEET)?.member.coordinatorUrl); // reports go to the coordinator in batches
  let lastWarn = 0;

  const warn = (msg: string, fields: Record<string, unknown>) => {
    if (Date.now() - lastWarn < WARN_EVERY_MS) return;
    lastWarn = Date.now();
    log.warn(`${msg} (retried with backoff until the coordinator takes it; repeats are logged once a minute)`, fields);
  };

  /** Writes the child's one report into the outbox (a second call for the same child does nothing). */
  async function queue(ref: ChildRef, outcome: JsonObject): Promise<void> {
    if (!outbox.unreported.delete(ref.intend)) return;
    const report = {
      act: "DO",
      actor: host.instanceDid,
      thread: ref.parentThread,
      clock: reportClock(ref.intend),
      body: { topic: CHILD_DONE, parent_record_id: ref.parentRecord, index: ref.index, ...(ref.attempt !== undefined ? { attempt: ref.attempt } : {}), intend: ref.intend, thread: ref.thread, worker: host.instanceDid, cost_usd: 0, ...outcome },
    };
    try {
      await host.write({ act: "DO", thread: ref.thread, body: { [OUTBOX_FIELD]: "queued", intend: ref.intend, report } });
      loop.schedule();
    } catch (err) {
      outbox.unreported.set(ref.intend, ref); // the next trigger (or the next start) queues it again
      log.error("could not queue a fan-out report", { thread: ref.thread, error: (err as Error).message });
    }
  }

  /** The report of a dispatch that ended: from the engine's KNOW fulfilling the child INTEND. */
  const fromFulfil = (ref: ChildRef, fulfil: StoredRecord): JsonObject => {
    const b = fulfil.body;
    return {
      verdict: typeof b.verdict === "string" ? b.verdict : "failed",
      cost_usd: typeof b.cost_usd === "number" ? b.cost_usd : 0,
      wall_time_secs: Math.max(0, fulfil.created_at - ref.at),
      summary: typeof b.summary === "string" ? b.summary : typeof b.reason === "string" ? b.reason : "",
      ...(typeof b.reason === "string" ? { reason: b.reason } : {}),
    };
  };

  const notRun = (ref: ChildRef, verdict: string, reason: string, fix?: string): JsonObject => ({ verdict, wall_time_secs: Math.max(0, Math.floor(host.now() / 1000) - ref.at), summary: reason, reason, ...(fix ? { fix } : {}) });

  /** Why nothing here runs a child, and the fix (README "Fan-out": unrouted). */
  function undispatched(rec: StoredRecord, why: Undispatched): void {
    const ref = outbox.unreported.get(rec.id);
    if (!ref) return;
    if (why === "cancelled") return void queue(ref, notRun(ref, "cancelled", outbox.cancels.get(rec.id) ?? "cancelled"));
    if (why === "frozen") {
      const ns = typeof rec.body.namespace === "string" ? rec.body.namespace : "default";
      return void queue(ref, notRun(ref, "unrouted", `namespace '${ns}' is frozen on this worker`, `spl unkill --namespace ${ns}, then spl task retry <alias> --subtask ${ref.index}`));
    }
    const name = host.find(FLEET)?.member.name ?? host.instanceDid;
    void queue(
      ref,
      notRun(
        ref,
        "unrouted",
        `no routing rule on ${name} matches it, and no actor with a dispatch target is trusted in its domain`,
        `add a rule on ${name}: SYNCROPEL_HOME=${host.paths.home} spl config add-rule --name fanout-children --expression 'has(record.body.fanout)' --target ${DEFAULT_CHILD_TARGET} — then spl task retry <alias> --subtask ${ref.index}`,
      ),
    );
  }

  /** Ends a child here: a queued one is not dispatched, a running one is stopped; either is reported cancelled. */
  function cancel(intend: string, reason: string): void {
    const ref = outbox.unreported.get(intend);
    const d = dispatch();
    if (!ref || !d) return;
    d.cancel(intend, reason);
    if (!d.handled(intend)) void queue(ref, notRun(ref, "cancelled", reason));
  }

  /** After a restart: children that ended (or never started) while no report was queued. */
  function recover(): void {
    for (const ref of [...outbox.unreported.values()]) {
      const page = host.store.list({ thread: ref.thread, limit: 1000 });
      const fulfil = page.data.find((r) => r.act === "KNOW" && r.actor === ENGINE_ACTOR && r.body.fulfills === ref.intend);
      if (fulfil) void queue(ref, fromFulfil(ref, fulfil));
      else if (outbox.cancels.has(ref.intend)) cancel(ref.intend, outbox.cancels.get(ref.intend)!);
      else if (!dispatch()?.handled(ref.intend)) void queue(ref, notRun(ref, "failed", "the worker restarted before it dispatched this child", `spl task retry <alias> --subtask ${ref.index}`));
      // handled but unfinished: the reconciler closes it as failed (restarted) at start, and that KNOW reports it
    }
  }

  async function send(e: Entry): Promise<void> {
    // The coordinator now (an elected one may be this member itself: it takes its own report like any other).
    const coordinator = host.find(FLEET)?.member;
    if (!coordinator?.coordinatorUrl) return warn("a fan-out report waits: this member has no coordinator ([fleet] coordinator_url, or none elected now)", { thread: e.report.thread });
    e.sending = true;
    try {
      // With [fleet.etcd] the report is first kept where the next coordinator reads it (lib/failover).
      await host.find(FANOUT_LEDGER)?.report(e.report);
      // Each failed try waits longer, and gives a slow link longer to carry the report.
      const r = await post.send("the coordinator", e.report, answerTimeoutMs(e.tries));
      const code = typeof r.body?.code === "string" ? r.body.code : "";
      if (r.status === 200 || r.status === 201) await host.write({ act: "DO", thread: String((e.report.body as JsonObject).thread), body: { [OUTBOX_FIELD]: "acked", entry: e.id, intend: e.intend } });
      else if (refusedForGood(r.status, code)) {
        const why = `${r.status} ${code}: ${typeof r.body?.message === "string" ? r.body.message : "refused"}`;
        log.error("the coordinator refused a fan-out report for good; it is not sent again", { thread: e.report.thread, intend: e.intend, answer: why });
        await host.write({ act: "DO", thread: String((e.report.body as JsonObject).thread), body: { [OUTBOX_FIELD]: "refused", entry: e.id, intend: e.intend, reason: why } });
      } else retryLater(e, `the coordinator answered ${r.status} ${code}`.trim());
    } catch (err) {
      retryLater(e, (err as Error).message);
    } finally {
      e.sending = false;
    }
  }

  function retryLater(e: Entry, why: string): void {
    e.tries++;
    e.nextAt = Date.now() + backoffMs(e.tries, RETRY_CAP_MS);
    warn(`a fan-out report did not reach the coordinator: ${why}`, { thread: e.report.thread, tries: e.tries });
  }

  function flush(): void {
    const now = Date.now();
    for (const e of outbox.waiting.values()) if (!e.sending && e.nextAt <= now) void send(e);
  }

  host.find(DISPATCHES)?.onUndispatched(undispatched);
  return {
    name: "fanout-reports",
    start() {
      recover();
      loop.start();
    },
    stop() {
      loop.stop();
      post.stop();
    },
    afterCommit(created) {
      for (const r of created) {
        const b = r.body;
        if (r.act === "INTEND" && outbox.cancels.has(r.id)) {
          cancel(r.id, outbox.cancels.get(r.id)!); // its cancel came first
        } else if (r.act === "KNOW" && r.actor === ENGINE_ACTOR && typeof b.fulfills === "string") {
          const ref = outbox.unreported.get(b.fulfills);
          if (ref) void queue(ref, fromFulfil(ref, r));
        } else if (b.topic === CHILD_CANCEL && typeof b.cancel_intend === "string") {
          cancel(b.cancel_intend, str(b.reason) || "cancelled by the coordinator");
        } else if (r.thread === FLEET_CONTROL_THREAD && host.find(KILL_SWITCH)?.emergency.active) {
          for (const intend of [...outbox.unreported.keys()]) cancel(intend, "emergency stop (spl kill --emergency)");
        }
      }
    },
  };
}

// The coordinator's fan-out service (README "Fan-out"). For each fan-out it holds: spawn the children
// whose dependencies accepted — each send is an attempt, recorded (DO fanout_spawned) before its
// child INTEND goes to the worker, and sent again with growing timeouts and capped, jittered
// backoff until the worker takes it — resolve attempts that never reported as `timeout`, write the
// join's KNOW once the predicate holds (the only record that fulfils the parent INTEND), and close
// the join `cancelled` on `spl task fan-out cancel` or an emergency stop, telling the workers of
// attempts still out to stop them (as after a retry supersedes one). Nothing it keeps in memory
// outlives a restart without a record behind it: pending sends and cancels are re-derived from
// the fold and sent again once (the worker holds each as one content-addressed record).
import type { Host, Service } from "../capability";
import { compileBool, scopeWith, toCelVars } from "../engine/cel";
import { ENGINE_ACTOR } from "../instance";
import { backoffMs } from "../peer";
import { prepareRecord, sealRecord } from "../records/envelope";
import type { JsonObject } from "../records/types";
import { FANOUT_LEDGER, type FleetView, KILL_SWITCH } from "../fleet/contract";
import { type Attempt, CHILD_DONE, type Child, currentAttempt, type Fanout, type FanoutTable, JOIN_COMPLETE, SPAWNED } from "./fold";
import { CHILD_CANCEL, passLoop } from "./outbox";
import { answerTimeoutMs, RecordSender, RETRY_CAP_MS } from "./sender";
import { closesEarly, joinExpression, pickWorker, REPORT_GRACE_SECS } from "./spec";

/**
 * Answers to a send that no resend changes: the attempt ends `failed` with the worker's reason.
 * Not a stale epoch (409 STALE_EPOCH): that says this coordinator may have been replaced, not
 * that the child is wrong.
 */
const refusedForGood = (r: { status: number; body: any }) => [400, 409, 413, 422].includes(r.status) && r.body?.code !== "STALE_EPOCH";

/** How a send to a worker is going (GET /v1/fanouts shows it per attempt). */
export interface SendState {
  state: "sending" | "delivered";
  tries: number;
  next_at: number | null;
  error: string | null;
}

interface Send extends SendState {
  busy: boolean;
}

/** `fleet` is read when first needed: the fleet capability comes after this one in the list. */
export function fanoutService(host: Host, fleet: () => FleetView, table: FanoutTable): Service & { sendState(intend: string): SendState | null } {
  const log = host.log.child("syncropel_engine::fanout");
  const post = new RecordSender(host.peers, (did) => endpointOf(did)); // children and cancels go to each worker in batches
  const busy = new Set<string>(); // parent:index (spawning, timing out) or parent (joining) with a write in flight
  const sends = new Map<string, Send>(); // current attempts, by child INTEND id
  const cancels = new Map<string, Send>(); // attempts to stop on their worker, by child INTEND id
  const toStop = new Set<Fanout>(); // cancelled fan-outs with attempts still out
  const loop = passLoop((full) => pass(full));
  const schedule = () => loop.schedule();

  const write = (body: JsonObject, thread: string, act: "DO" | "KNOW", parents?: string[]) => host.write({ act, thread, body, ...(parents ? { parents } : {}) });
  const killSwitch = () => host.find(KILL_SWITCH);
  const mayStart = (f: Fanout) => killSwitch()?.mayStartWork(f.namespace) ?? true;

  /** The members and their status, read once per turn of the event loop (a pass spawns and sends many). */
  let members: ReturnType<FleetView["members"]> | null = null;
  const membersNow = () => {
    if (!members) {
      members = fleet().members();
      setImmediate(() => (members = null));
    }
    return members;
  };

  /** Picks whose fanout_spawned is not yet committed (one pass spawns many before any commits). */
  const picking = new Map<string, number>();
  /** Attempts out per worker (spawned, not reported), counted once per change of the table, not per pick. */
  let out: { version: number; byWorker: Map<string, number> } | null = null;
  const spawnedOut = () => {
    if (out?.version !== table.version) {
      const byWorker = new Map<string, number>();
      for (const f of table.pending()) for (const c of f.children) if (c.spawned && !c.result) byWorker.set(c.spawned.worker, (byWorker.get(c.spawned.worker) ?? 0) + 1);
      out = { version: table.version, byWorker };
    }
    return out.byWorker;
  };
  const inFlight = (did: string) => (picking.get(did) ?? 0) + (spawnedOut().get(did) ?? 0);

  /**
   * The child INTEND of attempt n (a new record for every attempt: clock = n). It names the
   * coordinator that claimed the attempt, so a coordinator that resumes it sends the same record.
   */
  const childIntend = (f: Fanout, c: Child, n: number, coordinatorUrl: string) => ({
    act: "INTEND",
    actor: f.parent.actor,
    thread: c.thread,
    clock: n,
    body: {
      goal: c.goal,
      text: c.goal.length > 200 ? `${c.goal.slice(0, 200)}…` : c.goal, // what thread listings show; the goal is not sent twice
      namespace: f.namespace,
      timeout_secs: c.timeout_secs,
      ...(c.budget_usd !== null ? { budget_usd: c.budget_usd } : {}),
      ...(c.hint ? { hint: c.hint } : {}),
      fanout: { parent_thread: f.parent.thread, parent_record: f.parent.id, index: c.index, attempt: n, coordinator_url: coordinatorUrl },
    },
  });

  const guarded = async (key: string, work: () => Promise<void>) => {
    if (busy.has(key)) return;
    busy.add(key);
    try {
      await work();
    } finally {
      busy.delete(key);
    }
  };

  /** A new attempt: recorded first (so a restart sends it again), then sent. */
  const spawn = (f: Fanout, c: Child) =>
    guarded(`${f.parent.id}:${c.index}`, async () => {
      const members = membersNow();
      const n = c.attempts.length + 1;
      // A retried child is re-resolved to the least-loaded live worker (its first may be gone).
      const pick = pickWorker(c.retries ? "least-loaded-worker" : c.target, members, `${f.parent.id}:${c.index}:${c.retries}`, inFlight);
      if (typeof pick === "string") return log.warn("fan-out child not spawned", { parent: f.parent.id, index: c.index, reason: pick });
      // With [fleet.etcd] the attempt is claimed there first (lib/failover): one worker per attempt, whichever coordinator resumes it.
      const ledger = host.find(FANOUT_LEDGER);
      const claimed = ledger ? await ledger.claim(f.parent, c.index, n, { did: pick.did, name: pick.name, coordinatorUrl: fleet().member.endpoint }) : { did: pick.did, name: pick.name, coordinatorUrl: fleet().member.endpoint };
      if (!claimed) return;
      const picked = { ...pick, did: claimed.did, name: claimed.name };
      picking.set(picked.did, (picking.get(picked.did) ?? 0) + 1);
      try {
        const intend = sealRecord(prepareRecord(childIntend(f, c, n, claimed.coordinatorUrl)));
        await write({ topic: SPAWNED, parent_record_id: f.parent.id, index: c.index, attempt: n, intend, thread: c.thread, worker: picked.did, worker_name: picked.name, children: [c.thread], coordinator_url: claimed.coordinatorUrl }, f.parent.thread, "DO", [f.parent.id]);
        log.info("fan-out child spawned", { parent: f.parent.id, index: c.index, attempt: n, thread: c.thread, worker: picked.name });
      } catch (err) {
        log.warn("fan-out child not spawned; tried again on the next pass", { parent: f.parent.id, index: c.index, error: (err as Error).message });
      } finally {
        picking.set(picked.did, picking.get(picked.did)! - 1);
      }
      const a = currentAttempt(c);
      if (a) await deliver(f, c, a);
    });

  const stateOf = (map: Map<string, Send>, intend: string) => {
    let s = map.get(intend);
    if (!s) map.set(intend, (s = { state: "sending", tries: 0, next_at: null, error: null, busy: false }));
    return s;
  };
  const due = (s: Send) => !s.busy && s.state === "sending" && (s.next_at === null || s.next_at <= Date.now());
  const failedTry = (s: Send, error: string) => {
    s.tries++;
    s.error = error;
    s.next_at = Date.now() + backoffMs(s.tries, RETRY_CAP_MS);
  };
  const endpointOf = (did: string) => membersNow().find((m) => m.did === did)?.endpoint;

  /** One try of sending an attempt's child INTEND; the timeout grows with the payload and with each failed try. */
  async function deliver(f: Fanout, c: Child, a: Attempt): Promise<void> {
    const s = stateOf(sends, a.intend);
    if (!due(s)) return;
    const endpoint = endpointOf(a.worker);
    if (!endpoint) return failedTry(s, `${a.name || a.worker} is not in the registry`);
    s.busy = true;
    try {
      const r = await post.send(a.worker, childIntend(f, c, a.n, a.coordinatorUrl ?? fleet().member.endpoint), answerTimeoutMs(s.tries));
      if (r.status === 200 || r.status === 201) {
        Object.assign(s, { state: "delivered", next_at: null, error: null });
        return;
      }
      const why = `${a.name || a.worker} answered ${r.status}${r.body?.code ? ` ${r.body.code}` : ""}: ${r.body?.message ?? "see its log"}`;
      if (refusedForGood(r)) {
        Object.assign(s, { state: "delivered", next_at: null, error: why });
        await report(f, c, a, "failed", `the worker refused the child: ${why}`);
      } else failedTry(s, why);
    } catch (err) {
      failedTry(s, (err as Error).message);
    } finally {
      s.busy = false;
    }
  }

  /** Tells an attempt's worker to stop it (LEARN on the child's thread; clock = attempt, so a resend is a duplicate). */
  async function stop(f: Fanout, c: Child, a: Attempt, reason: string): Promise<void> {
    const s = stateOf(cancels, a.intend);
    if (!due(s)) return;
    const endpoint = endpointOf(a.worker);
    if (!endpoint) return failedTry(s, `${a.name || a.worker} is not in the registry`);
    s.busy = true;
    try {
      const rec = { act: "LEARN", actor: host.instanceDid, thread: c.thread, clock: a.n, body: { topic: CHILD_CANCEL, cancel_intend: a.intend, fanout_parent: f.parent.id, reason } };
      const r = await post.send(a.worker, rec, 5000);
      if (r.status === 200 || r.status === 201 || refusedForGood(r)) Object.assign(s, { state: "delivered", next_at: null, error: null });
      else failedTry(s, `${a.name || a.worker} answered ${r.status}`);
    } catch (err) {
      failedTry(s, (err as Error).message);
    } finally {
      s.busy = false;
    }
  }

  /** The engine's own report of an attempt (timeout, or the worker refused the child). */
  const report = (f: Fanout, c: Child, a: Attempt, verdict: string, summary: string) =>
    write({ topic: CHILD_DONE, parent_record_id: f.parent.id, index: c.index, attempt: a.n, intend: a.intend, thread: c.thread, worker: a.worker, verdict, cost_usd: 0, wall_time_secs: Math.max(0, Math.floor(host.now() / 1000) - a.at), summary, reason: summary }, f.parent.thread, "DO", [f.parent.id]);

  const resolveTimeout = (f: Fanout, c: Child, a: Attempt) => guarded(`${f.parent.id}:${c.index}`, () => report(f, c, a, "timeout", `no report within ${c.timeout_secs} s + ${REPORT_GRACE_SECS} s`).then(() => {}));

  /** The join's KNOW, the one record that fulfils the parent INTEND. */
  const close = (f: Fanout, verdict: "accept" | "cancelled", summary: string) =>
    guarded(f.parent.id, async () => {
      if (f.complete) return;
      await write({ topic: JOIN_COMPLETE, fulfills: f.parent.id, parent_record_id: f.parent.id, verdict, join: f.join, summary }, f.parent.thread, "KNOW", [f.parent.id]);
      log.info(verdict === "accept" ? "fan-out join complete" : "fan-out cancelled", { parent: f.parent.id, summary });
      for (const c of f.children) for (const a of c.attempts) sends.delete(a.intend);
      if (verdict === "cancelled") toStop.add(f);
      else for (const c of f.children) for (const a of c.attempts) cancels.delete(a.intend); // a joined fan-out stops nothing
    });

  /**
   * Whether the join holds now. `all` and CEL wait for every report; one that never holds leaves
   * the fan-out open, so `spl task retry` can still send a failed child again.
   */
  function holds(f: Fanout): boolean {
    if (!closesEarly(f.join) && f.children.some((c) => !c.result)) return false;
    const reported = f.children.filter((c) => c.result).map((c) => c.result!);
    try {
      return compileBool("join", joinExpression(f.join))(toCelVars({ children: reported as unknown as Record<string, unknown>[], parent: f.parent }), scopeWith(ENGINE_ACTOR, Date.now() / 1000));
    } catch (err) {
      log.warn("fan-out join could not be evaluated", { parent: f.parent.id, error: (err as Error).message });
      return false;
    }
  }

  /** Attempts out on a worker that no report settles any more: superseded, or their fan-out cancelled. */
  function stale(f: Fanout): Array<[Child, Attempt]> {
    const cancelled = f.complete?.verdict === "cancelled";
    const out: Array<[Child, Attempt]> = [];
    for (const c of f.children) if (cancelled || c.retries) for (const a of c.attempts) if (!a.result && (a.superseded || cancelled)) out.push([c, a]);
    return out;
  }

  const warned = (p: Promise<unknown>, what: string, parent: string) => void p.catch((err) => log.error(`could not ${what}`, { parent, error: (err as Error).message }));

  /**
   * One look at every fan-out this coordinator holds. After a commit (a report, a spawn) only what
   * it can change: the join, cancels, children now ready to spawn. The full pass, once a second,
   * also resolves timeouts, sends again what did not land, and stops superseded attempts.
   */
  function pass(full: boolean): void {
    // Only the coordinator spawns, times out and joins: not a worker, nor one deposed or stepped down.
    const fl = fleet();
    if (fl.member.role !== "plain" && !fl.coordinating()) return;
    const now = Date.now() / 1000;
    const emergency = killSwitch()?.emergency;
    for (const f of table.pending()) {
      if (f.cancel || emergency?.active) {
        const why = f.cancel ? `cancelled by ${f.cancel.by}: ${f.cancel.reason}` : `emergency stop: ${emergency!.reason ?? "no reason given"}`;
        warned(close(f, "cancelled", why).then(schedule), "cancel the fan-out", f.parent.id);
        continue;
      }
      if (holds(f)) {
        const accepted = f.children.filter((c) => c.result?.verdict === "accept").length;
        warned(close(f, "accept", `${accepted} of ${f.children.length} subtasks accepted`), "write the join", f.parent.id);
        continue;
      }
      const may = mayStart(f);
      for (const c of f.children) {
        if (c.result) continue;
        const a = currentAttempt(c);
        if (!a) {
          if (may && c.depends_on.every((d) => f.children[d]?.result?.verdict === "accept")) void spawn(f, c);
        } else if (full) {
          if (now - a.at > c.timeout_secs + REPORT_GRACE_SECS) warned(resolveTimeout(f, c, a), "resolve a timed-out child", f.parent.id);
          else if (may && sends.get(a.intend)?.state !== "delivered") void deliver(f, c, a);
        }
      }
      if (full) {
        for (const [c, a] of stale(f)) {
          sends.delete(a.intend);
          void stop(f, c, a, `attempt ${a.n} was superseded by a retry`);
        }
      }
    }
    if (!full) return;
    for (const f of toStop) {
      let out = 0;
      for (const [c, a] of stale(f)) {
        if (cancels.get(a.intend)?.state !== "delivered") out++;
        void stop(f, c, a, "the fan-out was cancelled");
      }
      if (!out) {
        toStop.delete(f);
        for (const c of f.children) for (const a of c.attempts) cancels.delete(a.intend);
      }
    }
  }

  return {
    name: "fanout",
    sendState(intend) {
      const s = sends.get(intend);
      return s ? { state: s.state, tries: s.tries, next_at: s.next_at === null ? null : Math.ceil(s.next_at / 1000), error: s.error } : null;
    },
    start() {
      // Cancels a stop cut short are sent again (a worker holds each as one record).
      for (const f of table.all()) if (f.complete?.verdict === "cancelled" && stale(f).length) toStop.add(f);
      loop.start();
    },
    stop() {
      loop.stop();
      post.stop();
    },
    afterCommit(created) {
      let relevant = false;
      for (const r of created) {
        const b = r.body;
        if (b.subtasks === undefined && b.parent_record_id == null) continue;
        relevant = true;
        if (b.topic === CHILD_DONE && typeof b.intend === "string") sends.delete(b.intend); // reported: nothing left to send
      }
      if (relevant) schedule();
    },
  };
}

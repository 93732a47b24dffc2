// The fan-out service (README "Fan-out"). On the member that holds a fan-out (the coordinator): spawn the
// children whose dependencies accepted onto their workers (the child INTEND is content-addressed,
// so a re-spawn after a restart or a retry lands on the same record), resolve the ones that never
// reported as `timeout`, and write the join's KNOW once the predicate holds. On a worker: when the
// reconciler fulfils a child INTEND, report it to the coordinator's parent thread.
import type { Host, Service } from "../capability";
import { compileBool, scopeWith, toCelVars } from "../engine/cel";
import { ENGINE_ACTOR } from "../instance";
import type { PeerClient } from "../peer";
import type { JsonObject, StoredRecord } from "../records/types";
import type { FleetView } from "../fleet/contract";
import { CHILD_DONE, type Child, type Fanout, type FanoutTable, JOIN_COMPLETE, SPAWNED } from "./fold";
import { closesEarly, joinExpression, pickWorker, REPORT_GRACE_SECS } from "./spec";

const TICK_MS = 1000;
const REPORT_ATTEMPTS = 30;

/** The body of a child's report, from the KNOW that fulfilled its INTEND on the worker. */
function childDone(parentRecord: string, index: number, thread: string, worker: string, fulfil: Pick<StoredRecord, "body" | "created_at">, startedAt: number): JsonObject {
  const b = fulfil.body;
  return {
    topic: CHILD_DONE,
    parent_record_id: parentRecord,
    index,
    thread,
    worker,
    verdict: typeof b.verdict === "string" ? b.verdict : "failed",
    cost_usd: typeof b.cost_usd === "number" ? b.cost_usd : 0,
    wall_time_secs: Math.max(0, fulfil.created_at - startedAt),
    summary: typeof b.summary === "string" ? b.summary : typeof b.reason === "string" ? b.reason : "",
  };
}

/** The engine's KNOW fulfilling `intend` on a worker's child thread, if the worker has one. */
async function fulfilment(peers: PeerClient, endpoint: string, thread: string, intend: string): Promise<StoredRecord | null> {
  const page = await peers.call(endpoint, "GET", `/v1/threads/${encodeURIComponent(thread)}/records`);
  return (page.data as StoredRecord[]).find((r) => r.act === "KNOW" && r.actor === ENGINE_ACTOR && r.body.fulfills === intend) ?? null;
}

/** `fleet` is read when first needed: the fleet capability comes after this one in the list. */
export function fanoutService(host: Host, fleet: () => FleetView, table: FanoutTable): Service {
  const log = host.log.child("syncropel_engine::fanout");
  const { peers } = host;
  const busy = new Set<string>(); // parent:index (spawning) or parent (joining) with a write in flight
  let timer: ReturnType<typeof setInterval> | null = null;
  let scheduled = false;
  let running = false;

  const write = (body: JsonObject, thread: string, act: "DO" | "KNOW", parents?: string[]) => host.write({ act, thread, body, ...(parents ? { parents } : {}) });

  /** Picks whose fanout_spawned is not yet committed (one pass spawns many before any commits). */
  const picking = new Map<string, number>();
  const inFlight = (did: string) => {
    let n = picking.get(did) ?? 0;
    for (const f of table.pending()) for (const c of f.children) if (c.spawned?.worker === did && !c.result) n++;
    return n;
  };

  async function spawn(f: Fanout, c: Child): Promise<void> {
    const key = `${f.parent.id}:${c.index}`;
    if (busy.has(key)) return;
    busy.add(key);
    let reserved: string | null = null;
    try {
      const members = fleet().members().map((m) => ({ ...m }));
      // A retried child is re-resolved to the least-loaded live worker (its first may be gone).
      const picked = pickWorker(c.retries ? "least-loaded-worker" : c.target, members, `${key}:${c.retries}`, inFlight);
      if (typeof picked === "string") return log.warn("fan-out child not spawned", { parent: f.parent.id, index: c.index, reason: picked });
      picking.set(picked.did, (picking.get(picked.did) ?? 0) + 1);
      reserved = picked.did;
      const intend = {
        act: "INTEND",
        actor: f.parent.actor,
        thread: c.thread,
        clock: 1, // fixed, so the same child is the same record on every attempt
        body: {
          goal: c.goal,
          text: c.goal,
          namespace: f.namespace,
          timeout_secs: c.timeout_secs,
          ...(c.budget_usd !== null ? { budget_usd: c.budget_usd } : {}),
          fanout: { parent_thread: f.parent.thread, parent_record: f.parent.id, index: c.index, coordinator_url: fleet().member.endpoint },
        },
      };
      const answer = await peers.call(picked.endpoint, "POST", "/v1/records", intend);
      // The worker already holds this child (a retry onto it): its earlier result is the report.
      const earlier = answer.duplicate ? await fulfilment(peers, picked.endpoint, c.thread, answer.id) : null;
      await write({ topic: SPAWNED, parent_record_id: f.parent.id, index: c.index, thread: c.thread, worker: picked.did, worker_name: picked.name, children: [c.thread] }, f.parent.thread, "DO", [f.parent.id]);
      log.info("fan-out child spawned", { parent: f.parent.id, index: c.index, thread: c.thread, worker: picked.name, duplicate: answer.duplicate === true });
      if (earlier) await write(childDone(f.parent.id, c.index, c.thread, picked.did, earlier, Number(answer.created_at)), f.parent.thread, "DO", [f.parent.id]);
    } catch (err) {
      log.warn("fan-out child not spawned; retried on the next pass", { parent: f.parent.id, index: c.index, error: (err as Error).message });
    } finally {
      if (reserved) picking.set(reserved, picking.get(reserved)! - 1);
      busy.delete(key);
    }
  }

  async function resolveTimeout(f: Fanout, c: Child): Promise<void> {
    const key = `${f.parent.id}:${c.index}`;
    if (busy.has(key)) return;
    busy.add(key);
    try {
      await write({ topic: CHILD_DONE, parent_record_id: f.parent.id, index: c.index, thread: c.thread, worker: c.spawned!.worker, verdict: "timeout", cost_usd: 0, wall_time_secs: Math.floor(Date.now() / 1000) - c.spawned!.at, summary: `no report within ${c.timeout_secs} s + ${REPORT_GRACE_SECS} s` }, f.parent.thread, "DO", [f.parent.id]);
    } finally {
      busy.delete(key);
    }
  }

  async function join(f: Fanout): Promise<void> {
    if (busy.has(f.parent.id)) return;
    busy.add(f.parent.id);
    try {
      const accepted = f.children.filter((c) => c.result?.verdict === "accept").length;
      await write({ topic: JOIN_COMPLETE, fulfills: f.parent.id, parent_record_id: f.parent.id, verdict: "accept", join: f.join, summary: `${accepted} of ${f.children.length} subtasks accepted` }, f.parent.thread, "KNOW", [f.parent.id]);
      log.info("fan-out join complete", { parent: f.parent.id });
    } finally {
      busy.delete(f.parent.id);
    }
  }

  /**
   * Whether the join holds now. `all` and CEL wait for every report; one that never holds leaves
   * the fan-out open, so `spl task retry` can still send a failed child again.
   */
  function holds(f: Fanout): boolean {
    const reported = f.children.filter((c) => c.result).map((c) => c.result!);
    if (reported.length < f.children.length && !closesEarly(f.join)) return false;
    try {
      return compileBool("join", joinExpression(f.join))(toCelVars({ children: reported as unknown as Record<string, unknown>[], parent: f.parent }), scopeWith(ENGINE_ACTOR, Date.now() / 1000));
    } catch (err) {
      log.warn("fan-out join could not be evaluated", { parent: f.parent.id, error: (err as Error).message });
      return false;
    }
  }

  function pass(): void {
    scheduled = false;
    if (!running) return;
    const now = Date.now() / 1000;
    for (const f of table.pending()) {
      if (holds(f)) {
        void join(f).catch((err) => log.error("could not write the join", { parent: f.parent.id, error: (err as Error).message }));
        continue;
      }
      for (const c of f.children) {
        if (c.result) continue;
        if (c.spawned) {
          if (now - c.spawned.at > c.timeout_secs + REPORT_GRACE_SECS) void resolveTimeout(f, c).catch((err) => log.error("could not resolve a timed-out child", { error: (err as Error).message }));
        } else if (c.depends_on.every((d) => f.children[d]?.result?.verdict === "accept")) void spawn(f, c);
      }
    }
  }

  const schedule = () => {
    if (scheduled || !running) return;
    scheduled = true;
    setImmediate(pass);
  };

  async function report(intend: StoredRecord, fulfil: StoredRecord): Promise<void> {
    const fo = intend.body.fanout as JsonObject;
    const body = childDone(String(fo.parent_record), Number(fo.index), intend.thread, host.instanceDid, fulfil, intend.created_at);
    const record = { act: "DO", actor: host.instanceDid, thread: fo.parent_thread, body } as JsonObject;
    for (let attempt = 1; running && attempt <= REPORT_ATTEMPTS; attempt++) {
      try {
        return void (await peers.call(String(fo.coordinator_url), "POST", "/v1/records", record));
      } catch (err) {
        if (attempt === REPORT_ATTEMPTS) log.error("could not report a fan-out child to its coordinator", { thread: intend.thread, error: (err as Error).message });
        else await Bun.sleep(TICK_MS);
      }
    }
  }

  return {
    name: "fanout",
    start() {
      running = true;
      timer = setInterval(schedule, TICK_MS);
      timer.unref?.();
      schedule();
    },
    stop() {
      running = false;
      if (timer) clearInterval(timer);
      timer = null;
    },
    afterCommit(created) {
      let relevant = false;
      for (const r of created) {
        const b = r.body;
        if (r.act === "KNOW" && r.actor === ENGINE_ACTOR && typeof b.fulfills === "string" && b.topic !== JOIN_COMPLETE) {
          const intend = host.store.get(b.fulfills);
          if (intend?.body.fanout && typeof intend.body.fanout === "object") void report(intend, r);
        }
        if (Array.isArray(b.subtasks) || b.parent_record_id != null) relevant = true;
      }
      if (relevant) schedule();
    },
  };
}

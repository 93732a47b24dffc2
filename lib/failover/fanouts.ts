// Fan-outs outlive their coordinator (README "Automatic failover with etcd": what happens when).
// While a fan-out is pending, etcd holds what the next coordinator needs to resume it, under
// P/fanouts/<parent>/ (keys.ts):
//   - its records: the parent INTEND, each attempt (DO fanout_spawned), every report, retry and
//     cancel — the coordinator's own writes fenced by its epoch (a transaction that compares the
//     coordinator key's create revision), a worker's report put by the worker itself before it
//     sends it, so a report the dead coordinator acknowledged but never passed on is not lost;
//   - a claim per attempt, made before the attempt is recorded: the worker it goes to and the
//     coordinator URL its child INTEND names. A claim is created once, so attempt n of a child
//     goes to one worker as one record, whichever coordinator resumes it (no child sent twice);
//   - once joined, the join record alone, on a week-long lease: a member that held the fan-out
//     pending and is elected later learns it was joined.
// A member taking office brings every pending fan-out's records into its store (as the daemon's
// own writes: etcd is trusted like the coordinator) before it marks its key ready, so reports
// the workers send it find their fan-out; then it watches P/fanouts/ for reports put directly.
import type { Host } from "../capability";
import { EtcdError, rangeOf, type EtcdClient, type KeyValue } from "../etcd/client";
import { FANOUTS, type FanoutLedger } from "../fleet/contract";
import { ENGINE_ACTOR } from "../instance";
import { prepareRecord, sealRecord } from "../records/envelope";
import type { StoredRecord } from "../records/types";
import { toWire } from "../records/wire";
import { fanoutEntry, type Keys, parseJson } from "./keys";

/** How long a joined fan-out's join record stays in etcd. */
const TOMBSTONE_SECS = 7 * 86_400;
/** Records larger than this stay out of etcd (its default request limit is 1.5 MiB). */
const MAX_VALUE_BYTES = 1024 * 1024;
const JOIN_COMPLETE = "fanout_join_complete";
const CHILD_DONE = "fanout_child_done";

const isParent = (r: { act: string; body: Record<string, unknown> }) => r.act === "INTEND" && Array.isArray(r.body.subtasks);
const parentOf = (r: { act: string; id?: string; body: Record<string, unknown> }) => (isParent(r) ? r.id! : typeof r.body.parent_record_id === "string" ? r.body.parent_record_id : null);
/** A worker's report: the second pass of an import (it names an attempt the first pass records). */
const isWorkerReport = (w: { actor: string; body: Record<string, unknown> }) => w.body.topic === CHILD_DONE && w.actor !== ENGINE_ACTOR;

type Wire = ReturnType<typeof toWire>;

export class FanoutState implements FanoutLedger {
  private readonly log;
  private readonly k: Keys;
  /** Parents etcd holds (mirrored or seen), and the record ids it holds. */
  private readonly parents = new Set<string>();
  private readonly known = new Set<string>();
  /** The ids in `known`, by parent: forgotten once the fan-out joins (etcd then holds only its join). */
  private readonly knownOf = new Map<string, string[]>();
  /** The coordinator's fan-out records not yet in etcd, in commit order. */
  private queue: StoredRecord[] = [];
  private draining = false;
  /** A worker's reports etcd did not take when it was asked (put again when it answers). */
  private readonly reports = new Map<string, Record<string, unknown>>();
  private watchAbort: AbortController | null = null;
  private watchFrom = 0;
  private tombstone: { id: string; until: number } | null = null;

  constructor(
    private readonly o: {
      host: Host;
      etcd: EtcdClient;
      keys: Keys;
      /** The epoch this member coordinates at now (its lease fresh), else null. */
      epoch(): number | null;
    },
  ) {
    this.log = o.host.log.child("syncropel_engine::fanout_state");
    this.k = o.keys;
  }

  private fence(epoch: number) {
    return { key: this.k.coordinator, target: "CREATE" as const, createRevision: epoch };
  }

  /** Puts a record's wire JSON at `key` if absent, fenced by `epoch` when given; whether it is there now (false: not the coordinator). */
  private async putOnce(key: string, value: string, epoch: number | null): Promise<boolean> {
    const r = await this.o.etcd.txn([...(epoch !== null ? [this.fence(epoch)] : []), { key, target: "CREATE", createRevision: 0 }], [{ put: { key, value } }], [{ range: { key: this.k.coordinator } }]);
    if (r.succeeded) return true;
    return epoch === null || rangeOf(r.responses[0])[0]?.createRevision === epoch;
  }

  private async ensureParent(parent: StoredRecord, epoch: number): Promise<boolean> {
    if (this.parents.has(parent.id)) return true;
    const value = JSON.stringify(toWire(parent));
    if (value.length > MAX_VALUE_BYTES) {
      this.log.warn("a fan-out parent is too large for etcd: another coordinator cannot resume it", { parent: parent.id, bytes: value.length });
      return true;
    }
    if (!(await this.putOnce(this.k.record(parent.id, parent.id), value, epoch))) return false;
    this.parents.add(parent.id);
    this.remember(parent.id, parent.id);
    return true;
  }

  // ---- the fan-out service's side (FanoutLedger) -----------------------------------------------

  async claim(parent: StoredRecord, index: number, n: number, pick: { did: string; name: string; coordinatorUrl: string }) {
    const epoch = this.o.epoch();
    if (epoch === null) return null;
    try {
      if (!(await this.ensureParent(parent, epoch))) return null;
      const key = this.k.claim(parent.id, index, n);
      const value = JSON.stringify({ worker: pick.did, name: pick.name, coordinator_url: pick.coordinatorUrl, epoch });
      const r = await this.o.etcd.txn([this.fence(epoch), { key, target: "CREATE", createRevision: 0 }], [{ put: { key, value } }], [{ range: { key } }, { range: { key: this.k.coordinator } }]);
      if (r.succeeded) return pick;
      if (rangeOf(r.responses[1])[0]?.createRevision !== epoch) return null;
      const earlier = parseJson(rangeOf(r.responses[0])[0]?.value ?? "");
      if (!earlier || typeof earlier.worker !== "string") return null;
      this.log.info("resuming an attempt an earlier coordinator claimed", { parent: parent.id, index, attempt: n, worker: earlier.name });
      return { did: earlier.worker, name: String(earlier.name ?? ""), coordinatorUrl: String(earlier.coordinator_url ?? pick.coordinatorUrl) };
    } catch (err) {
      this.log.warn("a fan-out attempt waits: etcd did not answer its claim", { parent: parent.id, index, attempt: n, error: (err as Error).message });
      return null;
    }
  }

  async report(report: Record<string, unknown>): Promise<void> {
    let id: string;
    try {
      id = sealRecord(prepareRecord(report));
    } catch {
      return;
    }
    if (this.known.has(id)) return;
    const parent = String((report.body as Record<string, unknown>)?.parent_record_id ?? "");
    if (!parent) return;
    try {
      await this.o.etcd.txn(
        [
          { key: this.k.record(parent, parent), target: "CREATE", createRevision: 0, result: "GREATER" },
          { key: this.k.record(parent, id), target: "CREATE", createRevision: 0 },
        ],
        [{ put: { key: this.k.record(parent, id), value: JSON.stringify({ ...report, id }) } }],
      );
      this.remember(parent, id); // put, or not wanted (the fan-out is not in etcd, or the report already is)
      this.reports.delete(id);
    } catch (err) {
      if (err instanceof EtcdError) this.reports.set(id, report);
    }
  }

  // ---- the coordinator's side ------------------------------------------------------------------

  /** Fan-out records committed here while this member coordinates go to etcd, in commit order. */
  afterCommit(created: StoredRecord[]): void {
    if (this.o.epoch() === null) return;
    for (const r of created) if (!this.known.has(r.id) && parentOf(r) !== null) this.queue.push(r);
    void this.drain();
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length) {
        const epoch = this.o.epoch();
        if (epoch === null) {
          this.queue = []; // out of office: what was not put is the next coordinator's to redo
          return;
        }
        const r = this.queue[0]!;
        const parentId = parentOf(r)!;
        const parent = parentId === r.id ? r : this.o.host.store.get(parentId);
        if (!parent || !(await this.ensureParent(parent, epoch))) {
          this.queue.shift();
          continue;
        }
        if (r.id !== parent.id) {
          if (!(await this.putOnce(this.k.record(parentId, r.id), JSON.stringify(toWire(r)), epoch))) return void (this.queue = []);
          this.remember(parentId, r.id);
          if (r.act === "KNOW" && r.body.topic === JOIN_COMPLETE) await this.joined(parentId, r, epoch);
        }
        this.queue.shift();
      }
    } catch (err) {
      // etcd does not answer: the queue waits for it (reconnected()).
      this.log.warn("fan-out state waits for etcd", { records: this.queue.length, error: (err as Error).message });
    } finally {
      this.draining = false;
    }
  }

  /** A joined fan-out leaves only its join record behind, for a week. */
  private async joined(parent: string, join: StoredRecord, epoch: number): Promise<void> {
    const now = Date.now() / 1000;
    if (!this.tombstone || this.tombstone.until - now < TOMBSTONE_SECS - 86_400) this.tombstone = { id: (await this.o.etcd.grant(TOMBSTONE_SECS)).id, until: now + TOMBSTONE_SECS };
    await this.o.etcd.txn(
      [this.fence(epoch)],
      [{ put: { key: this.k.join(parent), value: JSON.stringify(toWire(join)), lease: this.tombstone.id } }, { delete: { key: this.k.records(parent), prefix: true } }, { delete: { key: this.k.claims(parent), prefix: true } }],
    );
    this.parents.delete(parent);
    this.forget(parent);
  }

  private remember(parent: string, id: string): void {
    if (this.known.has(id)) return;
    this.known.add(id);
    const ids = this.knownOf.get(parent);
    if (ids) ids.push(id);
    else this.knownOf.set(parent, [id]);
  }

  /** A joined fan-out's ids: a record of it that comes again costs one refused etcd transaction, not memory for ever. */
  private forget(parent: string): void {
    for (const id of this.knownOf.get(parent) ?? []) this.known.delete(id);
    this.knownOf.delete(parent);
  }

  /** Taking office at `epoch`: every pending fan-out's records into this store, before members send reports here. */
  async takeOffice(epoch: number): Promise<void> {
    const { kvs, revision } = await this.o.etcd.list(this.k.fanouts);
    this.watchFrom = revision + 1;
    const byParent = new Map<string, { records: KeyValue[]; join: KeyValue | null }>();
    for (const kv of kvs) {
      const e = fanoutEntry(this.k, kv.key);
      if (!e || e.kind === "a") continue;
      const g = byParent.get(e.parent) ?? { records: [], join: null };
      byParent.set(e.parent, g);
      if (e.kind === "join") g.join = kv;
      else g.records.push(kv);
    }
    let imported = 0;
    for (const [parent, g] of byParent) {
      this.parents.add(parent);
      if (g.join && !this.o.host.store.get(parent)) continue; // joined, and never pending here
      const wires = (g.join ? [g.join] : g.records.sort((a, b) => a.createRevision - b.createRevision)).map((kv) => parseJson(kv.value) as Wire | null).filter((w): w is Wire => w !== null);
      // The parent, then what the coordinators wrote in order, then the workers' reports (a report put
      // by its worker may be older in etcd than the attempt its coordinator recorded after claiming it).
      const ordered = [...wires.filter((w) => w.id === parent), ...wires.filter((w) => w.id !== parent && !isWorkerReport(w)), ...wires.filter((w) => w.id !== parent && isWorkerReport(w))];
      imported += await this.bringIn(ordered);
      if (g.join) {
        this.parents.delete(parent);
        this.forget(parent);
      }
    }
    this.queue = [];
    this.log.info("fan-out state brought in from etcd", { epoch, fanouts: byParent.size, records: imported });
  }

  /** Records from etcd this store does not hold, written as the daemon's own, in order; how many were new. */
  private async bringIn(wires: Wire[]): Promise<number> {
    const fresh = wires.filter((w) => {
      this.remember(parentOf(w) ?? w.id, w.id);
      return !this.o.host.store.get(w.id);
    });
    if (!fresh.length) return 0;
    const results = await this.o.host.submit(fresh.map((w) => prepareRecord(w)));
    results.forEach((r, i) => r.status === "error" && this.log.warn("a fan-out record from etcd was not taken", { record: fresh[i]!.id, error: r.error.message }));
    return results.filter((r) => r.status === "created").length;
  }

  /** In office (epoch) or out of it (null): watch P/fanouts/ for what workers and other members put. */
  office(epoch: number | null): void {
    this.watchAbort?.abort();
    this.watchAbort = null;
    if (epoch === null) return;
    // Fan-outs pending here that etcd has never held (their coordinator died before it put them): this one resumes them.
    for (const p of this.o.host.find(FANOUTS)?.pending() ?? []) {
      const parent = this.o.host.store.get(p.record);
      if (parent && !this.parents.has(p.record)) this.queue.push(parent);
    }
    void this.drain();
    const abort = new AbortController();
    this.watchAbort = abort;
    const take = (kvs: KeyValue[]) => {
      const wires = kvs.filter((kv) => fanoutEntry(this.k, kv.key)?.kind === "r").map((kv) => parseJson(kv.value) as Wire | null);
      void this.bringIn(wires.filter((w): w is Wire => w !== null && !this.known.has(w.id)));
    };
    void (async () => {
      for (let from = this.watchFrom; !abort.signal.aborted; ) {
        try {
          if (!from) {
            // After a compaction or a broken stream: what is there now, then the changes after it.
            const { kvs, revision } = await this.o.etcd.list(this.k.fanouts);
            take(kvs);
            from = revision + 1;
          }
          const last = await this.o.etcd.watch(this.k.fanouts, { prefix: true, fromRevision: from, signal: abort.signal }, (events) => take(events.filter((e) => e.type === "PUT").map((e) => e.kv)));
          from = Math.max(from, last + 1);
        } catch {
          from = 0;
          if (!abort.signal.aborted) await Bun.sleep(1000);
        }
        if (!abort.signal.aborted) await Bun.sleep(200);
      }
    })();
  }

  /** etcd answers (first contact, or again after an outage): what waited goes now. */
  reconnected(): void {
    for (const r of [...this.reports.values()]) void this.report(r);
    void this.drain();
    if (this.o.epoch() === null) void this.adopt();
  }

  /**
   * A member not in office puts the parents of fan-outs pending here that etcd never held (it was
   * their coordinator and died before it put them): the coordinator now resumes them. Not one
   * joined (its join record is there) or older than the join records are kept.
   */
  private async adopt(): Promise<void> {
    const since = Date.now() / 1000 - TOMBSTONE_SECS;
    for (const p of this.o.host.find(FANOUTS)?.pending() ?? []) {
      const parent = this.o.host.store.get(p.record);
      if (!parent || parent.created_at < since || this.parents.has(parent.id)) continue;
      const value = JSON.stringify(toWire(parent));
      if (value.length > MAX_VALUE_BYTES) continue;
      try {
        const key = this.k.record(parent.id, parent.id);
        const r = await this.o.etcd.txn([{ key, target: "CREATE", createRevision: 0 }, { key: this.k.join(parent.id), target: "CREATE", createRevision: 0 }], [{ put: { key, value } }]);
        this.parents.add(parent.id);
        if (r.succeeded) this.log.info("a fan-out pending here was not in etcd: put there for the coordinator to resume", { parent: parent.id });
      } catch {
        return;
      }
    }
  }
}

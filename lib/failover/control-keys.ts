// Freezes and the emergency stop as etcd keys every member watches (README "Automatic failover
// with etcd"): `spl kill` / `spl unkill` on any member writes its record there as today (the audit
// log, th_fleet_control) and this member then puts the record under P/control/ — the namespace's
// key, or the emergency key — so every member connected to etcd holds it within a second, with or
// without a coordinator. Each key holds the latest record for it. A member that wrote its record
// while etcd did not answer puts it when etcd answers again, unless the key changed meanwhile in a
// way this member had not seen when it wrote (then the key's record wins and is applied here).
import type { Host } from "../capability";
import { rangeOf, type EtcdClient, type WatchEvent } from "../etcd/client";
import { CONTROL_TOPICS } from "../fleet/control";
import { prepareRecord } from "../records/envelope";
import { FLEET_CONTROL_THREAD } from "../records/reserved-threads";
import type { StoredRecord } from "../records/types";
import { toWire } from "../records/wire";
import { backoffMs } from "../peer";
import { type Keys, parseJson } from "./keys";

export class ControlKeys {
  private readonly log;
  /** The mod revision of each control key as this member last saw it (0: absent). */
  private readonly seen = new Map<string, number>();
  /** Control records written here that etcd does not hold yet, in the order they were written. */
  private readonly pending = new Map<string, StoredRecord>();
  private publishing = false;
  /** A refused put is tried again after a backoff, not only when etcd answers again after an outage. */
  private retry: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private stopped = false;

  constructor(private readonly o: { host: Host; etcd: EtcdClient; keys: Keys }) {
    this.log = o.host.log.child("syncropel_fleet::control_keys");
  }

  /** The key a control record belongs under, or null (not a control record). */
  private keyOf(r: { thread: string; act: string; body: Record<string, unknown> }): string | null {
    if (r.thread !== FLEET_CONTROL_THREAD || r.act !== "LEARN") return null;
    const t = r.body.topic;
    if (t === CONTROL_TOPICS.emergencyStop || t === CONTROL_TOPICS.emergencyClear) return this.o.keys.emergency;
    if ((t === CONTROL_TOPICS.freeze || t === CONTROL_TOPICS.unfreeze) && typeof r.body.namespace === "string" && r.body.namespace) return this.o.keys.namespace(r.body.namespace);
    return null;
  }

  /** Ids of control records written here that etcd does not hold yet (`spl kill` says so). */
  waiting(): string[] {
    return [...this.pending.keys()];
  }

  /** Control records this member wrote (`spl kill` here: its own DID) go to etcd. */
  afterCommit(created: StoredRecord[]): void {
    let any = false;
    for (const r of created) {
      if (r.actor !== this.o.host.instanceDid || !this.keyOf(r)) continue;
      this.pending.set(r.id, r);
      any = true;
    }
    if (any) void this.publish();
  }

  /** Puts what waits, in order; stops at the first etcd error (retried with backoff, and at once when etcd answers again). */
  async publish(): Promise<void> {
    if (this.publishing || this.stopped) return;
    this.publishing = true;
    try {
      for (let r = this.pending.values().next().value; r; r = this.pending.values().next().value) {
        await this.put(r);
        this.pending.delete(r.id);
      }
      this.failures = 0;
    } catch (err) {
      this.failures++;
      this.log.warn(`control records wait for etcd: ${(err as Error).message}`, { records: this.pending.size, tries: this.failures });
      if (!this.retry && !this.stopped) {
        this.retry = setTimeout(() => {
          this.retry = null;
          void this.publish();
        }, backoffMs(this.failures, 30_000));
        this.retry.unref?.();
      }
    } finally {
      this.publishing = false;
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
  }

  private async put(r: StoredRecord): Promise<void> {
    const key = this.keyOf(r)!;
    const value = JSON.stringify(toWire(r));
    for (let tries = 0; tries < 5; tries++) {
      const rev = this.seen.get(key) ?? 0;
      const cmp = rev ? { key, target: "MOD" as const, modRevision: rev } : { key, target: "CREATE" as const, createRevision: 0 };
      const res = await this.o.etcd.txn([cmp], [{ put: { key, value } }], [{ range: { key } }]);
      if (res.succeeded) {
        this.seen.set(key, res.revision);
        this.log.info("control record published in etcd: every member applies it", { record: r.id, topic: r.body.topic, key });
        return;
      }
      // The key changed since this member last saw it: its record is newer only if it was written here after it.
      const kv = rangeOf(res.responses[0])[0];
      const theirs = kv ? (parseJson(kv.value) as { id?: string } | null) : null;
      const held = theirs?.id ? this.o.host.store.get(theirs.id) : null;
      this.seen.set(key, kv?.modRevision ?? 0);
      if (held && held.sequence > r.sequence) return; // a later record here supersedes this one: nothing to put
      if (!held && kv) {
        this.log.info("a control record written here was superseded in etcd while it waited: the key's record applies", { record: r.id, key });
        await this.bringIn([{ type: "PUT", kv, revision: kv.modRevision }]);
        return;
      }
    }
  }

  /** Control keys as etcd holds them (a listing), or as they change (a watch): each key's latest record applies here. */
  async bringIn(events: WatchEvent[]): Promise<void> {
    const latest = new Map<string, WatchEvent>();
    for (const e of events) {
      this.seen.set(e.kv.key, e.type === "DELETE" ? 0 : e.kv.modRevision);
      latest.set(e.kv.key, e);
    }
    const fresh: ReturnType<typeof prepareRecord>[] = [];
    for (const e of latest.values()) {
      if (e.type !== "PUT") continue;
      const w = parseJson(e.kv.value);
      if (!w || typeof w.id !== "string" || this.o.host.store.get(w.id)) continue;
      try {
        const p = prepareRecord(w);
        if (this.keyOf(p.env) !== e.kv.key) continue;
        fresh.push(p);
      } catch (err) {
        this.log.warn("a control key in etcd does not hold a control record; ignored", { key: e.kv.key, error: (err as Error).message });
      }
    }
    if (!fresh.length) return;
    const results = await this.o.host.submit(fresh);
    const created = results.filter((r) => r.status === "created").length;
    if (created) this.log.info("control records applied from etcd", { records: created });
  }
}

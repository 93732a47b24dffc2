// The election (README "Automatic failover with etcd", ARCHITECTURE.md "Automatic failover"):
// every member holds one etcd lease, renewed every lease_ttl_secs / 6, with its member key on it;
// a candidate campaigns for P/coordinator with a create-if-absent transaction on that lease, and
// the revision of the winning write is its epoch. The winner brings the fan-outs' state in, takes
// office (lib/fleet: the fleet seat) and only then marks the key ready, which is when members
// follow it. Every member watches P/coordinator (and the control keys beside it) and follows
// whoever the key names.
//
// Patroni's rule: a coordinator that has not renewed its lease for lease_ttl_secs / 2 steps down
// (stops forwarding, spawning, answering beats and joins) — checked whenever it is about to act
// and every 100 ms — while etcd deletes the key only lease_ttl_secs after the last renewal it
// received, which came after the one this member counts from. So two members never act as
// coordinator under one epoch, and never at once. It cannot tell an etcd outage from a partition,
// so it assumes a partition: with etcd unreachable nobody coordinates, members keep serving.
import type { Host } from "../capability";
import { EtcdError, type EtcdClient, type KeyValue, type WatchEvent } from "../etcd/client";
import type { ElectionStatus, FleetSeat } from "../fleet/contract";
import { VERSION } from "../version";
import { type Keys, parseJson } from "./keys";

export interface ElectionHooks {
  /** Before this member takes office at `epoch`: the fan-outs' state comes in (fanouts.ts); the members holding a key now. */
  beforeOffice(epoch: number): Promise<ReadonlySet<string>>;
  /** This member's term began (`epoch`) or ended (null). */
  office(epoch: number | null): void;
  /** A control key's value now (a full listing, or a watch event). */
  control(events: WatchEvent[]): void;
  /** etcd answers again after it did not (what waited is published). */
  reconnected(): void;
}

export interface ElectionOptions {
  host: Host;
  etcd: EtcdClient;
  keys: Keys;
  ttlSecs: number;
  candidate: boolean;
  /** The fleet's side (lib/fleet/fleet.ts), looked up when first needed: the fleet comes after this capability. */
  seat: () => FleetSeat;
  self: () => { did: string; name: string; endpoint: string };
  /** Whether this member's registry is empty and it never joined (only then may it found a fleet). */
  founding: () => boolean;
  /** Why this member may not coordinate yet (null: it may). */
  notEligible: () => string | null;
  /** The highest epoch this member knows (an elected one must be above it). */
  knownEpoch: () => number;
  hooks: ElectionHooks;
}

interface Holder {
  did: string;
  name: string;
  url: string;
  epoch: number;
  since_unix: number;
}

const CHECK_MS = 100;
const WARN_EVERY_MS = 60_000;
const mono = () => performance.now();

export class Election {
  private readonly log;
  private lease: { id: string; ttl: number } | null = null;
  /** When the last renewal (or the grant) that etcd answered was sent (monotonic ms). */
  private renewedAt = 0;
  private memberKeyPut = false;
  /** The coordinator key this member created and has not given back. */
  private won: { epoch: number; value: Record<string, unknown>; resigning: boolean } | null = null;
  private term: { epoch: number; since: number } | null = null;
  private taking = false;
  private campaigning = false;
  /** What the coordinator key holds: unknown until listed, absent, or its holder once ready. */
  private key: "unknown" | "absent" | "taking" | "ready" = "unknown";
  private holder: Holder | null = null;
  private reachable: boolean | null = null;
  private lastError: string | null = null;
  private lastContact: number | null = null;
  /** Whether the watch on the coordinator and control keys is open now, and when it last was. */
  private watchOpen = false;
  private watchedAt = 0;
  private lastWarn = 0;
  private stopped = true;
  private watchAbort: AbortController | null = null;
  private checker: ReturnType<typeof setInterval> | null = null;
  private readonly stepDownMs: number;
  private readonly renewMs: number;

  constructor(private readonly o: ElectionOptions) {
    this.log = o.host.log.child("syncropel_fleet::election");
    this.stepDownMs = (o.ttlSecs * 1000) / 2;
    this.renewMs = Math.max(250, (o.ttlSecs * 1000) / 6);
  }

  /** Whether this member's lease still lets it act as coordinator: renewed less than lease_ttl_secs / 2 ago. */
  fresh(): boolean {
    return !this.stopped && this.lease !== null && mono() - this.renewedAt < this.stepDownMs;
  }

  /** The epoch this member coordinates at now, or null. */
  get epoch(): number | null {
    return this.term && this.fresh() ? this.term.epoch : null;
  }

  /**
   * The last time this member could have learned of a freeze through etcd: etcd answered and the
   * watch on the control keys was open (a lease that renews while the watch keeps failing is no contact).
   */
  lastContactMs(): number | null {
    if (this.lastContact === null) return null;
    return Math.min(this.lastContact, this.watchOpen ? Date.now() : this.watchedAt);
  }

  status(controlPending: string[]): ElectionStatus {
    const self = this.o.self();
    const mine = this.term && this.fresh() ? { did: self.did, name: self.name, url: self.endpoint, epoch: this.term.epoch, since_unix: this.term.since } : null;
    return {
      source: "etcd",
      reachable: this.reachable === true,
      error: this.reachable === true ? null : (this.lastError ?? "not reached yet"),
      coordinator: mine ?? (this.key === "ready" ? this.holder : null),
      candidate: this.o.candidate,
      lease_ttl_secs: this.o.ttlSecs,
      control_pending: controlPending,
    };
  }

  start(): void {
    this.stopped = false;
    void this.leaseLoop();
    void this.watchLoop();
    this.checker = setInterval(() => this.check(), CHECK_MS);
    this.checker.unref?.();
  }

  /** On SIGTERM: out of office at once, then the lease revoked so the key goes now, not in lease_ttl_secs. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    if (this.term) this.stepDown("the daemon is stopping");
    this.stopped = true;
    if (this.checker) clearInterval(this.checker);
    this.watchAbort?.abort();
    const lease = this.lease;
    this.lease = null;
    if (lease) await Promise.race([this.o.etcd.revoke(lease.id).catch(() => {}), Bun.sleep(1000)]);
  }

  // ---- the lease -------------------------------------------------------------------------------

  private async leaseLoop(): Promise<void> {
    while (!this.stopped) {
      const t0 = mono();
      try {
        if (!this.lease) {
          const g = await this.o.etcd.grant(this.o.ttlSecs);
          if (this.stopped) return void this.o.etcd.revoke(g.id).catch(() => {});
          this.lease = g;
          this.renewedAt = t0;
          this.memberKeyPut = false;
        } else {
          const left = await this.o.etcd.keepAlive(this.lease.id);
          if (left > 0) this.renewedAt = Math.max(this.renewedAt, t0);
          else this.lostLease("its etcd lease expired before it was renewed");
        }
        if (this.lease && !this.memberKeyPut) {
          const self = this.o.self();
          await this.o.etcd.put(this.o.keys.member(self.did), JSON.stringify({ did: self.did, name: self.name, endpoint: self.endpoint, version: VERSION, candidate: this.o.candidate, since_unix: Math.floor(Date.now() / 1000) }), this.lease.id);
          this.memberKeyPut = true;
        }
        this.contact(null);
      } catch (err) {
        this.contact(err as Error);
      }
      const wait = this.renewMs - (mono() - t0);
      if (wait > 0 && !this.stopped) await Bun.sleep(wait);
    }
  }

  private lostLease(why: string): void {
    this.lease = null;
    if (this.term) this.stepDown(why);
    this.won = null; // the key went with the lease
  }

  /** What the last call to etcd said: null, it answered. */
  private contact(err: Error | null): void {
    if (!err) {
      this.lastContact = Date.now();
      if (this.reachable === false) {
        this.log.info("etcd answers again: the fleet converges (election, control keys, fan-out state)");
        this.o.hooks.reconnected();
        this.watchAbort?.abort(); // a stream opened before the outage may have missed events: list again
      }
      this.reachable = true;
      this.lastError = null;
      return;
    }
    const message = err instanceof EtcdError ? err.message : `etcd: ${err.message}`;
    this.lastError = message;
    if (this.reachable !== false || Date.now() - this.lastWarn > WARN_EVERY_MS) {
      this.lastWarn = Date.now();
      this.log.warn(`${message} (this member keeps serving; no election happens until etcd answers; repeats are logged once a minute)`);
    }
    this.reachable = false;
  }

  // ---- stepping down, campaigning --------------------------------------------------------------

  private check(): void {
    if (this.stopped) return;
    if (this.term && !this.fresh()) {
      this.stepDown(`it could not renew its etcd lease for ${this.stepDownMs / 1000} s (half of lease_ttl_secs), so it steps down before the lease can lapse in etcd`);
    }
    if (this.key === "absent" && this.o.candidate && this.lease && !this.won && !this.campaigning && this.fresh()) void this.campaign();
  }

  /** Out of office now; the key is given back (deleted) so another member can win at once. */
  private stepDown(why: string): void {
    if (this.term) {
      this.log.warn(`stepping down as the fleet's coordinator (epoch ${this.term.epoch}): ${why}`);
      this.term = null;
      this.o.seat().stepDown(why);
      this.o.hooks.office(null);
    }
    if (this.won) {
      this.won.resigning = true;
      void this.resign();
    }
  }

  private async resign(): Promise<void> {
    const won = this.won;
    if (!won?.resigning) return;
    try {
      await this.o.etcd.txn([{ key: this.o.keys.coordinator, target: "CREATE", createRevision: won.epoch }], [{ delete: { key: this.o.keys.coordinator } }]);
      if (this.won === won) this.won = null;
    } catch {
      // etcd does not answer: the key goes with the lease, or is deleted when the watch lists it again.
    }
  }

  private async campaign(): Promise<void> {
    this.campaigning = true;
    try {
      const why = this.o.notEligible();
      if (why) return void this.log.debug(`not campaigning: ${why}`);
      await Bun.sleep(Math.random() * 250); // candidates that saw the key go at once do not all write at once
      const lease = this.lease;
      if (this.key !== "absent" || !lease || this.won || this.stopped) return;
      const self = this.o.self();
      const value = { did: self.did, name: self.name, endpoint: self.endpoint, since_unix: Math.floor(Date.now() / 1000), ready: false };
      const k = this.o.keys;
      // A member with an empty registry may only found a fleet: P/founded must not exist yet.
      const founding = this.o.founding();
      const r = await this.o.etcd.txn(
        [{ key: k.coordinator, target: "CREATE", createRevision: 0 }, ...(founding ? [{ key: k.founded, target: "CREATE" as const, createRevision: 0 }] : [])],
        [{ put: { key: k.coordinator, value: JSON.stringify(value), lease: lease.id } }, ...(founding ? [{ put: { key: k.founded, value: JSON.stringify({ did: self.did }) } }] : [])],
      );
      this.contact(null);
      if (!r.succeeded) return;
      const epoch = r.revision;
      const floor = this.o.knownEpoch();
      if (epoch <= floor) {
        // Epochs taken by config (before [fleet.etcd]) are higher: give the key back, move the revision past them, campaign again.
        this.log.info(`etcd's revision ${epoch} is not above epoch ${floor}, which this fleet used before [fleet.etcd]: moving it past`);
        await this.o.etcd.txn([{ key: k.coordinator, target: "CREATE", createRevision: epoch }], [{ delete: { key: k.coordinator } }]);
        for (let rev = epoch, n = 0; rev <= floor && n < 100_000 && !this.stopped; n++) rev = await this.o.etcd.put(k.epochFloor, String(floor));
        return;
      }
      this.won = { epoch, value, resigning: false };
      await this.takeOffice(epoch);
    } catch (err) {
      this.contact(err as Error);
    } finally {
      this.campaigning = false;
    }
  }

  /** Won (or kept, across an outage) the key at `epoch`: state in, office, then the key marked ready. */
  private async takeOffice(epoch: number): Promise<void> {
    if (this.taking) return;
    this.taking = true;
    const k = this.o.keys;
    try {
      const present = await this.o.hooks.beforeOffice(epoch);
      const won = this.won;
      if (!won || won.epoch !== epoch || won.resigning || !this.fresh()) return;
      const since = Math.floor(Date.now() / 1000);
      this.term = { epoch, since };
      const self = this.o.self();
      await this.o.seat().takeOffice({ epoch, did: self.did, endpoint: self.endpoint }, () => this.fresh() && this.term?.epoch === epoch, present);
      const ready = { ...won.value, since_unix: since, ready: true };
      const r = await this.o.etcd.txn([{ key: k.coordinator, target: "CREATE", createRevision: epoch }], [{ put: { key: k.coordinator, value: JSON.stringify(ready), lease: this.lease!.id } }]);
      if (!r.succeeded) return this.stepDown("its coordinator key was gone before it could mark it ready");
      if (this.term?.epoch !== epoch) return;
      this.o.hooks.office(epoch);
      this.log.info(`this member is the fleet's coordinator: elected in etcd at epoch ${epoch}`, { epoch, lease_ttl_secs: this.o.ttlSecs });
    } catch (err) {
      this.contact(err as Error);
      this.stepDown(`it could not finish taking office: ${(err as Error).message}`);
    } finally {
      this.taking = false;
    }
  }

  // ---- watching the coordinator key and the control keys --------------------------------------

  private async watchLoop(): Promise<void> {
    const k = this.o.keys;
    for (let failures = 0; !this.stopped; ) {
      try {
        const { kvs, revision } = await this.o.etcd.list(k.watched);
        failures = 0;
        this.coordinatorKey(kvs.find((kv) => kv.key === k.coordinator) ?? null);
        this.o.hooks.control(kvs.filter((kv) => kv.key.startsWith(k.control)).map((kv) => ({ type: "PUT" as const, kv, revision: kv.modRevision })));
        const abort = new AbortController();
        this.watchAbort = abort;
        this.watchedAt = Date.now();
        for (let from = revision + 1; !abort.signal.aborted && !this.stopped; ) {
          this.watchOpen = true;
          try {
            const last = await this.o.etcd.watch(k.watched, { prefix: true, fromRevision: from, signal: abort.signal }, (events) => this.events(events));
            from = Math.max(from, last + 1);
          } finally {
            this.watchOpen = false;
            this.watchedAt = Date.now();
          }
          if (!abort.signal.aborted) await Bun.sleep(200); // the stream ended: open it again from where it was
        }
      } catch (err) {
        failures++;
        if (!this.stopped) await Bun.sleep(Math.min(5000, 250 * 2 ** Math.min(failures, 5)));
      }
    }
  }

  private events(events: WatchEvent[]): void {
    const k = this.o.keys;
    const control = events.filter((e) => e.kv.key.startsWith(k.control));
    const coordinator = events.filter((e) => e.kv.key === k.coordinator).pop();
    if (coordinator) this.coordinatorKey(coordinator.type === "DELETE" ? null : coordinator.kv);
    if (control.length) this.o.hooks.control(control);
  }

  /** The coordinator key as it is now (null: absent). */
  private coordinatorKey(kv: KeyValue | null): void {
    const self = this.o.self();
    if (!kv) {
      this.key = "absent";
      const had = this.holder;
      this.holder = null;
      if (this.term) this.stepDown("its coordinator key is gone from etcd (its lease lapsed or was revoked)");
      this.won = null;
      if (had) this.log.warn(`the fleet has no coordinator: ${had.name} (${had.url}, epoch ${had.epoch}) no longer holds the key${this.o.candidate ? " — campaigning" : ""}`);
      this.o.seat().follow(null, "no coordinator is elected");
      return;
    }
    const v = parseJson(kv.value) ?? {};
    const epoch = kv.createRevision;
    const ready = v.ready === true;
    if (v.did === self.did) {
      if (this.won?.epoch === epoch) {
        this.key = ready ? "ready" : "taking";
        if (this.won.resigning) void this.resign();
        else if (!this.term && !this.taking && kv.lease === this.lease?.id) void this.takeOffice(epoch); // kept across an outage
        return;
      }
      // A key an earlier run of this member left (kill -9): that process is gone, so its lease goes now.
      this.key = "taking";
      if (kv.lease !== "0" && kv.lease !== this.lease?.id) {
        this.log.info("revoking the coordinator key an earlier run of this member left", { epoch });
        void this.o.etcd.revoke(kv.lease).catch(() => {});
      }
      return;
    }
    if (this.term) this.stepDown(`${String(v.name ?? v.did)} holds the coordinator key now`);
    this.won = null;
    if (!ready) {
      this.key = "taking";
      return;
    }
    this.key = "ready";
    const holder: Holder = { did: String(v.did), name: String(v.name ?? ""), url: String(v.endpoint ?? ""), epoch, since_unix: Number(v.since_unix) || 0 };
    const changed = this.holder?.epoch !== epoch;
    this.holder = holder;
    if (changed) this.log.info(`following the fleet's coordinator ${holder.name} at ${holder.url} (epoch ${epoch}, elected in etcd)`, { epoch, coordinator_url: holder.url });
    this.o.seat().follow({ epoch, did: holder.did, url: holder.url }, `elected in etcd at epoch ${epoch}`);
  }
}

// Liveness (ARCHITECTURE.md "The fleet protocol"): how alive each member is now, in memory. A beat
// (POST /v1/fleet/heartbeat) only updates an entry here; once a second the coordinator compares
// each member's class (≤ 2N live, ≤ 3N stale, beyond archived) with the one recorded and writes an
// event only where they differ (stale, archived, back), and a `changed` when a member's name,
// endpoint or version moved. So the registry grows with events, never with time. At start every
// recorded member gets one window, as if it had just beaten.
//
// The coordinator also makes first contact: at start it asks every recorded member (its epoch on
// the call), and once an interval one member that is not live, so a coordinator that was replaced
// while it was away learns so from the first member that knows better (epoch.ts).
import type { Host, Service } from "../capability";
import { INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import { classify, type FleetRegistry, type MemberStatus, type MemberView } from "./registry";

export interface Beat {
  did: string;
  name: string;
  endpoint: string;
  role: string;
  version: string;
  uptime_secs: number;
  active_dispatches: number;
  store_records: number;
  health: string;
  sent_at_unix: number;
}

interface Seen {
  receivedMs: number;
  /** null: assumed (the coordinator's start), no beat received yet. */
  beat: Beat | null;
}

const PROBE_CONCURRENCY = 8;
const SWEEP_MS = 1000;

export class Liveness {
  private readonly seen = new Map<string, Seen>();

  constructor(
    private readonly registry: FleetRegistry,
    private readonly intervalSecs: number,
  ) {}

  /**
   * At the coordinator's start: a member recorded live has one window before it counts as gone,
   * one recorded stale stays stale; an archived one stays archived until it beats.
   */
  assumeAll(nowMs: number): void {
    const n = this.intervalSecs * 1000;
    for (const m of this.registry.members()) {
      if (this.seen.has(m.did) || m.status === "archived") continue;
      this.seen.set(m.did, { receivedMs: m.status === "live" ? nowMs : nowMs - 2 * n - 1, beat: null });
    }
  }

  /** A member elected coordinator (lib/failover) starts its term as a coordinator starts. */
  reset(nowMs: number): void {
    this.seen.clear();
    this.assumeAll(nowMs);
  }

  /** A member whose etcd lease lapsed: stale from now (its last beat kept), archived one interval later unless it beats. */
  lapsed(did: string, nowMs: number): void {
    const s = this.seen.get(did);
    const staleAt = nowMs - 2 * this.intervalSecs * 1000 - 1;
    if (!s || s.receivedMs > staleAt) this.seen.set(did, { receivedMs: staleAt, beat: s?.beat ?? null });
  }

  /** A member that just joined: one window to send its first beat. */
  welcome(did: string, nowMs: number): void {
    this.seen.set(did, { receivedMs: nowMs, beat: null });
  }

  beat(b: Beat, nowMs: number): void {
    this.seen.set(b.did, { receivedMs: nowMs, beat: b });
  }

  status(did: string, nowMs: number): MemberStatus {
    const s = this.seen.get(did);
    if (!s) return "archived";
    return classify(nowMs - s.receivedMs, this.intervalSecs, s.beat?.health === "draining");
  }

  lastBeat(did: string): Beat | null {
    return this.seen.get(did)?.beat ?? null;
  }

  /** Events to record now: members whose class differs from the one last recorded, and moved names/endpoints/versions. */
  events(nowMs: number, self: string): Array<{ topic: "stale" | "archived" | "back" | "changed"; did: string; fields?: Record<string, string> }> {
    const out: Array<{ topic: "stale" | "archived" | "back" | "changed"; did: string; fields?: Record<string, string> }> = [];
    for (const m of this.registry.members()) {
      const now = m.did === self ? "live" : this.status(m.did, nowMs);
      if (now !== m.status) {
        if (now === "live") out.push({ topic: "back", did: m.did });
        // Straight from live to archived (a draining member, or a long pause) records only archived.
        else if (now !== "stale" || m.status === "live") out.push({ topic: now, did: m.did });
      }
      const b = this.seen.get(m.did)?.beat;
      if (!b) continue;
      const fields: Record<string, string> = {};
      if (b.endpoint && b.endpoint !== m.endpoint) fields.endpoint = b.endpoint;
      if (b.version && b.version !== m.version) fields.version = b.version;
      if (b.name && b.name !== m.name && !this.registry.holderOf(b.name)) fields.name = b.name;
      if (Object.keys(fields).length) out.push({ topic: "changed", did: m.did, fields });
    }
    return out;
  }

  /** Every member but `self`. */
  others(self: string): string[] {
    return this.registry.members().filter((m) => m.did !== self).map((m) => m.did);
  }

  /** Members that are not live now (the coordinator asks one of them per interval). */
  notLive(nowMs: number, self: string): string[] {
    return this.registry.members().filter((m) => m.did !== self && this.status(m.did, nowMs) !== "live").map((m) => m.did);
  }

  forget(did: string): void {
    this.seen.delete(did);
  }

  /** Every member not forgotten, with its class now; `self` (the coordinator) is live and reports itself. */
  view(nowMs: number, self: { did: string; beat: () => Beat }): MemberView[] {
    return this.registry.members().map((m) => {
      const mine = m.did === self.did;
      const b = mine ? self.beat() : this.seen.get(m.did)?.beat;
      return {
        did: m.did,
        name: m.name,
        endpoint: m.endpoint,
        role: mine ? "coordinator" : (b?.role ?? "worker"),
        status: mine ? "live" : this.status(m.did, nowMs),
        version: b?.version ?? m.version,
        uptime_secs: b?.uptime_secs ?? 0,
        // No beat since this coordinator started (or since the member joined): not known yet.
        health: b?.health ?? "unknown",
        active_dispatches: b?.active_dispatches ?? 0,
        store_records: b?.store_records ?? 0,
        last_heartbeat: b?.sent_at_unix ?? m.since,
      };
    });
  }
}

/**
 * The coordinator's sweep (events into the registry) and first contact (probes). While this
 * member is deposed it records nothing: the registry is the new coordinator's to write.
 */
export function livenessService(host: Host, o: { liveness: Liveness; intervalSecs: number; coordinating(): boolean; log: ReturnType<Host["log"]["child"]>; endpointOf(did: string): string | null }): Service {
  const { liveness } = o;
  let timer: ReturnType<typeof setInterval> | null = null;
  let probeTimer: ReturnType<typeof setInterval> | null = null;
  const writing = new Set<string>();
  let nextProbe = 0;

  const record = (topic: string, did: string, fields: Record<string, string> = {}) => {
    const key = `${topic}:${did}`;
    if (writing.has(key)) return;
    writing.add(key);
    host
      .write({ thread: INSTANCE_REGISTRY_THREAD, act: "LEARN", actor: host.instanceDid, body: { topic, did, ...fields } })
      .then(() => o.log.info(`fleet member ${topic}`, { did, ...fields }))
      .catch((err) => o.log.error("could not record a fleet member event", { topic, did, error: (err as Error).message }))
      .finally(() => writing.delete(key));
  };

  const sweep = () => {
    if (!o.coordinating()) return;
    for (const e of liveness.events(host.now(), host.instanceDid)) record(e.topic, e.did, e.fields);
  };

  const probe = async (did: string) => {
    const url = o.endpointOf(did);
    if (!url) return;
    // The answer does not matter here: a member that knows a newer coordinator answers 409
    // STALE_EPOCH, which the peer client reports (this coordinator is then deposed).
    await host.peers.request(url, "GET", "/v1/fleet/member", undefined, { timeoutMs: 3000 }).catch(() => {});
  };

  return {
    name: "fleet-liveness",
    start() {
      timer = setInterval(sweep, SWEEP_MS);
      timer.unref?.();
      // A coordinator by config: its registry gets one window, and first contact with every recorded
      // member, a few at a time. (An elected one gets a window when it takes office, and etcd's
      // member keys say who is there: fleet.ts, lib/failover.)
      if (o.coordinating()) {
        liveness.assumeAll(host.now());
        void (async () => {
          const dids = liveness.others(host.instanceDid);
          for (let i = 0; i < dids.length && timer; i += PROBE_CONCURRENCY) await Promise.all(dids.slice(i, i + PROBE_CONCURRENCY).map(probe));
        })();
      }
      probeTimer = setInterval(() => {
        if (!o.coordinating()) return;
        const dids = liveness.notLive(host.now(), host.instanceDid);
        if (dids.length) void probe(dids[nextProbe++ % dids.length]!);
      }, o.intervalSecs * 1000);
      probeTimer.unref?.();
    },
    stop() {
      if (timer) clearInterval(timer);
      if (probeTimer) clearInterval(probeTimer);
      timer = probeTimer = null;
    },
  };
}

// The coordinator's registry: the latest heartbeat per instance DID, folded from
// th_instance_registry (rebuilt from the store at every start, updated on every commit).
// Status comes from the age of the last beat, N being the heartbeat interval:
//   age ≤ 2N live · 2N < age ≤ 3N stale · age > 3N archived
// A member that said goodbye (health "draining") skips stale: it left, it did not fail.
import { INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import type { StoredRecord } from "../records/types";

export type MemberStatus = "live" | "stale" | "archived";

export interface Heartbeat {
  instance_did: string;
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

export interface RegistryEntry extends Heartbeat {
  /** When the coordinator received the beat (ms; the record's created_at when rebuilt). */
  receivedMs: number;
}

export interface MemberView {
  did: string;
  name: string;
  endpoint: string;
  role: string;
  status: MemberStatus;
  version: string;
  uptime_secs: number;
  health: string;
  active_dispatches: number;
  store_records: number;
  last_heartbeat: number;
  /** Another DID claims the same name (two homes configured alike, a copied store...). */
  name_clash: boolean;
}

export function classify(ageMs: number, intervalSecs: number, draining = false): MemberStatus {
  const n = intervalSecs * 1000;
  if (ageMs <= 2 * n) return "live";
  if (ageMs <= 3 * n && !draining) return "stale";
  return "archived";
}

const str = (v: unknown) => (typeof v === "string" ? v : "");
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : 0);

export function isHeartbeat(rec: StoredRecord): boolean {
  return rec.act === "DO" && rec.thread === INSTANCE_REGISTRY_THREAD && rec.body.topic === "heartbeat" && typeof rec.body.instance_did === "string";
}

export class FleetRegistry {
  private readonly byDid = new Map<string, RegistryEntry>();

  apply(rec: StoredRecord, receivedMs: number): boolean {
    if (!isHeartbeat(rec)) return false;
    const b = rec.body;
    const did = b.instance_did as string;
    const prev = this.byDid.get(did);
    // Latest beat wins; a replayed older one (out of order) never rolls a member back.
    if (prev && num(b.sent_at_unix) < prev.sent_at_unix) return false;
    this.byDid.set(did, {
      instance_did: did,
      name: str(b.name),
      endpoint: str(b.endpoint),
      role: str(b.role),
      version: str(b.version),
      uptime_secs: num(b.uptime_secs),
      active_dispatches: num(b.active_dispatches),
      store_records: num(b.store_records),
      health: str(b.health),
      sent_at_unix: num(b.sent_at_unix),
      receivedMs,
    });
    return true;
  }

  get size(): number {
    return this.byDid.size;
  }

  /** Every member known, sorted by DID, with its status now. */
  view(intervalSecs: number, nowMs = Date.now()): MemberView[] {
    const names = new Map<string, number>();
    for (const e of this.byDid.values()) names.set(e.name, (names.get(e.name) ?? 0) + 1);
    return [...this.byDid.values()]
      .sort((a, b) => (a.instance_did < b.instance_did ? -1 : 1))
      .map((e) => ({
        did: e.instance_did,
        name: e.name,
        endpoint: e.endpoint,
        role: e.role,
        status: classify(nowMs - e.receivedMs, intervalSecs, e.health === "draining"),
        version: e.version,
        uptime_secs: e.uptime_secs,
        health: e.health,
        active_dispatches: e.active_dispatches,
        store_records: e.store_records,
        last_heartbeat: e.sent_at_unix,
        name_clash: (names.get(e.name) ?? 0) > 1,
      }));
  }
}

export function counts(members: readonly MemberView[]) {
  const c = { live: 0, stale: 0, archived: 0 };
  for (const m of members) c[m.status]++;
  return c;
}

// The kill switch's state (README "Fleet"): LEARN records on th_fleet_control — freeze / unfreeze
// of a namespace, emergency_stop / emergency_clear fleet-wide — folded into the state every write
// is checked against (killswitch.ts: a write check before permission rules, on every member).
// Reserved fleet threads always pass: unkill must get through, and heartbeats keep the fleet visible.
import { ApiError } from "../api/http";
import { FLEET_CONTROL_THREAD, INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import type { Envelope, StoredRecord } from "../records/types";

/** What the fleet_* CEL functions see. */
export interface FleetFacts {
  frozen: string[];
  hardPastGrace: string[];
  emergency: boolean;
}

export type FreezeLevel = "soft" | "hard";
export const FREEZE_LEVELS: readonly FreezeLevel[] = ["soft", "hard"];
export const DEFAULT_GRACE_SECS = 60;
export const CONTROL_TOPICS = { freeze: "freeze", unfreeze: "unfreeze", emergencyStop: "emergency_stop", emergencyClear: "emergency_clear" } as const;

export interface Freeze {
  namespace: string;
  level: FreezeLevel;
  grace_secs: number;
  reason: string | null;
  issued_by: string;
  issued_at_unix: number;
  /** When this member stored the freeze (its own clock): a hard freeze's grace runs from here. */
  received_at_unix: number;
}

export interface EmergencyState {
  active: boolean;
  reason: string | null;
  issued_by: string | null;
  issued_at_unix: number | null;
}

/** New work: what a soft freeze and the emergency stop refuse. */
const WORK_ACTS = new Set(["INTEND", "DO", "CALL"]);

const str = (v: unknown) => (typeof v === "string" && v ? v : null);

/** A hard freeze whose grace is over, on this member's clock from when it stored the freeze (never the issuer's). */
const pastGrace = (f: Freeze, nowMs: number) => f.level === "hard" && nowMs >= (f.received_at_unix + f.grace_secs) * 1000;

/** NS itself or a child of it (`docs` covers `docs/v0.11`). */
const within = (ns: string, frozen: string) => ns === frozen || ns.startsWith(`${frozen}/`);

export class FleetControl {
  private readonly byNamespace = new Map<string, Freeze>();
  private emergencyState: EmergencyState = { active: false, reason: null, issued_by: null, issued_at_unix: null };

  apply(rec: StoredRecord): boolean {
    if (rec.thread !== FLEET_CONTROL_THREAD || rec.act !== "LEARN") return false;
    const b = rec.body;
    const issuedBy = str(b.issued_by) ?? rec.actor;
    const issuedAt = typeof b.issued_at_unix === "number" ? b.issued_at_unix : rec.created_at;
    const ns = str(b.namespace);
    switch (b.topic) {
      case CONTROL_TOPICS.freeze: {
        if (!ns) return false;
        const level: FreezeLevel = b.level === "hard" ? "hard" : "soft";
        const grace = typeof b.grace_secs === "number" && b.grace_secs >= 0 ? b.grace_secs : DEFAULT_GRACE_SECS;
        this.byNamespace.set(ns, { namespace: ns, level, grace_secs: grace, reason: str(b.reason), issued_by: issuedBy, issued_at_unix: issuedAt, received_at_unix: rec.created_at });
        return true;
      }
      case CONTROL_TOPICS.unfreeze:
        return ns !== null && this.byNamespace.delete(ns);
      case CONTROL_TOPICS.emergencyStop:
        this.emergencyState = { active: true, reason: str(b.reason), issued_by: issuedBy, issued_at_unix: issuedAt };
        return true;
      case CONTROL_TOPICS.emergencyClear:
        this.emergencyState = { active: false, reason: null, issued_by: null, issued_at_unix: null };
        return true;
    }
    return false;
  }

  get freezes(): Freeze[] {
    return [...this.byNamespace.values()].sort((a, b) => (a.namespace < b.namespace ? -1 : 1));
  }

  get emergency(): EmergencyState {
    return { ...this.emergencyState };
  }

  isFrozen(namespace: string): boolean {
    return this.byNamespace.has(namespace);
  }

  /** Namespaces where new work is refused (every freeze, soft or hard). */
  frozenNamespaces(): string[] {
    return this.freezes.map((f) => f.namespace);
  }

  /** Hard freezes whose grace is over: nothing at all is accepted there. */
  hardFrozenPastGrace(nowMs = Date.now()): string[] {
    return this.freezes.filter((f) => pastGrace(f, nowMs)).map((f) => f.namespace);
  }

  /** What the fleet_* CEL functions see. */
  facts(nowMs = Date.now()): FleetFacts {
    return { frozen: this.frozenNamespaces(), hardPastGrace: this.hardFrozenPastGrace(nowMs), emergency: this.emergencyState.active };
  }

  /** Whether the reconciler may start work for a record in this namespace. */
  mayStartWork(namespace: unknown): boolean {
    if (this.emergencyState.active) return false;
    return typeof namespace !== "string" || !this.freezes.some((f) => within(namespace, f.namespace));
  }

  /** The refusal of a record about to be written, or null. */
  refusal(rec: Envelope, nowMs = Date.now()): ApiError | null {
    if (rec.thread === FLEET_CONTROL_THREAD || rec.thread === INSTANCE_REGISTRY_THREAD) return null;
    const isWork = WORK_ACTS.has(rec.act);
    if (isWork && this.emergencyState.active) {
      const why = this.emergencyState.reason ? ` (${this.emergencyState.reason})` : "";
      return new ApiError(403, "EMERGENCY_STOP", `emergency stop active${why}: no new ${rec.act} is accepted anywhere in the fleet — lift it with 'spl unkill --emergency'`);
    }
    const ns = rec.body?.namespace;
    if (typeof ns !== "string") return null;
    const hit = this.freezes.find((f) => within(ns, f.namespace));
    if (!hit) return null;
    const past = pastGrace(hit, nowMs);
    if (!isWork && !past) return null;
    const why = hit.reason ? ` (${hit.reason})` : "";
    const what = past ? "no record is accepted there" : `no new ${rec.act} is accepted there`;
    return new ApiError(403, "NAMESPACE_FROZEN", `namespace '${ns}' is under a ${hit.level} freeze of '${hit.namespace}'${why}: ${what} — lift it with 'spl unkill --namespace ${hit.namespace}'`);
  }
}

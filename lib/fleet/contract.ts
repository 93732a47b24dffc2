// What the fleet's capabilities offer each other (lib/fleet/capability.ts, killswitch.ts,
// lib/fanout/capability.ts and lib/failover/capability.ts), by slot: the member and its registry,
// the kill switch's state, the fan-outs pending on this member, and — with [fleet.etcd] — the
// election and what it may do to the fleet. Types only besides the slots, so any of them may import it.
import { slot } from "../capability";
import type { StoredRecord } from "../records/types";
import type { FleetMember } from "./config";
import type { EmergencyState, Freeze } from "./control";
import type { Election as Win, Known } from "./epoch";
import type { MemberView } from "./registry";

export interface FleetView {
  /** This daemon's place in the fleet: role, endpoint, name, coordinator, interval. */
  readonly member: FleetMember;
  /** Every member the registry knows, with its status now (the coordinator's view). */
  members(): MemberView[];
  /** The highest epoch this member knows and its coordinator (ARCHITECTURE.md "The fleet protocol"). */
  epoch(): Known;
  /** Whether this member coordinates at that epoch (false for a worker, and for a deposed coordinator). */
  coordinating(): boolean;
}

export interface KillSwitchView {
  /** Whether the reconciler may start work for a record in this namespace now. */
  mayStartWork(namespace: unknown): boolean;
  readonly freezes: Freeze[];
  readonly emergency: EmergencyState;
}

export interface PendingFanout {
  thread: string;
  record: string;
  join: string;
  subtasks: number;
  spawned: number;
  completed: number;
}

export const FLEET = slot<FleetView>("fleet");
export const KILL_SWITCH = slot<KillSwitchView>("kill switch");
export const FANOUTS = slot<{ pending(): PendingFanout[] }>("fan-outs");

/** What `fleet status` and GET /v1/fleet/member say of an election (README "Automatic failover with etcd"). */
export interface ElectionStatus {
  source: "etcd";
  /** etcd answers; else why not and the fix. */
  reachable: boolean;
  error: string | null;
  /** The coordinator the key names, once it has taken office; null: none elected now. */
  coordinator: { did: string; name: string; url: string; epoch: number; since_unix: number } | null;
  candidate: boolean;
  /** This member's lease, renewed every few seconds (null: none held now). */
  lease_ttl_secs: number;
  /** Control records written here that etcd does not hold yet (published when it answers). */
  control_pending: string[];
}

/**
 * Automatic failover (lib/failover), offered to the fleet when [fleet.etcd] is set: the fleet
 * follows the election instead of [fleet] coordinator_url.
 */
export interface ElectionView {
  /** When this member last reached etcd (ms), null: not yet. A worker fails closed counting from it too. */
  lastContactMs(): number | null;
  status(): ElectionStatus;
}

/** What the election may do to this member's place in the fleet (the fleet provides it). */
export interface FleetSeat {
  /**
   * This member won `e`: it acts as coordinator while `fresh()` holds (registry event, its
   * credentials, liveness). Members not in `present` (no membership key) count as lapsed from the start.
   */
  takeOffice(e: Win, fresh: () => boolean, present: ReadonlySet<string>): Promise<void>;
  /** It stops acting as coordinator at once: forwarding, spawning, answering beats and joins. */
  stepDown(why: string): void;
  /** Another member coordinates at that epoch (null: none is elected now); this one beats to it. */
  follow(k: { epoch: number; did: string; url: string } | null, why: string): void;
  /**
   * Whether this member may be elected: `founding`, it never joined a fleet and holds no registry
   * (it may found one); else `notEligible` says why not yet (null: it may).
   */
  eligibility(): { founding: boolean; notEligible: string | null };
  /** A member's etcd lease lapsed (its key is gone): stale now, archived an interval later unless it beats. */
  lapsed(did: string): void;
}

/** Where a fan-out's state outlives its coordinator (lib/failover with etcd); absent: only the coordinator's store. */
export interface FanoutLedger {
  /**
   * Before attempt `n` of a child is recorded: the worker it goes to and the coordinator URL its
   * INTEND names — an earlier claim of that attempt (by a coordinator that died before recording
   * it) wins over `pick` — or null: not now (this member does not coordinate, or etcd did not answer).
   */
  claim(parent: StoredRecord, index: number, n: number, pick: { did: string; name: string; coordinatorUrl: string }): Promise<{ did: string; name: string; coordinatorUrl: string } | null>;
  /** A worker's report, made durable where the next coordinator reads it, before it is sent. Never throws. */
  report(report: Record<string, unknown>): Promise<void>;
}

export const ELECTION = slot<ElectionView>("election");
export const FLEET_SEAT = slot<FleetSeat>("fleet seat");
export const FANOUT_LEDGER = slot<FanoutLedger>("fan-out ledger");

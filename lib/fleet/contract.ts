// What the fleet's capabilities offer each other (lib/fleet/capability.ts, killswitch.ts and
// lib/fanout/capability.ts), by slot: the member and its registry, the kill switch's state, and
// the fan-outs pending on this member. Types only besides the slots, so any of them may import it.
import { slot } from "../capability";
import type { FleetMember } from "./config";
import type { EmergencyState, Freeze } from "./control";
import type { Known } from "./epoch";
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

// Who may write what about a fan-out (README "Fan-out": who may write what). A write check of the
// fan-out capability, run for every record written on a caller's behalf (a request, a peer's push):
//   - a parent INTEND (body.subtasks) must be runnable and within the limits (400 naming them);
//   - a child INTEND (body.fanout) and a child cancel reach a worker only from its coordinator;
//   - a report (DO fanout_child_done) comes only from the member its attempt was sent to, naming
//     that attempt and that worker;
//   - a retry or a cancel (LEARN) comes from an actor allowed to act on the parent task;
//   - spawns, timeouts, joins and the worker's outbox are the daemon's own: no caller writes them.
// Anything else naming a fan-out is refused with 403 and nothing is written.
import type { Caller, WriteAs } from "../api/caller";
import { ApiError } from "../api/http";
import { hasScope } from "../auth/tokens";
import type { WriteCheck } from "../capability";
import type { Envelope } from "../records/types";
import { REGISTRY_SCOPE } from "../fleet/credentials";
import { attemptOf, CANCEL, CHILD_DONE, type Fanout, type FanoutTable, JOIN_COMPLETE, RETRY, SPAWNED, VERDICTS } from "./fold";
import { CHILD_CANCEL, OUTBOX_FIELD } from "./outbox";
import { childProblem, parentProblem } from "./spec";

/**
 * The fleet member a caller speaks for, or null when it is no member (a user's token, the socket).
 * THE ONE PLACE member identity is decided for fan-out: a member credential (lib/fleet/credentials.ts)
 * makes the caller that member's instance DID, so only the member an attempt was sent to can
 * report it.
 */
export function reporterOf(caller: Caller): string | null {
  return caller.token?.env === "member" && caller.scopes?.includes("fleet:control") ? caller.actor : null;
}

/** The coordinator this member follows, calling with the epoch it holds (the only one that sends children). */
const isCoordinator = (caller: Caller) => reporterOf(caller) !== null && caller.scopes!.includes(REGISTRY_SCOPE);

const forbidden = (message: string) => new ApiError(403, "FANOUT_FORBIDDEN", message);
const str = (v: unknown) => (typeof v === "string" ? v : "");
const ENGINE_TOPICS = new Set([SPAWNED, JOIN_COMPLETE]);
const TOPICS = new Set([SPAWNED, CHILD_DONE, RETRY, CANCEL, JOIN_COMPLETE, CHILD_CANCEL]);

/** The actors who may retry or cancel a fan-out: its author, the task's creator and assignee. */
export type ParentActors = (f: Fanout) => string[];

export function fanoutGuard(table: FanoutTable, actorsOf: ParentActors): WriteCheck {
  return {
    name: "fan-out",
    phase: "state",
    check(rec, { caller }: WriteAs) {
      const b = rec.body;
      if (b[OUTBOX_FIELD] != null) throw forbidden("the fan-out outbox is written only by this daemon");
      if (rec.act === "INTEND" && b.subtasks !== undefined) {
        const problem = parentProblem(b);
        if (problem) throw new ApiError(400, "INVALID_FANOUT", `${problem} — see README "Fan-out" for the limits`);
        return;
      }
      if ((rec.act === "INTEND" && b.fanout != null) || b.topic === CHILD_CANCEL) {
        if (!isCoordinator(caller)) throw forbidden(`fan-out children and their cancels come only from the fleet's coordinator (its member credential, at the epoch this member follows); ${caller.actor} is not it`);
        const problem = rec.act === "INTEND" ? childProblem(b) : null;
        if (problem) throw new ApiError(400, "INVALID_FANOUT", `${problem} — see README "Fan-out" for the limits`);
        return;
      }
      const topic = str(b.topic);
      const f = b.parent_record_id != null ? table.byParent(str(b.parent_record_id)) : undefined;
      if (!f && !TOPICS.has(topic)) return; // names no fan-out
      if (!f) throw new ApiError(404, "FANOUT_NOT_FOUND", `no fan-out has parent record ${JSON.stringify(str(b.parent_record_id).slice(0, 80))} here — check parent_record_id (spl task join-status <alias> -o json shows it)`);
      if (topic === CHILD_DONE && rec.act === "DO") return checkReport(rec, caller, f);
      if ((topic === RETRY || topic === CANCEL) && rec.act === "LEARN") return checkSteer(rec, caller, f, actorsOf(f));
      if (ENGINE_TOPICS.has(topic)) throw forbidden(`${topic} records are written only by the coordinator's engine`);
      throw forbidden(`a record naming fan-out ${f.parent.id.slice(0, 12)} must be a report (DO ${CHILD_DONE}), a retry (LEARN ${RETRY}) or a cancel (LEARN ${CANCEL})`);
    },
  };
}

function checkReport(rec: Envelope, caller: Caller, f: Fanout): void {
  const b = rec.body;
  const reporter = reporterOf(caller);
  if (!reporter) throw forbidden(`reports come only from the worker a subtask was sent to (its fleet credential); ${caller.actor} is not a fleet member`);
  const child = Number.isInteger(b.index) ? f.children[b.index as number] : undefined;
  if (!child) throw forbidden(`fan-out ${f.parent.id.slice(0, 12)} has no subtask ${JSON.stringify(b.index)}`);
  const attempt = attemptOf(child, b.attempt);
  if (!attempt) throw forbidden(`subtask ${child.index} has no attempt ${JSON.stringify(b.attempt ?? "in flight")}`);
  const worker = str(b.worker);
  if (worker !== attempt.worker || rec.actor !== attempt.worker) throw forbidden(`attempt ${attempt.n} of subtask ${child.index} was sent to ${attempt.worker}; a report for it must name that worker as actor and worker`);
  // Its member credential makes the reporter the member itself: only it may report.
  if (reporter !== attempt.worker) throw forbidden(`attempt ${attempt.n} of subtask ${child.index} was sent to ${attempt.worker}, not to ${reporter}`);
  if (!(VERDICTS as readonly string[]).includes(str(b.verdict))) throw new ApiError(400, "INVALID_FANOUT", `verdict ${JSON.stringify(b.verdict)} is not one of ${VERDICTS.join(", ")}`);
}

function checkSteer(rec: Envelope, caller: Caller, f: Fanout, allowed: string[]): void {
  // The operator (the socket, an admin token) may steer any fan-out; others only as themselves.
  if (caller.scopes === null || hasScope(caller.scopes, "admin")) return;
  if (rec.actor === caller.actor && allowed.includes(rec.actor)) return;
  throw forbidden(`${rec.actor} may not retry or cancel fan-out ${f.parent.id.slice(0, 12)}: only its author or the task's creator or assignee (${[...new Set(allowed)].join(", ")}), or an operator`);
}

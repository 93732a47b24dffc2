// The kill switch fails closed (README "Fleet"): a worker that has not had a beat acknowledged by
// its coordinator for [fleet] fail_closed_after_secs (counted from its start too) cannot know of a
// freeze issued meanwhile, so it refuses new INTEND/DO/CALL with 503 COORDINATOR_UNREACHABLE,
// naming the outage and the override. KNOW/LEARN (in-flight work reports, unkill) and the fleet's
// own threads pass. A deposed coordinator refuses new control records and fan-out parents, naming
// the coordinator that replaced it.
import { ApiError } from "../api/http";
import type { WriteCheck } from "../capability";
import { formatDuration } from "../cli/output";
import { FLEET_CONTROL_THREAD, INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import type { Envelope } from "../records/types";
import { REGISTRY_SCOPE } from "./credentials";
import type { Known } from "./epoch";

const WORK_ACTS = new Set(["INTEND", "DO", "CALL"]);
const FLEET_THREADS = new Set([FLEET_CONTROL_THREAD, INSTANCE_REGISTRY_THREAD]);

/** Why a worker refuses new work now, or null. `lastContactMs`: its last acknowledged beat, or its start. */
export function failClosedRefusal(rec: Envelope, o: { limitSecs: number; lastContactMs: number; nowMs: number; coordinator: string }): ApiError | null {
  if (o.limitSecs <= 0 || !WORK_ACTS.has(rec.act) || FLEET_THREADS.has(rec.thread)) return null;
  const silentMs = o.nowMs - o.lastContactMs;
  if (silentMs < o.limitSecs * 1000) return null;
  return new ApiError(
    503,
    "COORDINATOR_UNREACHABLE",
    `this member has not reached its coordinator ${o.coordinator} for ${formatDuration(Math.floor(silentMs / 1000))} (more than [fleet] fail_closed_after_secs = ${o.limitSecs}), so it cannot know of a freeze issued meanwhile: no new ${rec.act} is accepted — restore the link to the coordinator (spl doctor), or accept work anyway with fail_closed_after_secs = 0 in [fleet] and a restart`,
  );
}

/** Whether a record starts a fan-out (its parent INTEND lists subtasks). */
const isFanoutParent = (rec: Envelope) => rec.act === "INTEND" && Array.isArray(rec.body?.subtasks);

export function failClosedCheck(o: { limitSecs: number; isWorker(): boolean; lastContactMs(): number; now(): number; coordinator(): string; deposedBy(): Known | null }): WriteCheck {
  return {
    name: "fleet reachability",
    phase: "control",
    check(rec, { caller }) {
      const deposed = o.deposedBy();
      // The coordinator that replaced this one may still forward its own records here.
      if (deposed && !caller.scopes?.includes(REGISTRY_SCOPE) && (rec.thread === FLEET_CONTROL_THREAD || isFanoutParent(rec))) {
        const there = deposed.url ?? "the new coordinator";
        throw new ApiError(409, "COORDINATOR_DEPOSED", `this member is no longer the fleet's coordinator: ${there} holds epoch ${deposed.epoch} — run it there (--url ${there}), where it reaches every member`, { epoch: deposed.epoch, coordinator_url: deposed.url });
      }
      if (!o.isWorker()) return;
      const refused = failClosedRefusal(rec, { limitSecs: o.limitSecs, lastContactMs: o.lastContactMs(), nowMs: o.now(), coordinator: o.coordinator() });
      if (refused) throw refused;
    },
  };
}

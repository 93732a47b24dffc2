// The daemon's own write checks (ARCHITECTURE.md "Write checks"): who may write each reserved
// thread, which actor a caller may write as, and the operator's permission rules with `record`
// bound to the record as it will be stored. Capabilities add theirs (the kill switch's freezes,
// the task status machine); the ingest queue runs them all in phase order inside the transaction.
import type { WriteAs } from "../api/caller";
import { ApiError } from "../api/http";
import { hasScope } from "../auth/tokens";
import type { WriteCheck } from "../capability";
import type { ReservedThread } from "../records/reserved-threads";
import type { Gate } from "./access";

/** The open routes (GET /health, the console, /openapi.json) are served to anyone: nothing may be written in their name. */
export function openRouteCheck(): WriteCheck {
  return {
    name: "open routes",
    phase: "scope",
    check(_, { route }) {
      if (route.cls === "open") throw new ApiError(403, "PERMISSION_DENIED", "this route writes no records");
    },
  };
}

/** Reserved threads: the daemon alone, or callers with the thread's write scope. */
export function reservedThreadCheck(table: readonly ReservedThread[]): WriteCheck {
  const byThread = new Map(table.map((t) => [t.thread, t]));
  return {
    name: "reserved threads",
    phase: "scope",
    check(rec, { caller }) {
      const t = byThread.get(rec.thread);
      if (!t) return;
      if (t.write === "daemon") throw new ApiError(403, t.code, `${t.thread} holds ${t.what} and is written only by the daemon — ${t.fix}`);
      if (caller.scopes && !hasScope(caller.scopes, t.write)) {
        throw new ApiError(403, t.code, `writing ${t.thread} needs scope ${t.write}; token ${caller.token?.id} has ${caller.scopes.join(",") || "none"} — ${t.fix}`);
      }
    },
  };
}

/** A record names the caller's own actor, unless the caller may act for others. */
export function actorBindingCheck(gate: Gate): WriteCheck {
  return {
    name: "actor binding",
    phase: "scope",
    check(rec, { caller }) {
      if (rec.actor !== caller.actor && !caller.actsForOthers) throw gate.claimDenied(caller, rec.actor);
    },
  };
}

/** The operator's permission rules, per record, for routes that check them in the write path. */
export function permissionRuleCheck(gate: Gate): WriteCheck {
  return {
    name: "permission rules",
    phase: "rules",
    check(rec, as: WriteAs) {
      const err = gate.checkRecord(as, rec);
      if (err) throw err;
    },
  };
}

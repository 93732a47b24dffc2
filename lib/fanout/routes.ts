// GET /v1/fanouts/:thread: a fan-out as this member folds it (`spl task join-status`).
import { ApiError, json } from "../api/http";
import { route } from "../api/route";
import type { FanoutTable } from "./fold";

export function fanoutRoutes(table: FanoutTable) {
  return [
    route({ method: "GET", path: "/v1/fanouts/:thread", cls: "thread_read", doc: { summary: "A fan-out by its parent thread: subtasks, spawns, reports, the join" } }, ({ params }) => {
      const ref = params.thread;
      const f = typeof ref === "string" ? table.get(ref) : undefined;
      if (!f) throw new ApiError(404, "FANOUT_NOT_FOUND", `no fan-out on ${JSON.stringify(String(ref).slice(0, 100))} — start one with 'spl task fan-out <alias> --subtask ...'`);
      return json(200, { object: "fanout", thread: f.parent.thread, record: f.parent.id, join: f.join, namespace: f.namespace, status: table.status(f.parent.thread), complete: f.complete, children: f.children });
    }),
  ];
}

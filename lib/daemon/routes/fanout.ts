// GET /v1/fanouts/:thread: a fan-out as this member folds it (`spl task join-status`).
import type { DaemonState } from "../state";
import { ApiError, json } from "../http";
import { route } from "../route";

export function fanoutRoutes(state: DaemonState) {
  return [
    route({ method: "GET", path: "/v1/fanouts/:thread", cls: "thread_read", doc: { summary: "A fan-out by its parent thread: subtasks, spawns, reports, the join" } }, ({ params }) => {
      const ref = params.thread;
      const f = typeof ref === "string" ? state.fanout.table.get(ref) : undefined;
      if (!f) throw new ApiError(404, "FANOUT_NOT_FOUND", `no fan-out on ${JSON.stringify(String(ref).slice(0, 100))} — start one with 'spl task fan-out <alias> --subtask ...'`);
      return json(200, { object: "fanout", thread: f.parent.thread, record: f.parent.id, join: f.join, namespace: f.namespace, status: state.fanout.table.status(f.parent.thread), complete: f.complete, children: f.children });
    }),
  ];
}

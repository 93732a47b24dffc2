// GET /v1/fanouts/:thread: a fan-out as this member folds it, with how each attempt's send is going
// (`spl task join-status`).
import { ApiError, json } from "../api/http";
import { route } from "../api/route";
import type { FanoutTable } from "./fold";
import type { SendState } from "./service";

export function fanoutRoutes(table: FanoutTable, sends: { sendState(intend: string): SendState | null }) {
  return [
    route({ method: "GET", path: "/v1/fanouts/:thread", cls: "thread_read", doc: { summary: "A fan-out by its parent thread: subtasks, attempts, reports, the join" } }, ({ params }) => {
      const ref = params.thread;
      const f = typeof ref === "string" ? table.get(ref) : undefined;
      if (!f) throw new ApiError(404, "FANOUT_NOT_FOUND", `no fan-out on ${JSON.stringify(String(ref).slice(0, 100))} — start one with 'spl task fan-out <alias> --subtask ...'`);
      const children = f.children.map((c) => ({ ...c, attempts: c.attempts.map((a) => ({ ...a, send: sends.sendState(a.intend) })) }));
      return json(200, { object: "fanout", thread: f.parent.thread, record: f.parent.id, join: f.join, namespace: f.namespace, status: table.status(f.parent.thread), cancel: f.cancel, complete: f.complete, children });
    }),
  ];
}

// GET /v1/fanouts/:thread: a fan-out as this member folds it (`spl task join-status`).
import { ApiError, json } from "../api/http";
import { route } from "../api/route";
import { NO_QUERY, T, UnixSecs, nullable, oneOf } from "../api/schema";
import type { FanoutTable } from "./fold";

const Child = T.Object(
  {
    index: T.Integer({ minimum: 0 }),
    thread: T.String(),
    goal: T.String(),
    target: T.String(),
    budget_usd: nullable(T.Number()),
    timeout_secs: T.Integer(),
    depends_on: T.Array(T.Integer()),
    spawned: nullable(T.Object({ worker: T.String(), name: T.String(), at: UnixSecs })),
    result: nullable(T.Object({ index: T.Integer(), thread: T.String(), worker: T.String(), verdict: T.String(), cost_usd: T.Number(), wall_time_secs: T.Number(), summary: T.String() })),
    hint: nullable(T.String()),
    retries: T.Integer({ minimum: 0 }),
  },
  { additionalProperties: true },
);

const Fanout = T.Object({
  object: T.Literal("fanout"),
  thread: T.String({ description: "the parent thread" }),
  record: T.String({ description: "the fan-out record's id" }),
  join: T.String(),
  namespace: T.String(),
  status: oneOf(["none", "spawning", "in_progress", "ready_to_join", "done"]),
  complete: nullable(T.Object({ verdict: T.String(), at: UnixSecs })),
  children: T.Array(Child),
});

export function fanoutRoutes(table: FanoutTable) {
  return [
    route(
      {
        method: "GET",
        path: "/v1/fanouts/:thread",
        cls: "thread_read",
        summary: "A fan-out by its parent thread: subtasks, spawns, reports, the join",
        query: NO_QUERY,
        answers: { 200: { description: "the fan-out", schema: Fanout } },
        errors: { 404: "FANOUT_NOT_FOUND" },
      },
      ({ params }) => {
        const ref = params.thread;
        const f = typeof ref === "string" ? table.get(ref) : undefined;
        if (!f) throw new ApiError(404, "FANOUT_NOT_FOUND", `no fan-out on ${JSON.stringify(String(ref).slice(0, 100))} — start one with 'spl task fan-out <alias> --subtask ...'`);
        return json(200, {
          object: "fanout",
          thread: f.parent.thread,
          record: f.parent.id,
          join: f.join,
          namespace: f.namespace,
          status: table.status(f.parent.thread),
          complete: f.complete,
          children: f.children,
        });
      },
    ),
  ];
}

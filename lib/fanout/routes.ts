// GET /v1/fanouts/:thread: a fan-out as this member folds it, with how each attempt's send is going
// (`spl task join-status`).
import { ApiError, json } from "../api/http";
import { route } from "../api/route";
import { NO_QUERY, T, UnixSecs, nullable, oneOf } from "../api/schema";
import type { FanoutTable } from "./fold";
import type { SendState } from "./service";

const Result = T.Object(
  {
    index: T.Integer(),
    thread: T.String(),
    worker: T.String(),
    attempt: T.Integer({ minimum: 1 }),
    verdict: T.String(),
    cost_usd: T.Number(),
    wall_time_secs: T.Number(),
    summary: T.String(),
    reason: nullable(T.String({ description: "why it did not run or failed (unrouted, cancelled, failed)" })),
    fix: nullable(T.String()),
  },
  { additionalProperties: true },
);

const Attempt = T.Object({
  n: T.Integer({ minimum: 1 }),
  intend: T.String({ description: "the child INTEND this attempt sent" }),
  worker: T.String(),
  name: T.String(),
  at: UnixSecs,
  result: nullable(Result),
  superseded: T.Boolean({ description: "a retry or a cancel replaced it: its report never settles the child" }),
  send: nullable(
    T.Object({
      state: oneOf(["sending", "delivered"]),
      tries: T.Integer({ minimum: 0 }),
      next_at: nullable(T.Number()),
      error: nullable(T.String()),
    }),
  ),
});

const Child = T.Object(
  {
    index: T.Integer({ minimum: 0 }),
    thread: T.String(),
    goal: T.String(),
    target: T.String(),
    budget_usd: nullable(T.Number()),
    timeout_secs: T.Integer(),
    depends_on: T.Array(T.Integer()),
    attempts: T.Array(Attempt),
    spawned: nullable(T.Object({ worker: T.String(), name: T.String(), at: UnixSecs, attempt: T.Integer() })),
    result: nullable(Result),
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
  cancel: nullable(T.Object({ by: T.String(), reason: T.String(), at: UnixSecs })),
  complete: nullable(T.Object({ verdict: T.String(), at: UnixSecs })),
  children: T.Array(Child),
});

export function fanoutRoutes(table: FanoutTable, sends: { sendState(intend: string): SendState | null }) {
  return [
    route(
      {
        method: "GET",
        path: "/v1/fanouts/:thread",
        cls: "thread_read",
        summary: "A fan-out by its parent thread: subtasks, attempts, reports, the join",
        query: NO_QUERY,
        answers: { 200: { description: "the fan-out", schema: Fanout } },
        errors: { 404: "FANOUT_NOT_FOUND" },
      },
      ({ params }) => {
        const ref = params.thread;
        const f = typeof ref === "string" ? table.get(ref) : undefined;
        if (!f) throw new ApiError(404, "FANOUT_NOT_FOUND", `no fan-out on ${JSON.stringify(String(ref).slice(0, 100))} — start one with 'spl task fan-out <alias> --subtask ...'`);
        const children = f.children.map((c) => ({ ...c, attempts: c.attempts.map((a) => ({ ...a, send: sends.sendState(a.intend) })) }));
        return json(200, { object: "fanout", thread: f.parent.thread, record: f.parent.id, join: f.join, namespace: f.namespace, status: table.status(f.parent.thread), cancel: f.cancel, complete: f.complete, children });
      },
    ),
  ];
}

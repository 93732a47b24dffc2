// GET /v1/dispatches[?active=true][&limit=N]: dispatches from the dispatch fold, most recent
// first, with the reconciler's queue and slot counts (`spl dispatch list`).
import { json } from "../api/http";
import { route } from "../api/route";
import { QueryFlag, T, UnixSecs, listOf, nullable } from "../api/schema";
import type { ReconcilerService } from "./service";

const MAX_LIMIT = 10_000;

const Dispatch = T.Object(
  {
    intend: T.String({ description: "the INTEND record's id" }),
    thread: T.String(),
    target: T.String({ description: "the target DID" }),
    rule: T.String({ description: "the routing rule (or the default) that chose it" }),
    domain: T.String(),
    started_at: UnixSecs,
    finished_at: nullable(UnixSecs),
    success: nullable(T.Boolean()),
    latency_ms: nullable(T.Number()),
    completion_codepath: nullable(T.String()),
    failure_reason: nullable(T.String()),
  },
  { $id: "Dispatch" },
);

export function dispatchRoutes(service: ReconcilerService) {
  return [
    route(
      {
        method: "GET",
        path: "/v1/dispatches",
        cls: "status_read",
        summary: "Dispatches, most recent first, and the reconciler's counts",
        query: T.Object({
          active: QueryFlag("true: only dispatches not yet closed"),
          limit: T.Optional(T.Integer({ minimum: 0, maximum: MAX_LIMIT, default: 100, description: "at most this many (default 100)" })),
        }),
        answers: {
          200: {
            description: "the dispatches",
            schema: listOf(Dispatch, {
              total: T.Integer({ minimum: 0 }),
              active: T.Integer({ minimum: 0 }),
              reconciler: T.Object(
                { queued: T.Integer(), running: T.Integer(), waiting: T.Integer(), peak: T.Integer(), concurrency: T.Integer() },
                { additionalProperties: T.Integer(), description: "queue and slots, and the event counters (decided, dispatched, ...)" },
              ),
            }),
          },
        },
      },
      ({ query }) => {
        const table = service.dispatches;
        return json(200, {
          object: "list",
          data: table.list(query.active === true, query.limit!),
          total: table.size,
          active: table.active,
          reconciler: service.reconciler.stats,
        });
      },
    ),
  ];
}

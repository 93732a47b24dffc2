// Thread reads: GET /v1/threads, /v1/threads/:id/records, /v1/threads/:id/state.
import { toWire } from "../../records/wire";
import type { DaemonState } from "../state";
import { ApiError, json } from "../../api/http";
import { route } from "../../api/route";
import { NO_QUERY, PAGE_QUERY, RecordSchema, T, UnixSecs, nullable, oneOf, pageFrom, pageOf } from "../../api/schema";
import { RECENT_WINDOW } from "../../store/records";
import { THREAD_STATUS } from "../../capability";

const ThreadStatus = oneOf(["open", "closed"], { description: "closed by a fulfilling KNOW or a cancelling DO" });

export const ThreadSummary = T.Object(
  {
    thread: T.String(),
    record_count: T.Integer({ minimum: 1 }),
    first_seen: UnixSecs,
    last_seen: UnixSecs,
    status: ThreadStatus,
  },
  { $id: "ThreadSummary" },
);

const ThreadState = T.Object(
  {
    thread: T.String(),
    record_count: T.Integer({ minimum: 1 }),
    last_clock: nullable(T.Integer({ minimum: 0 })),
    actor_clocks: T.Object({}, { additionalProperties: T.Integer(), description: "actor DID → its highest clock on the thread" }),
    status: ThreadStatus,
  },
  { $id: "ThreadState" },
);

export function threadRoutes(state: DaemonState) {
  // A capability's own view of its threads' status (a task's thread follows the task).
  const statusOf = <S extends { thread: string; status: "open" | "closed" }>(t: S): S => ({ ...t, status: state.find(THREAD_STATUS)?.(t.thread) ?? t.status });
  const noThread = (id: string) => new ApiError(404, "THREAD_NOT_FOUND", `no records on thread ${id} — 'spl thread list' shows the threads`);
  return [
    route(
      {
        method: "GET",
        path: "/v1/threads",
        cls: "thread_read",
        summary: "Threads with record counts and status, in the order they began; or the most recently written",
        query: T.Object({
          ...PAGE_QUERY,
          order: T.Optional(
            oneOf(["first_seen", "recent"], {
              description: `first_seen (default): every thread, paged; recent: the threads of the newest ${RECENT_WINDOW} records, latest first, one page (limit applies, after does not)`,
            }),
          ),
        }),
        answers: { 200: { description: "a page of threads", schema: pageOf(ThreadSummary) } },
      },
      ({ query }) => {
        const { limit, after } = pageFrom(query);
        if (query.order === "recent") return json(200, { object: "list", data: state.store.recentThreads(limit).map(statusOf), has_more: false, next_cursor: null });
        const page = state.store.threads(after, limit);
        return json(200, { object: "list", ...page, data: page.data.map(statusOf) });
      },
    ),
    route(
      {
        method: "GET",
        path: "/v1/threads/:id/records",
        cls: "thread_read",
        summary: "A page of one thread's records",
        query: T.Object(PAGE_QUERY),
        answers: { 200: { description: "a page of the thread's records, in store order", schema: pageOf(RecordSchema) } },
        errors: { 404: "THREAD_NOT_FOUND" },
      },
      ({ params, query, caller }) => {
        state.gate.checkRead(caller, params.id!);
        const { limit, after } = pageFrom(query);
        const page = state.store.list({ thread: params.id!, limit, after });
        if (!page.data.length && after === 0 && !state.store.threadState(params.id!)) throw noThread(params.id!);
        return json(200, { object: "list", data: page.data.map(toWire), has_more: page.has_more, next_cursor: page.next_cursor });
      },
    ),
    route(
      {
        method: "GET",
        path: "/v1/threads/:id/state",
        cls: "thread_read",
        summary: "A thread's folded state",
        query: NO_QUERY,
        answers: { 200: { description: "the thread's state", schema: ThreadState } },
        errors: { 404: "THREAD_NOT_FOUND" },
      },
      ({ params, caller }) => {
        state.gate.checkRead(caller, params.id!);
        const s = state.store.threadState(params.id!);
        if (!s) throw noThread(params.id!);
        return json(200, statusOf(s));
      },
    ),
  ];
}

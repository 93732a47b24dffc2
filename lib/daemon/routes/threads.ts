// Thread reads: GET /v1/threads, /v1/threads/:id/records, /v1/threads/:id/state.
import { toWire } from "../../records/wire";
import type { DaemonState } from "../state";
import { ApiError, json, pageParams } from "../../api/http";
import { PAGE_QUERY, route } from "../../api/route";
import { THREAD_STATUS } from "../../capability";

export function threadRoutes(state: DaemonState) {
  // A capability's own view of its threads' status (a task's thread follows the task).
  const statusOf = <T extends { thread: string; status: "open" | "closed" }>(t: T): T => ({ ...t, status: state.find(THREAD_STATUS)?.(t.thread) ?? t.status });
  const noThread = (id: string) =>
    new ApiError(404, "THREAD_NOT_FOUND", `no records on thread ${id} — 'spl thread list' shows the threads`);
  return [
    route({ method: "GET", path: "/v1/threads", cls: "thread_read", doc: { summary: "Threads with record counts and status", query: PAGE_QUERY } }, ({ query }) => {
      const { limit, after } = pageParams(query);
      const page = state.store.threads(after, limit);
      return json(200, { object: "list", ...page, data: page.data.map(statusOf) });
    }),
    route({ method: "GET", path: "/v1/threads/:id/records", cls: "thread_read", doc: { summary: "A page of one thread's records", query: PAGE_QUERY } }, ({ params, query, caller }) => {
      state.gate.checkRead(caller, params.id!);
      const { limit, after } = pageParams(query);
      const page = state.store.list({ thread: params.id!, limit, after });
      if (!page.data.length && after === 0 && !state.store.threadState(params.id!)) throw noThread(params.id!);
      return json(200, { object: "list", data: page.data.map(toWire), has_more: page.has_more, next_cursor: page.next_cursor });
    }),
    route({ method: "GET", path: "/v1/threads/:id/state", cls: "thread_read", doc: { summary: "A thread's folded state" } }, ({ params, caller }) => {
      state.gate.checkRead(caller, params.id!);
      const s = state.store.threadState(params.id!);
      if (!s) throw noThread(params.id!);
      return json(200, statusOf(s));
    }),
  ];
}

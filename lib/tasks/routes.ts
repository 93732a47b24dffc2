// Task reads: GET /v1/tasks (open tasks; ?all=true adds approved and cancelled) and
// GET /v1/tasks/:ref (alias, any case, or thread id). Task writes are ordinary records.
import { ApiError, json } from "../api/http";
import { route } from "../api/route";
import type { TaskTable } from "./fold";

export function taskRoutes(tasks: TaskTable) {
  return [
    route({ method: "GET", path: "/v1/tasks", cls: "thread_read", doc: { summary: "Open tasks", query: { all: "true adds approved and cancelled tasks" } } }, ({ query }) => {
      const all = query.all ?? "false";
      if (all !== "true" && all !== "false") throw new ApiError(400, "INVALID_QUERY", `all must be true or false, got ${JSON.stringify(all.slice(0, 40))} — e.g. /v1/tasks?all=true`);
      return json(200, { object: "list", data: tasks.list(all === "true") });
    }),
    route({ method: "GET", path: "/v1/tasks/:ref", cls: "thread_read", doc: { summary: "One task by alias (any case) or thread id" } }, ({ params }) => {
      const ref = params.ref;
      // The router gives null for a path segment that is not valid percent-encoding.
      if (typeof ref !== "string") throw new ApiError(400, "INVALID_TASK_REF", "the task reference is not valid percent-encoding — give an alias such as TSK-0001 or a thread id");
      const task = tasks.get(ref);
      if (!task) throw new ApiError(404, "TASK_NOT_FOUND", `no task ${JSON.stringify(ref.slice(0, 100))} — 'spl task list --all' shows the aliases`);
      return json(200, task);
    }),
  ];
}

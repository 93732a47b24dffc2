// Task reads: GET /v1/tasks (open tasks; ?all=true adds approved and cancelled) and
// GET /v1/tasks/:ref (alias, any case, or thread id). Task writes are ordinary records.
import { ApiError, json } from "../api/http";
import { route } from "../api/route";
import { NO_QUERY, QueryFlag, T, UnixSecs, listOf, nullable, oneOf } from "../api/schema";
import type { TaskTable } from "./fold";
import { PRIORITIES, TASK_STATUSES } from "./lifecycle";

const TaskStatus = oneOf(TASK_STATUSES);

const Task = T.Object(
  {
    alias: T.String({ description: "e.g. TSK-0001" }),
    thread: T.String(),
    goal: T.String(),
    status: TaskStatus,
    priority: oneOf(PRIORITIES),
    labels: T.Array(T.String()),
    assignee: nullable(T.String()),
    domain: T.String(),
    namespace: T.String(),
    criteria: nullable(T.String()),
    depends_on: T.Array(T.String()),
    created_by: T.String(),
    created_at: UnixSecs,
    updated_at: UnixSecs,
    done_by: nullable(T.String({ description: "who ran the last done: the one who may not judge it" })),
    commit: nullable(T.String()),
    repo: nullable(T.String()),
    forced: T.Boolean(),
    history: T.Array(
      T.Object({
        record: T.String(),
        sequence: T.Integer(),
        at: UnixSecs,
        actor: T.String(),
        event: T.String({ description: "add, or the verb (start, done, approve...)" }),
        from: nullable(TaskStatus),
        to: TaskStatus,
        note: T.Optional(T.String()),
      }),
    ),
  },
  { $id: "Task" },
);

export function taskRoutes(tasks: TaskTable) {
  return [
    route(
      {
        method: "GET",
        path: "/v1/tasks",
        cls: "thread_read",
        summary: "Tasks: the open ones, or all",
        query: T.Object({ all: QueryFlag("true adds approved and cancelled tasks") }),
        answers: { 200: { description: "the tasks", schema: listOf(Task) } },
      },
      ({ query }) => json(200, { object: "list", data: tasks.list(query.all === true) }),
    ),
    route(
      {
        method: "GET",
        path: "/v1/tasks/:ref",
        cls: "thread_read",
        summary: "One task by alias (any case) or thread id",
        query: NO_QUERY,
        answers: { 200: { description: "the task", schema: Task } },
        errors: { 400: "INVALID_TASK_REF: not valid percent-encoding", 404: "TASK_NOT_FOUND" },
      },
      ({ params }) => {
        const ref = params.ref;
        // The router gives null for a path segment that is not valid percent-encoding.
        if (typeof ref !== "string") throw new ApiError(400, "INVALID_TASK_REF", "the task reference is not valid percent-encoding — give an alias such as TSK-0001 or a thread id");
        const task = tasks.get(ref);
        if (!task) throw new ApiError(404, "TASK_NOT_FOUND", `no task ${JSON.stringify(ref.slice(0, 100))} — 'spl task list --all' shows the aliases`);
        return json(200, task);
      },
    ),
  ];
}

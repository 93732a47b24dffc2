// Tasks (README "Tasks"): threads opened by an INTEND with body.task = true, moved through their
// status machine by DO/KNOW records. This capability adds the task folds, the write check that
// refuses a transition the machine does not allow (staged per transaction, so a batch can open a
// task and start it), GET /v1/tasks, CEL task(), and [tasks] alias_prefix.
import { badValue, type ConfigSection } from "../config";
import { ApiError } from "../api/http";
import { slot, THREAD_STATUS, type Capability } from "../capability";
import { toCelValue } from "../engine/cel-values";
import type { FactProvider } from "../engine/vocabulary";
import { DEFAULT_ALIAS_PREFIX, TaskTable, taskFacts, taskFolds, type TaskFacts } from "./fold";
import { taskRoutes } from "./routes";

export const tasksSection: ConfigSection<{ aliasPrefix: string }> = {
  name: "tasks",
  keys: ["alias_prefix"],
  parse(raw, file) {
    const p = raw?.alias_prefix ?? DEFAULT_ALIAS_PREFIX;
    if (typeof p !== "string" || !/^[A-Za-z][A-Za-z0-9_]{0,15}$/.test(p)) badValue(file, "tasks", "alias_prefix", 'letters, digits and _ starting with a letter, e.g. "TSK"');
    return { aliasPrefix: p as string };
  },
  show: (v) => ({ alias_prefix: v.aliasPrefix }),
  template: (v) => `[tasks]
# Tasks added without --alias get <alias_prefix>-0001, <alias_prefix>-0002...
alias_prefix = ${JSON.stringify(v.aliasPrefix)}`,
};

/** The task table, for whoever needs tasks beside CEL (tests, the console). */
export const TASKS = slot<TaskTable>("tasks");

export interface TaskLookup {
  get(ref: string): TaskFacts | undefined;
  list(): TaskFacts[];
}

/** task(ref) and the health checks' `tasks`: every task's facts, by upper-cased alias and by thread. */
export const TASK_FACTS: FactProvider<TaskLookup, Array<[string, TaskFacts]>> = {
  name: "tasks",
  empty: { get: () => undefined, list: () => [] },
  restore(rows) {
    const byRef = new Map(rows);
    return { get: (ref) => byRef.get(ref.toUpperCase()) ?? byRef.get(ref), list: () => [...new Set(byRef.values())] };
  },
};

// A missing task reads as {exists: false, status: ""...}, so `task("X").status == "approved"` is just false.
const NO_TASK = { status: "", priority: "", assigned_to: "", age_secs: 0, cost_usd: 0, exists: false };

export const tasksCapability: Capability = {
  name: "tasks",
  config: tasksSection,
  cel: [{ signature: "task(string): map", facts: TASK_FACTS, call: (t: TaskLookup, _, ref: string) => toCelValue(t.get(ref) ?? NO_TASK) }],
  setup(host) {
    const table = new TaskTable(host.config(tasksSection).aliasPrefix);
    host.provide(TASKS, table);
    // A task's thread is open until the task is approved or cancelled (README "Tasks").
    host.provide(THREAD_STATUS, (thread) => {
      const task = table.get(thread);
      return task ? (task.status === "approved" || task.status === "cancelled" ? "closed" : "open") : undefined;
    });
    return {
      folds: taskFolds(table),
      routes: taskRoutes(table),
      writeChecks: [
        {
          name: "task transitions",
          phase: "state",
          // Against the table plus records accepted earlier in this transaction.
          check(rec) {
            const refusal = table.check(rec);
            if (refusal) throw new ApiError(refusal.status, refusal.code, refusal.message);
          },
          stage: (rec) => void table.stage(rec),
          unstage: (recs) => table.unstage(recs),
          settle: () => table.settle(),
        },
      ],
      facts: [
        {
          provider: TASK_FACTS,
          live: (nowSecs) => ({
            get: (ref: string) => {
              const t = table.get(ref);
              return t && taskFacts(t, nowSecs);
            },
            list: () => table.list(true).map((t) => taskFacts(t, nowSecs)),
          }),
          snapshot: (nowSecs) =>
            table.list(true).flatMap((t) => {
              const facts = taskFacts(t, nowSecs);
              return [[t.alias.toUpperCase(), facts], [t.thread, facts]] as Array<[string, TaskFacts]>;
            }),
        },
      ],
    };
  },
};

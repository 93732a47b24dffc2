// Fan-out (README "Fan-out"): a parent INTEND with subtasks is spread over the fleet's workers and
// joined when its predicate holds. This capability adds the fan-out folds (so a restart resumes
// them), the coordinator's service that spawns, times out, joins and cancels, the worker's
// service that reports each child it was sent back through a durable outbox, the write check of
// who may write what about a fan-out, GET /v1/fanouts/:thread, CEL fanout_status(), and the
// pending list `fleet status` shows.
import type { Capability } from "../capability";
import type { FactProvider } from "../engine/vocabulary";
import { FANOUTS, FLEET } from "../fleet/contract";
import { TASKS } from "../tasks/capability";
import { FanoutTable, fanoutFolds, type FanoutState } from "./fold";
import { fanoutGuard } from "./guard";
import { Outbox, reportService } from "./outbox";
import { fanoutRoutes } from "./routes";
import { fanoutService } from "./service";

/** fanout_status(thread): none | spawning | in_progress | ready_to_join | done, by parent thread. */
export const FANOUT_FACTS: FactProvider<(thread: string) => FanoutState, Array<[string, FanoutState]>> = {
  name: "fanouts",
  empty: () => "none",
  restore(rows) {
    const byThread = new Map(rows);
    return (thread) => byThread.get(thread) ?? "none";
  },
};

export const fanoutCapability: Capability = {
  name: "fanout",
  cel: [{ signature: "fanout_status(string): string", facts: FANOUT_FACTS, call: (status: (t: string) => FanoutState, _, thread: string) => status(thread) }],
  setup(host) {
    const table = new FanoutTable();
    const outbox = new Outbox();
    const tasks = host.use(TASKS);
    host.provide(FANOUTS, {
      pending: () =>
        table.pending().map((f) => ({
          thread: f.parent.thread,
          record: f.parent.id,
          join: f.join,
          subtasks: f.children.length,
          spawned: f.children.filter((c) => c.spawned || c.result).length,
          completed: f.children.filter((c) => c.result).length,
        })),
    });
    const coordinator = fanoutService(host, () => host.use(FLEET), table);
    return {
      folds: [...fanoutFolds(table), ...outbox.folds()],
      services: [coordinator, reportService(host, outbox)],
      routes: fanoutRoutes(table, coordinator),
      writeChecks: [
        fanoutGuard(table, (f) => {
          const task = tasks.get(f.parent.thread);
          return [f.parent.actor, ...(task ? [task.created_by, ...(task.assignee ? [task.assignee] : [])] : [])];
        }),
      ],
      facts: [{ provider: FANOUT_FACTS, live: () => (thread: string) => table.status(thread), snapshot: () => table.statuses() }],
    };
  },
};

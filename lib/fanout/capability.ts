// Fan-out (README "Fan-out"): a parent INTEND with subtasks is spread over the fleet's workers and
// joined when its predicate holds. This capability adds the fan-out folds (so a restart resumes
// them), the service that spawns, times out and joins (and reports a worker's children back),
// GET /v1/fanouts/:thread, CEL fanout_status(), and the pending list `fleet status` shows.
import type { Capability } from "../capability";
import type { FactProvider } from "../engine/vocabulary";
import { FANOUTS, FLEET } from "../fleet/contract";
import { FanoutTable, fanoutFolds, type FanoutState } from "./fold";
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
    return {
      folds: fanoutFolds(table),
      services: [fanoutService(host, () => host.use(FLEET), table)],
      routes: fanoutRoutes(table),
      facts: [{ provider: FANOUT_FACTS, live: () => (thread: string) => table.status(thread), snapshot: () => table.statuses() }],
    };
  },
};

// What the running daemon knows about itself; shared by routes, lifecycle and engine hooks.
import type { Database } from "bun:sqlite";
import type { SplConfig } from "../config";
import type { Logger } from "../log";
import type { HomePaths } from "../paths";
import type { RecordStore } from "../store/records";
import type { StoredRecord } from "../records/types";
import { IngestQueue } from "./ingest";
import { Engine } from "../engine/runtime";
import { TASK_FOLDS } from "../engine/folds";
import { engineCommitHook } from "./engine-boot";
import { daemonServices, type Service } from "./services";
import type { BackupInfo } from "../backup/startup";
import { StorageHealth } from "./storage-health";
import { reconcilerService, type ReconcilerService } from "../dispatch/service";
import { DispatchTable, dispatchFold } from "../dispatch/fold";
import { fleetMember, type FleetMember } from "../fleet/config";
import { FleetRegistry, registryFold } from "../fleet/registry";
import { FleetControl, controlFold } from "../fleet/control";
import { fleetControlPuller } from "../fleet/control-sync";
import { heartbeatService, type HeartbeatService } from "../fleet/heartbeat";
import { readFleetToken } from "../fleet/token";
import { VERSION } from "../version";
import { offsiteService, type OffsiteService } from "../backup/offsite/service";
import { Metrics } from "./metrics";
import { FanoutTable, fanoutFolds } from "../fanout/fold";
import { fanoutService } from "../fanout/service";
import { BodyBudget } from "./body-budget";

export type { BackupInfo };

export interface DaemonState {
  paths: HomePaths;
  config: SplConfig;
  log: Logger;
  db: Database;
  store: RecordStore;
  ingest: IngestQueue;
  /** Last write error and checkpoint progress (GET /v1/status `storage`). */
  storage: StorageHealth;
  instanceDid: string;
  startedAt: number;
  bind: { host: string; port: number };
  backup: BackupInfo | null;
  /** false until rebuild_from_store() has finished; /health answers 503 meanwhile. */
  ready: boolean;
  /** Requests that arrived on the Unix socket (trusted by file mode) rather than TCP. */
  viaSocket: WeakSet<Request>;
  /** Derived state folded from the log: engine config, trust, API tokens (lib/engine/runtime.ts). */
  engine: Engine;
  /** `spl serve --insecure-localhost`: TCP without bearer auth, bound to loopback only. */
  auth: { insecureLocalhost: boolean };
  /** Background services (WAL checkpoint thread, ...): started once ready, stopped in reverse on SIGTERM. */
  services: Service[];
  /** Routes committed INTENDs and dispatches them (one of the services; GET /v1/dispatches reads it). */
  reconciler: ReconcilerService;
  /** This daemon's place in the fleet, the registry it folds, and its heartbeat loop (lib/fleet). */
  fleet: { member: FleetMember; registry: FleetRegistry; heartbeat: HeartbeatService; control: FleetControl };
  /** Pushes off-host backups on schedule ([backup.offsite]); null when not configured. */
  offsite: OffsiteService | null;
  /** Counters and histograms for GET /metrics (no-ops when [metrics] enabled = false). */
  metrics: Metrics;
  /** Fan-outs held by this member (the coordinator) and the service that spawns and joins them. */
  fanout: { table: FanoutTable; service: Service };
  /** holes25: memory for request bodies in flight, `[server] max_body_memory` (body-budget.ts). */
  bodies: BodyBudget;
}

/**
 * The state of a daemon over an open store, before rebuild_from_store() (ready = false). serve.ts
 * builds the running daemon's with it, and tests build an in-process one the same way.
 */
export function createDaemonState(o: {
  paths: HomePaths;
  config: SplConfig;
  log: Logger;
  store: RecordStore;
  instanceDid: string;
  bind: DaemonState["bind"];
  backup?: BackupInfo | null;
  insecureLocalhost?: boolean;
}): DaemonState {
  // Every commit feeds the engine's folds, then each service; both exist once the state does.
  let engineHook = (_: StoredRecord[]) => {};
  const storage = new StorageHealth(o.store.db, o.paths.store, o.log.child("spl::store"));
  const dispatches = new DispatchTable();
  const registry = new FleetRegistry();
  const control = new FleetControl();
  const fanouts = new FanoutTable();
  const engine = new Engine(o.store, o.log, { extraFolds: [...TASK_FOLDS, dispatchFold(dispatches), registryFold(registry), controlFold(control), ...fanoutFolds(fanouts)], taskAliasPrefix: o.config.tasks.aliasPrefix, fleetFacts: (nowMs) => control.facts(nowMs), fanouts });
  const startedAt = Date.now();
  const reconciler = reconcilerService({ engine, dispatches, config: o.config, log: o.log, startedAt, submit: (records) => state.ingest.submit(records), mayStartWork: (rec) => control.mayStartWork(rec.body.namespace) });
  const state: DaemonState = {
    paths: o.paths,
    config: o.config,
    log: o.log,
    db: o.store.db,
    store: o.store,
    ingest: new IngestQueue(o.store, (created) => {
      state.metrics.committed(created.length);
      engineHook(created);
      for (const s of state.services) s.afterCommit?.(created);
    }, o.log, (err) => {
      storage.failed("write", err);
      state.engine.tasks.settle(); // the task records staged in that transaction were not written
    }),
    storage,
    instanceDid: o.instanceDid,
    startedAt,
    bind: o.bind,
    backup: o.backup ?? null,
    ready: false,
    viaSocket: new WeakSet(),
    engine,
    auth: { insecureLocalhost: o.insecureLocalhost === true },
    services: [],
    reconciler,
    fleet: { member: fleetMember(o.config.fleet, o.bind, o.paths.home), registry, heartbeat: null as unknown as HeartbeatService, control },
    offsite: o.config.backup.offsite ? offsiteService({ paths: o.paths, config: o.config.backup.offsite, log: o.log }) : null,
    metrics: new Metrics(o.config.metrics.enabled),
    fanout: { table: fanouts, service: null as unknown as Service },
    bodies: new BodyBudget(o.config.server.maxBodyMemory), // holes25
  };
  const pullControl = fleetControlPuller(state);
  state.fanout.service = fanoutService(state, fanouts);
  state.fleet.heartbeat = heartbeatService({
    member: state.fleet.member,
    instanceDid: o.instanceDid,
    version: VERSION,
    startedAt,
    storeRecords: () => o.store.counts.records,
    activeDispatches: () => dispatches.active,
    submitLocal: async (rec) => {
      const [r] = await state.ingest.submit([rec]);
      if (r!.status === "error") throw r!.error;
    },
    fleetToken: () => readFleetToken(o.paths.home),
    afterAck: (token) => pullControl(token),
    log: o.log,
  });
  engineHook = engineCommitHook(state);
  state.services = daemonServices(state);
  return state;
}

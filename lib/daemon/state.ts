// The running daemon: the store, the write path, the gate, the engine, and what every capability
// of the list adds (ARCHITECTURE.md "Capabilities"). Assembled the same way for the real daemon
// (serve.ts) and for in-process tests; nothing here knows any one capability.
import type { Database } from "bun:sqlite";
import type { CredentialSource, WriteAs } from "../api/caller";
import type { Route } from "../api/route";
import type { BackupInfo } from "../backup/startup";
import type { Capability, Host, Parts, Service, Slot, WriteCheck } from "../capability";
import { CAPABILITIES } from "../capabilities";
import { CORE_SECTIONS, sectionOf, type ConfigSection, type SplConfig } from "../config";
import { Engine } from "../engine/runtime";
import { ENGINE_ACTOR } from "../instance";
import type { Logger } from "../log";
import type { HomePaths } from "../paths";
import { PeerClient } from "../peer";
import { prepareRecord } from "../records/envelope";
import { CORE_RESERVED_THREADS, type ReservedThread } from "../records/reserved-threads";
import { IngestQueue } from "../store/ingest-queue";
import type { RecordStore } from "../store/records";
import { Gate, tcpAuthRequired } from "./access";
import { isLoopback } from "../net";
import { BodyBudget } from "./body-budget";
import { Metrics } from "./metrics";
import { walCheckpointer } from "./services";
import { StorageHealth } from "./storage-health";
import { actorBindingCheck, openRouteCheck, permissionRuleCheck, reservedThreadCheck } from "./write-checks";

export type { BackupInfo };

export interface DaemonState {
  paths: HomePaths;
  config: SplConfig;
  log: Logger;
  db: Database;
  store: RecordStore;
  /** The one write path: group commit, with every write check for a caller's records. */
  ingest: IngestQueue<WriteAs>;
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
  /** The client address of TCP requests routed by Elysia (GET /health answers a remote one less). */
  tcpPeers: WeakMap<Request, string>;
  /** Derived state folded from the log: engine config, trust, API tokens (lib/engine/runtime.ts). */
  engine: Engine;
  /** `spl serve --insecure-localhost`: TCP without bearer auth, bound to loopback only. */
  auth: { insecureLocalhost: boolean };
  /** Identity, scopes and permission rules for every request (access.ts). */
  gate: Gate;
  /** Background services (the WAL checkpoint thread, then each capability's): started once ready, stopped in reverse on SIGTERM. */
  services: Service[];
  /** Counters and histograms for GET /metrics (no-ops when [metrics] enabled = false). */
  metrics: Metrics;
  /** Memory for request bodies in flight, `[server] max_body_memory` (body-budget.ts). */
  bodies: BodyBudget;
  /** What each capability of the list added, in list order. */
  capabilities: Array<{ capability: Capability; parts: Parts }>;
  /** The routes the capabilities added (the daemon's own are in app.ts). */
  routes: Route[];
  /** What the capabilities handed each other (and tests read): Host.provide/use. */
  use<T>(s: Slot<T>): T;
  /** The same, when no capability may have provided it. */
  find<T>(s: Slot<T>): T | undefined;
  /** Whether TCP requests need a bearer token right now. */
  tcpAuthRequired(): boolean;
  /** Every config.toml table as this daemon read it (GET /v1/config `sections`). */
  sectionsShown(): Record<string, unknown>;
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
  /** The capability list (default: lib/capabilities.ts). */
  capabilities?: readonly Capability[];
}): DaemonState {
  const list = o.capabilities ?? CAPABILITIES;
  const startedAt = Date.now();
  const storage = new StorageHealth(o.store.db, o.paths.store, o.log.child("spl::store"));
  const engine = new Engine(o.store, o.log);
  const metrics = new Metrics(o.config.metrics.enabled);
  const reserved: ReservedThread[] = [...CORE_RESERVED_THREADS, ...list.flatMap((c) => c.reservedThreads ?? [])];
  const viaSocket = new WeakSet<Request>();
  const auth = { insecureLocalhost: o.insecureLocalhost === true };
  const needsToken = () => tcpAuthRequired({ insecureLocalhost: auth.insecureLocalhost, authRequired: engine.config.authRequired, bindHost: o.bind.host });
  const credentials: CredentialSource[] = [];
  const gate = new Gate({ engine, log: o.log, metrics, operator: o.config.identity.actor, startedAt, viaSocket, tcpAuthRequired: needsToken, reserved, credentials });
  let authBefore = engine.config.authRequired;
  const ingest = new IngestQueue<WriteAs>(
    o.store,
    (created) => {
      metrics.committed(created.length);
      engine.applyCommitted(created);
      warnIfAuthDropped(state, authBefore);
      authBefore = engine.config.authRequired;
      for (const s of state.services) s.afterCommit?.(created);
    },
    o.log,
    (err) => storage.failed("write", err),
  );

  const provided = new Map<string, unknown>();
  const peers = new PeerClient();
  let ready = false;
  let state: DaemonState;
  const host = (c: Capability): Host => ({
    instanceDid: o.instanceDid,
    startedAt,
    paths: o.paths,
    bind: o.bind,
    operator: o.config.identity.actor,
    log: o.log,
    now: () => Date.now(),
    store: o.store,
    engine,
    peers,
    ready: () => ready,
    config: (section) => sectionOf(o.config, section),
    submit: (records, as) => ingest.submit(records, as),
    async write(d) {
      const [r] = await ingest.submit([prepareRecord({ actor: ENGINE_ACTOR, ...d })]);
      if (r!.status === "error") throw r!.error;
      return r!.record;
    },
    provide(s, value) {
      if (provided.has(s.name)) throw new Error(`capability ${c.name} provides ${s.name}, which another capability already provides`);
      provided.set(s.name, value);
    },
    use: (s) => use(s, `capability ${c.name}`),
    find: (s) => provided.get(s.name) as never,
  });
  const use = <T>(s: Slot<T>, who: string): T => {
    if (!provided.has(s.name)) throw new Error(`${who} needs ${s.name}, which no capability before it in lib/capabilities.ts provides`);
    return provided.get(s.name) as T;
  };

  // A bad value in any section stops the start here, naming the key.
  const sections: ConfigSection<unknown>[] = [...CORE_SECTIONS, ...list.flatMap((c) => (c.config ? [c.config] : []))];
  for (const s of sections) sectionOf(o.config, s);

  const capabilities = list.map((capability) => ({ capability, parts: capability.setup(host(capability)) }));
  const checks: WriteCheck[] = [openRouteCheck(), reservedThreadCheck(reserved), actorBindingCheck(gate), permissionRuleCheck(gate)];
  for (const { parts } of capabilities) {
    if (parts.credentials) credentials.push(parts.credentials);
    engine.addFolds(parts.folds ?? []);
    engine.addFacts(parts.facts ?? []);
    checks.push(...(parts.writeChecks ?? []));
  }
  ingest.useChecks(checks);
  engine.open(); // every fold is known: the fold index follows them from the next write on

  state = {
    paths: o.paths,
    config: o.config,
    log: o.log,
    db: o.store.db,
    store: o.store,
    ingest,
    storage,
    instanceDid: o.instanceDid,
    startedAt,
    bind: o.bind,
    backup: o.backup ?? null,
    get ready() {
      return ready;
    },
    set ready(v: boolean) {
      ready = v;
    },
    viaSocket,
    tcpPeers: new WeakMap(),
    engine,
    auth,
    gate,
    metrics,
    bodies: new BodyBudget(o.config.server.maxBodyMemory),
    capabilities,
    services: [storage, walCheckpointer(o.store.db, o.paths.store, storage), metrics.rates, ...capabilities.flatMap(({ parts }) => parts.services ?? [])],
    routes: capabilities.flatMap(({ parts }) => parts.routes ?? []),
    use: (s) => use(s, "the daemon"),
    find: (s) => provided.get(s.name) as never,
    tcpAuthRequired: needsToken,
    sectionsShown: () => Object.fromEntries(sections.map((s) => [s.name, (s.show ?? ((v: unknown) => v))(sectionOf(o.config, s))])),
  };
  return state;
}

/** auth_required=false on a non-loopback bind is ignored; say so when a LEARN turns it off. */
function warnIfAuthDropped(state: DaemonState, before: boolean | null | undefined): void {
  const { engine, log } = state;
  const { host, port } = state.bind;
  if (engine.config.authRequired === false && before !== false && !state.auth.insecureLocalhost && !isLoopback(host)) {
    log.warn("auth_required=false ignored: this daemon listens on a non-loopback address, where bearer auth stays on", { bind: `${host}:${port}` });
  }
}

// Liveness and status: GET /health (never gated) and GET /v1/status. /health answers anyone, so
// to a client on another host it leaves out the pid and the paths (README "HTTP API").
import { VERSION } from "../../version";
import { isLoopback } from "../../net";
import { storeUrl } from "../../paths";
import type { DaemonState } from "../state";
import { json } from "../../api/http";
import { route } from "../../api/route";
import { AnyObject, NO_QUERY, T, nullable } from "../../api/schema";

const Health = T.Object(
  {
    status: T.Literal("ok"),
    version: T.String(),
    records: T.Integer({ minimum: 0 }),
    threads: T.Integer({ minimum: 0 }),
    instance_did: T.String(),
    pid: T.Optional(T.Integer({ description: "to the socket and loopback clients only" })),
    home: T.Optional(T.String({ description: "to the socket and loopback clients only" })),
    store: T.Optional(T.String({ description: "sqlite://<path>; to the socket and loopback clients only" })),
    uptime_secs: T.Integer({ minimum: 0 }),
  },
  { $id: "Health" },
);

const TimeOrNull = nullable(T.String({ description: "ISO 8601" }));

const Status = T.Composite(
  [
    Health,
    T.Object({
      bind: T.String({ description: "host:port of the TCP listener" }),
      socket: T.String(),
      memory: T.Object({ rss_bytes: T.Integer(), heap_used_bytes: T.Integer() }),
      active_threads: T.Integer({ minimum: 0 }),
      backup: nullable(
        T.Object(
          {
            path: T.String(),
            outcome: T.String({ description: '"written", "in progress: …" while it is written, or "FAILED: <why>"' }),
            written_at: TimeOrNull,
            records: nullable(T.Integer()),
          },
          { description: "this start's startup backup (null: a new store has none)" },
        ),
      ),
      storage: T.Object({
        wal_bytes: T.Integer({ minimum: 0 }),
        last_checkpoint_at: TimeOrNull,
        checkpoint_ok: nullable(T.Boolean()),
        last_error: nullable(T.Object({ at: T.String(), during: T.String(), message: T.String() })),
        log: AnyObject,
      }),
      permissions_enabled: T.Boolean(),
      log_path: T.String(),
    }),
  ],
  { $id: "Status", additionalProperties: true, description: "and each capability's own fields (offsite: off-host backups)" },
);

export function healthBody(state: DaemonState) {
  const { records, threads } = state.store.counts;
  return {
    status: "ok",
    version: VERSION,
    records,
    threads,
    instance_did: state.instanceDid,
    pid: process.pid,
    home: state.paths.home,
    store: storeUrl(state.paths.store),
    uptime_secs: Math.floor((Date.now() - state.startedAt) / 1000),
  };
}

export function healthRoutes(state: DaemonState) {
  return [
    route(
      {
        method: "GET",
        path: "/health",
        cls: "open",
        summary: "Liveness: status, version, records and threads (503 while starting); pid and paths only to the socket and loopback clients",
        query: NO_QUERY,
        answers: {
          200: { description: "the daemon serves", schema: Health },
          503: { description: "the daemon is starting (rebuilding its state)", schema: T.Object({ status: T.Literal("starting"), pid: T.Optional(T.Integer()), home: T.Optional(T.String()) }) },
        },
      },
      ({ request }) => {
        const peer = state.tcpPeers.get(request);
        const local = state.viaSocket.has(request) || (peer !== undefined && isLoopback(peer)); // a peer not known is not local
        if (!state.ready) return json(503, local ? { status: "starting", pid: process.pid, home: state.paths.home } : { status: "starting" });
        const body = healthBody(state);
        if (local) return json(200, body);
        const { pid: _p, home: _h, store: _s, ...open } = body;
        return json(200, open);
      },
    ),
    route(
      {
        method: "GET",
        path: "/v1/status",
        cls: "status_read",
        summary: "Health plus memory, active threads, backup, storage, bind, log path and each capability's fields",
        query: NO_QUERY,
        answers: { 200: { description: "the daemon's status", schema: Status } },
      },
      () => {
        const mem = process.memoryUsage();
        return json(200, {
          ...healthBody(state),
          bind: `${state.bind.host}:${state.bind.port}`,
          socket: state.paths.socket,
          memory: { rss_bytes: mem.rss, heap_used_bytes: mem.heapUsed },
          active_threads: state.store.activeThreads(),
          backup: state.backup,
          storage: state.storage.status(),
          permissions_enabled: state.engine.config.permissionsEnabled,
          log_path: state.paths.log,
          // What each capability reports about itself (e.g. `offsite`).
          ...Object.assign({}, ...state.capabilities.map(({ parts }) => parts.status?.() ?? {})),
        });
      },
    ),
  ];
}

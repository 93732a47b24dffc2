// Liveness and status: GET /health (never gated) and GET /v1/status.
import { VERSION } from "../../version";
import { storeUrl } from "../../paths";
import type { DaemonState } from "../state";
import { json } from "../../api/http";
import { route } from "../../api/route";

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
    route({ method: "GET", path: "/health", cls: "open", doc: { summary: "Liveness: status, version, records and threads (503 while starting)" } }, () =>
      state.ready ? json(200, healthBody(state)) : json(503, { status: "starting", pid: process.pid, home: state.paths.home }),
    ),
    route({ method: "GET", path: "/v1/status", cls: "status_read", doc: { summary: "Health plus memory, active threads, backup, storage, bind and log path" } }, () => {
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
    }),
  ];
}

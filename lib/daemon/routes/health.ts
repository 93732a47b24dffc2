// Liveness and status: GET /health (never gated) and GET /v1/status. /health answers anyone, so
// to a client on another host it leaves out the pid and the paths (README "HTTP API").
import { VERSION } from "../../version";
import { isLoopback } from "../access";
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
    route({ method: "GET", path: "/health", cls: "open", doc: { summary: "Liveness: status, version, records and threads (503 while starting); pid and paths only to the socket and loopback clients" } }, ({ request }) => {
      const peer = state.tcpPeers.get(request);
      const local = state.viaSocket.has(request) || peer === undefined || isLoopback(peer);
      if (!state.ready) return json(503, local ? { status: "starting", pid: process.pid, home: state.paths.home } : { status: "starting" });
      const body = healthBody(state);
      if (local) return json(200, body);
      const { pid: _p, home: _h, store: _s, ...open } = body;
      return json(200, open);
    }),
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

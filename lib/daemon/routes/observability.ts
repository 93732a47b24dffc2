// What operators point tools at: GET /metrics (Prometheus) and GET /openapi.json (generated from
// the route declarations, so it lists exactly what the app serves).
import type { DaemonState } from "../state";
import { errorResponse, json } from "../http";
import { route, type Route } from "../route";
import { openApiDocument } from "../openapi";

const PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";

export function observabilityRoutes(state: DaemonState, allRoutes: () => readonly Route[]) {
  let openapi: unknown = null; // the routes never change while the daemon runs
  return [
    route(
      {
        method: "GET",
        path: "/metrics",
        cls: "status_read",
        publicIf: () => state.config.metrics.public,
        doc: { summary: "Prometheus metrics", ok: { description: "Prometheus text exposition format 0.0.4", contentType: "text/plain" } },
      },
      () => {
        if (!state.config.metrics.enabled) return errorResponse(404, "METRICS_DISABLED", "metrics are off in config.toml — set [metrics] enabled = true and restart");
        const { reconciler, dispatches } = state.reconciler;
        const { queued, running } = reconciler.stats;
        const body = state.metrics.render({
          ...state.store.counts,
          ready: state.ready,
          backup: state.backup,
          dispatches: { total: dispatches.size, active: dispatches.active, queued, running, counts: reconciler.counts },
          startedAt: state.startedAt,
        });
        return new Response(body, { headers: { "content-type": PROMETHEUS_TEXT } });
      },
    ),
    route({ method: "GET", path: "/openapi.json", cls: "status_read", doc: { summary: "This API as an OpenAPI 3 document", ok: { description: "an OpenAPI 3.0 document" } } }, () =>
      json(200, (openapi ??= openApiDocument(allRoutes()))),
    ),
  ];
}

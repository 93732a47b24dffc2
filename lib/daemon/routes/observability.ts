// What operators point tools and browsers at: GET /metrics (Prometheus), GET /openapi.json
// (generated from the route declarations, so it lists exactly what the app serves), GET / (the
// status page, lib/daemon/status-page.ts).
import type { DaemonState } from "../state";
import { errorResponse, json } from "../../api/http";
import { route, type Route } from "../../api/route";
import { openApiDocument } from "../openapi";
import { STATUS_PAGE, STATUS_PAGE_HEADERS } from "../status-page";

const PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";

export function observabilityRoutes(state: DaemonState, allRoutes: () => readonly Route[]) {
  let openapi: unknown = null; // the routes never change while the daemon runs
  return [
    route({ method: "GET", path: "/", cls: "open", doc: { summary: "Status page (HTML; its data comes from /v1/status with the token it asks for)", ok: { description: "the page", contentType: "text/html" } } }, () =>
      new Response(STATUS_PAGE, { headers: STATUS_PAGE_HEADERS }),
    ),
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
        const body = state.metrics.render({
          ...state.store.counts,
          ready: state.ready,
          backup: state.backup,
          startedAt: state.startedAt,
          capabilities: state.capabilities.flatMap(({ parts }) => (parts.metrics ? [parts.metrics] : [])),
        });
        return new Response(body, { headers: { "content-type": PROMETHEUS_TEXT } });
      },
    ),
    route({ method: "GET", path: "/openapi.json", cls: "status_read", doc: { summary: "This API as an OpenAPI 3 document", ok: { description: "an OpenAPI 3.0 document" } } }, () =>
      json(200, (openapi ??= openApiDocument(allRoutes()))),
    ),
  ];
}

// What operators point tools and browsers at: GET /metrics (Prometheus), GET /openapi.json
// (generated from the route declarations, so it lists exactly what the app serves), GET / (the
// console, lib/daemon/console.ts) and the two reads only the console needs: GET /v1/rates (the
// last 15 minutes, rates.ts) and GET /v1/backups (the local backups, local-backups.ts).
import type { DaemonState } from "../state";
import { errorResponse, json } from "../../api/http";
import { route, type Route } from "../../api/route";
import { NO_QUERY, T, UnixSecs, listOf, nullable, oneOf } from "../../api/schema";
import { LocalBackups } from "../local-backups";
import { openApiDocument } from "../openapi";
import { RATE_INTERVAL_SECS, RATE_SLOTS } from "../rates";
import { CONSOLE_HEADERS, CONSOLE_PAGE } from "../console";

const PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8";

const RateSlot = T.Object({
  at: UnixSecs,
  records: T.Integer({ minimum: 0, description: "records committed in the interval" }),
  requests: T.Integer({ minimum: 0, description: "HTTP requests answered in the interval" }),
  errors: T.Integer({ minimum: 0, description: "of those, answered 5xx" }),
});

const Rates = T.Object({
  object: T.Literal("rates"),
  interval_secs: T.Literal(RATE_INTERVAL_SECS),
  window_secs: T.Literal(RATE_INTERVAL_SECS * RATE_SLOTS),
  now: UnixSecs,
  slots: T.Array(RateSlot, { description: "the closed intervals since start, oldest first, at most the window" }),
  current: RateSlot,
});

const LocalBackup = T.Object({
  path: T.String(),
  name: T.String(),
  kind: oneOf(["latest", "rotated", "max", "manual"], { description: "latest: hub.db.bak, this or the last start's; rotated: hub.db.bak.N; max: the largest ever; manual: spl backup" }),
  written_at: T.String({ description: "ISO 8601" }),
  bytes: T.Integer({ minimum: 0 }),
  records: nullable(T.Integer({ minimum: 0 })),
  error: T.Optional(T.String({ description: "why the file cannot be read as a store" })),
});

export function observabilityRoutes(state: DaemonState, allRoutes: () => readonly Route[]) {
  let openapi: unknown = null; // the routes never change while the daemon runs
  const backups = new LocalBackups(state.paths.home, state.instanceDid);
  return [
    route(
      {
        method: "GET",
        path: "/",
        cls: "open",
        summary: "The console (HTML; its data comes from the /v1/* routes with the token it asks for)",
        query: NO_QUERY,
        answers: { 200: { description: "the page", contentType: "text/html" } },
      },
      () => new Response(CONSOLE_PAGE, { headers: CONSOLE_HEADERS }),
    ),
    route(
      {
        method: "GET",
        path: "/metrics",
        cls: "status_read",
        publicIf: () => state.config.metrics.public,
        summary: 'Prometheus metrics (README "Metrics" lists every series)',
        query: NO_QUERY,
        answers: { 200: { description: "Prometheus text exposition format 0.0.4", contentType: "text/plain" } },
        errors: { 404: "METRICS_DISABLED: [metrics] enabled = false" },
      },
      () => {
        if (!state.config.metrics.enabled) return errorResponse(404, "METRICS_DISABLED", "metrics are off in config.toml — set [metrics] enabled = true and restart");
        const body = state.metrics.render({
          ...state.store.counts,
          ready: state.ready,
          backup: state.backup,
          backupFiles: backups.newest(),
          storage: { ...state.storage.status(), errors_total: state.storage.errors },
          startedAt: state.startedAt,
          logWrites: state.log.writeStatus(),
          bodies: state.bodies.status(),
          capabilities: state.capabilities.flatMap(({ parts }) => (parts.metrics ? [parts.metrics] : [])),
        });
        return new Response(body, { headers: { "content-type": PROMETHEUS_TEXT } });
      },
    ),
    route(
      {
        method: "GET",
        path: "/openapi.json",
        cls: "open",
        summary: "This API as an OpenAPI 3.1 document (it holds no data: no token needed)",
        query: NO_QUERY,
        answers: { 200: { description: "an OpenAPI 3.1 document", schema: T.Object({ openapi: T.String() }, { additionalProperties: true }) } },
      },
      () => json(200, (openapi ??= openApiDocument(allRoutes()))),
    ),
    route(
      {
        method: "GET",
        path: "/v1/rates",
        cls: "status_read",
        summary: `Records committed and requests answered per ${RATE_INTERVAL_SECS} s over the last ${(RATE_INTERVAL_SECS * RATE_SLOTS) / 60} minutes (the console's charts)`,
        query: NO_QUERY,
        answers: { 200: { description: "the intervals", schema: Rates } },
      },
      () => json(200, state.metrics.rates.snapshot()),
    ),
    route(
      {
        method: "GET",
        path: "/v1/backups",
        cls: "status_read",
        summary: "The local backups of this home, newest first (spl backup list); off-host ones are in /v1/status offsite",
        query: NO_QUERY,
        answers: { 200: { description: "the backups", schema: listOf(LocalBackup) } },
      },
      () => json(200, { object: "list", data: backups.list() }),
    ),
  ];
}

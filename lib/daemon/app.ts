// The HTTP application: one Elysia app served on TCP and on the Unix socket. Every route is
// mounted through the access gate with the class it declares (route.ts), so the gate decides on
// exactly the route Elysia dispatched. Every error leaves as the error envelope; nothing a client
// sends can produce a stack trace in the answer.
import { Elysia } from "elysia";
import type { DaemonState } from "./state";
import { ApiError, errorResponse, readBody } from "../api/http";
import type { Caller, Guarded } from "../api/caller";
import { refuseForeign } from "./origin";
import { repeatedQueryParam } from "../api/query";
import { assertDeclared, assertOnlyDeclared, assertStaticPath, assertWithinCap, largestBody, routeLabel, type Route } from "../api/route";
import { bodyChecker, queryChecker } from "../api/validate";
import { Metrics } from "./metrics";
import { healthRoutes } from "./routes/health";
import { recordRoutes } from "./routes/records";
import { threadRoutes } from "./routes/threads";
import { engineRoutes } from "./routes/engine";
import { tokenRoutes } from "./routes/tokens";
import { observabilityRoutes } from "./routes/observability";

/** Names the route that handled (or refused) a request; "none" when no route matched. */
export const ROUTE_HEADER = "x-spl-route";

const starting = () => errorResponse(503, "STARTING", "the daemon is starting (rebuilding state from the store) — retry in a moment");

function tagged(res: Response, label: string): Response {
  res.headers.set(ROUTE_HEADER, label);
  return res;
}

interface Matched {
  request: Request;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
}

export function buildApp(state: DaemonState) {
  const routes = allRoutes(state);
  const log = state.log.child("spl::http");
  const { gate } = state;

  async function serveRoute({ spec, handler, input }: Checked, ctx: Matched): Promise<Response> {
    const { request } = ctx;
    if (spec.cls === "open" || spec.publicIf?.()) {
      // GET /health: nobody is identified, and nothing may be written in its name.
      const anyone: Caller = { actor: state.config.identity.actor, via: state.viaSocket.has(request) ? "socket" : "tcp", token: null, scopes: [], actsForOthers: false };
      const query = input.query(ctx.query);
      const body = await readBody(request, spec.maxBody ?? 0, spec.tooLargeCode);
      return handler({ request, params: ctx.params, query, caller: anyone, body, json: input.body?.(body), as: { caller: anyone, route: { cls: "open", label: routeLabel(spec) } } });
    }
    if (!state.ready) return starting();
    const guarded: Guarded = { cls: spec.cls, label: routeLabel(spec), rulesPerRecord: spec.rulesPerRecord };
    // A thread route's synthetic record names the thread Elysia matched, for rules on record.thread.
    const thread = spec.path.startsWith("/v1/threads/:id") ? (ctx.params.id ?? "") : "";
    const caller = gate.admit(request, guarded, thread);
    if (caller instanceof Response) return caller;
    // Admitted within the memory budget for bodies in flight (body-budget.ts), held until answered.
    const held = state.bodies.reserve(request, spec.maxBody ?? 0);
    if (held < 0) return state.bodies.refusal();
    try {
      const query = input.query(ctx.query);
      // Read only after the caller is admitted, and never past the route's own limit.
      const body = await readBody(request, spec.maxBody ?? 0, spec.tooLargeCode);
      return await handler({ request, params: ctx.params, query, caller, body, json: input.body?.(body), as: { caller, route: guarded } });
    } finally {
      state.bodies.release(held);
    }
  }

  /** No route matched: refused like an admin route (so nothing answers without a token), then 404. */
  function unmatched(request: Request): Response {
    if (!state.ready) return starting();
    const path = new URL(request.url).pathname;
    const admitted = gate.admit(request, { cls: "admin", label: `${request.method} ${path}` });
    if (admitted instanceof Response) return admitted;
    return errorResponse(404, "NOT_FOUND", `no route ${request.method} ${path} — see the API list in README.md`);
  }

  /** The one error formatter: an ApiError is its own answer; anything else is logged and a 500. */
  function failed(error: unknown, request: Request): Response {
    if (error instanceof ApiError) return error.response();
    const path = new URL(request.url).pathname;
    log.error("request failed", { method: request.method, path, error: (error as Error)?.stack ?? String(error) });
    return errorResponse(500, "INTERNAL", "the daemon failed to handle this request; nothing was written — see the log for details");
  }

  /**
   * A Host or Origin refusal is logged here, on the daemon that refused (a member set up with a
   * name its peer does not know shows up in this log): one WARN per Host/Origin a minute, and at
   * most 64 names a minute in all (a client sending a new Host each time cannot flood the log).
   */
  const refusalsLogged = new Map<string, number>();
  let minute = { start: 0, lines: 0, skipped: 0 };
  function logRefusal(request: Request, code: string): void {
    const host = (request.headers.get("host") ?? "").slice(0, 200);
    const origin = request.headers.get("origin")?.slice(0, 200) ?? null;
    const key = `${host}|${origin ?? ""}`;
    const now = Date.now();
    if ((refusalsLogged.get(key) ?? 0) > now - 60_000) return;
    if (now - minute.start >= 60_000) {
      if (minute.skipped) log.warn(`refused requests for ${minute.skipped} more Host/Origin names in the last minute were not logged one by one`, { skipped: minute.skipped });
      minute = { start: now, lines: 0, skipped: 0 };
      for (const [k, at] of refusalsLogged) if (at <= now - 60_000) refusalsLogged.delete(k);
    }
    if (minute.lines >= 64) return void minute.skipped++;
    minute.lines++;
    refusalsLogged.set(key, now);
    // request.url may not parse (an empty Host): the path is what follows the authority.
    const at = request.url.indexOf("/", request.url.indexOf("//") + 2);
    const path = at < 0 ? "/" : request.url.slice(at, at + 200).split("?")[0];
    log.warn(`refused a request for ${path} (${code}): Host ${JSON.stringify(host)}${origin !== null ? `, Origin ${JSON.stringify(origin)}` : ""} — if a fleet member or client uses that name, add it to [server] allowed_hosts (repeats are logged once a minute)`, { code, host, origin });
  }

  /** Refusals before any route: browsers (foreign Origin, DNS rebinding; the socket is exempt), ambiguous queries. */
  function refusedUpFront(request: Request): Response | undefined {
    if (!state.viaSocket.has(request)) {
      const foreign = refuseForeign(request, state.config.server.allowedHosts);
      if (foreign) {
        logRefusal(request, foreign.code);
        return foreign.response();
      }
    }
    // Which of two values a handler would see is a guess; refuse rather than pick one.
    const repeated = repeatedQueryParam(request.url);
    if (repeated) return errorResponse(400, "INVALID_QUERY", `query parameter '${repeated}' is given more than once — send it once`);
  }

  /** Serves one declared route (whichever router matched it): gate, body, handler, metrics, label. */
  async function serve(r: Checked, label: string, ctx: Matched): Promise<Response> {
    const t0 = performance.now();
    let res: Response;
    try {
      res = await serveRoute(r, ctx);
    } catch (err) {
      res = failed(err, ctx.request);
    }
    state.metrics.request(label, res.status, (performance.now() - t0) / 1000);
    return tagged(res, label);
  }

  // Elysia finds the path by scanning request.url for '/' from a fixed offset; by default it skips
  // 11 characters, past the Host of a short name like "h" and into the path itself. The url is
  // "http://<Host><path>" (serve.ts hands an HTTPS request on with http:// in front) and origin.ts
  // refuses a Host holding '/', so from 7 the first '/' starts the path, whatever the Host.
  const app = new Elysia({ handler: { standardHostname: false } })
    .onError(({ code, error, request }) => {
      if (code === "NOT_FOUND") {
        const res = unmatched(request);
        state.metrics.request(Metrics.unmatched(request.method), res.status, 0);
        return tagged(res, "none");
      }
      return failed(error, request);
    })
    .onRequest(({ request }) => refusedUpFront(request));

  // Hot routes are also handed to Bun's own router (Bun.serve `routes`), which calls them without
  // Elysia's per-request work (~9 µs of a ~100 µs ingest). Either router ends in serve(): the gate
  // runs inside the route that matched, with that route's class, whichever router matched it.
  const direct: DirectRoutes = {};
  for (const declared of routes) {
    assertDeclared(declared.spec);
    const r = withChecks(declared);
    const label = routeLabel(r.spec);
    app.route(
      r.spec.method,
      r.spec.path,
      // Destructured so Elysia prepares only these (it reads the handler's source to decide).
      ({ request, params, query }: Matched) => serve(r, label, { request, params, query }),
      { parse: "none" },
    );
    if (r.spec.hot) {
      assertStaticPath(r.spec);
      (direct[r.spec.path] ??= {})[r.spec.method] = (request: Request) => refusedUpFront(request) ?? serve(r, label, { request, params: {}, query: queryOf(request.url) });
    }
  }
  assertOnlyDeclared(app.routes, routes);
  assertWithinCap(routes);
  return { app, direct, maxBody: largestBody(routes) };
}

/** A route with the checks of its query and body schemas, compiled once (lib/api/validate.ts). */
interface Checked extends Route {
  input: { query: (raw: Record<string, string | undefined>) => Record<string, unknown>; body?: (bytes: Uint8Array) => unknown };
}

function withChecks(r: Route): Checked {
  const { spec } = r;
  // The ingest routes check their body with records/envelope.ts, which the schema describes.
  const body = spec.body && !spec.bodyCheckedBy ? bodyChecker(spec.body, { optional: spec.bodyOptional }) : undefined;
  return { ...r, input: { query: queryChecker(spec.query), body } };
}

/** Bun.serve `routes`: path → method → handler. */
export type DirectRoutes = Record<string, Partial<Record<Route["spec"]["method"], (request: Request) => Response | Promise<Response>>>>;

/** The query string as the handler's `query` (a repeated key was refused before). */
function queryOf(url: string): Record<string, string | undefined> {
  const q = url.indexOf("?");
  return q < 0 ? {} : Object.fromEntries(new URLSearchParams(url.slice(q + 1)));
}

/** The daemon's own routes, then each capability's (state.routes), then the ones that list them all. */
export function allRoutes(state: DaemonState): Route[] {
  const routes: Route[] = [...healthRoutes(state), ...recordRoutes(state), ...threadRoutes(state), ...engineRoutes(state), ...tokenRoutes(state), ...state.routes];
  routes.push(...observabilityRoutes(state, () => routes));
  return routes;
}

export type App = ReturnType<typeof buildApp>["app"];

// How a route is declared: method, path template, permission class and body limit, side by side
// with its handler. The access gate runs inside the route Elysia matched (app.ts mounts every route
// through it), so the class it enforces is the class of the handler that will run — never one
// derived from a URL parsed some other way.
import { ROUTE_CLASSES, type RouteClass } from "../engine/permissions";
import type { Caller, WriteAs } from "./caller";

export interface RouteSpec {
  method: "GET" | "POST" | "DELETE";
  path: string;
  /** Permission class; "open" only for GET /health and GET / (the status page, which holds no data). */
  cls: RouteClass | "open";
  /** Largest request body in bytes; absent = the route takes no body. */
  maxBody?: number;
  /** Error code for a body over maxBody (default REQUEST_TOO_LARGE). */
  tooLargeCode?: string;
  /**
   * The route writes records and its permission rules are checked per record in the write path,
   * with `record` bound to each one (the write checks), rather than once up front.
   */
  rulesPerRecord?: boolean;
  /**
   * Also served straight from Bun's router, skipping Elysia's per-request work: the ingest
   * routes, where that work is a measurable share of each request. Static paths only.
   */
  hot?: boolean;
  /** Served without a token when this answers true (GET /metrics with [metrics] public = true). */
  publicIf?: () => boolean;
  /** For GET /openapi.json: what the route does, its query parameters, body and answer. */
  doc?: RouteDoc;
}

/** The query parameters of every paged list (http.ts pageParams). */
export const PAGE_QUERY = { limit: "page size, 1 to 1000 (default 100)", after: "next_cursor of the previous page" };

export interface RouteDoc {
  summary: string;
  /** Query parameter name → description. */
  query?: Record<string, string>;
  /** What the JSON request body holds (routes with maxBody). */
  body?: string;
  /** The success status and what it holds (default 200, a JSON object). */
  ok?: { status?: number; description: string; contentType?: string };
}

export interface RouteCall {
  request: Request;
  params: Record<string, string>;
  query: Record<string, string | undefined>;
  caller: Caller;
  /** The request body, already read within the route's limit (empty when none was sent). */
  body: Uint8Array;
  /** Who this call writes as: give it to the write path, which runs every write check for it. */
  as: WriteAs;
}

export type RouteHandler = (call: RouteCall) => Response | Promise<Response>;

export interface Route {
  spec: RouteSpec;
  handler: RouteHandler;
}

export function route(spec: RouteSpec, handler: RouteHandler): Route {
  return { spec, handler };
}

/** The value of the x-spl-route answer header, and the route named in denials. */
export const routeLabel = (spec: Pick<RouteSpec, "method" | "path">) => `${spec.method} ${spec.path}`;

/** Served without a token: liveness, and the status page (its data comes from gated /v1/* routes). */
const OPEN_PATHS = ["/health", "/"];

/** A route must say who may call it; one that does not is a programming error caught at startup. */
export function assertDeclared(spec: Partial<RouteSpec>): asserts spec is RouteSpec {
  const label = `${spec.method ?? "?"} ${spec.path ?? "?"}`;
  if (spec.cls !== "open" && !(ROUTE_CLASSES as readonly string[]).includes(spec.cls as string)) {
    throw new Error(`route ${label} declares no permission class (got ${JSON.stringify(spec.cls)}); give it one of: open, ${ROUTE_CLASSES.join(", ")}`);
  }
  if (spec.cls === "open" && !(spec.method === "GET" && OPEN_PATHS.includes(spec.path ?? ""))) {
    throw new Error(`route ${label} may not be open: only GET ${OPEN_PATHS.join(" and GET ")} are served without a token`);
  }
  if (spec.maxBody !== undefined && !(Number.isInteger(spec.maxBody) && spec.maxBody > 0)) {
    throw new Error(`route ${label} declares an invalid body limit ${spec.maxBody}`);
  }
}

/** A hot route is matched by Bun's router on its exact path, so it may not have parameters. */
export function assertStaticPath(spec: RouteSpec): void {
  if (spec.path.includes(":") || spec.path.includes("*")) throw new Error(`route ${routeLabel(spec)} is marked hot but has path parameters; only static paths can be hot`);
}

/** Every route the router knows must be one mounted through the gate. */
export function assertOnlyDeclared(known: readonly { method: string; path: string }[], declared: readonly Route[]): void {
  const ok = new Set(declared.map((r) => routeLabel(r.spec)));
  for (const r of known) {
    if (!ok.has(`${r.method} ${r.path}`)) {
      throw new Error(`route ${r.method} ${r.path} was added without a declared permission class — declare it with route() in lib/daemon/routes/`);
    }
  }
}

/**
 * The server-wide cap on a request body, fixed when the listeners bind (before the routes exist):
 * above the largest body any route accepts, so the route's own 413 (with the error envelope)
 * answers before Bun cuts the connection. assertWithinCap keeps it so.
 */
export const REQUEST_BODY_CAP = 65 * 1024 * 1024;

export function largestBody(routes: readonly Route[]): number {
  return Math.max(0, ...routes.map((r) => r.spec.maxBody ?? 0)) + 1024 * 1024;
}

/** A route accepting a body the listeners would cut off stops the daemon at startup. */
export function assertWithinCap(routes: readonly Route[]): void {
  const need = largestBody(routes);
  if (need > REQUEST_BODY_CAP) throw new Error(`a route accepts bodies up to ${need - 1024 * 1024} bytes, above REQUEST_BODY_CAP (${REQUEST_BODY_CAP}): raise it in route.ts`);
}

// How a route is declared: method, path template, permission class and body limit, side by side
// with its handler. The access gate runs inside the route Elysia matched (app.ts mounts every route
// through it), so the class it enforces is the class of the handler that will run — never one
// derived from a URL parsed some other way.
import { ROUTE_CLASSES, type RouteClass } from "../engine/permissions";
import { Kind, type Static, type TNever, type TObject, type TSchema } from "@sinclair/typebox";
import type { Caller, WriteAs } from "./caller";

export interface RouteSpec<Q extends TObject = TObject, B extends TSchema = TSchema> {
  method: "GET" | "POST" | "DELETE";
  path: string;
  /** Permission class; "open" only for OPEN_PATHS (they hold no data). */
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

  // What GET /openapi.json says, and what the request is checked against (validate.ts): the
  // same declaration, so the document is the check.
  /** One line: what the route does. */
  summary: string;
  /** The query parameters it reads (NO_QUERY for none); each optional, converted and checked. */
  query: Q;
  /** The JSON body (routes with maxBody): parsed and checked before the handler runs. */
  body?: B;
  /** An empty body is allowed and means {}. */
  bodyOptional?: boolean;
  /**
   * The handler checks the body itself with the check this schema describes, named here (the
   * ingest routes: records/envelope.ts, whose cost per record is measured; README "Benchmarks").
   */
  bodyCheckedBy?: string;
  /** Every answer but the error envelope, by status: a JSON schema, or a content type. */
  answers: Record<number, Answer>;
  /** Error statuses beyond the ones every route has (validate, gate, limits), with the codes they carry. */
  errors?: Record<number, string>;
}

export interface Answer {
  description: string;
  /** The JSON answer's schema (application/json). */
  schema?: TSchema;
  /** A non-JSON answer (text/html, text/plain). */
  contentType?: string;
}

export interface RouteCall<Q = Record<string, unknown>, B = unknown> {
  request: Request;
  params: Record<string, string>;
  /** The query parameters the route declares, converted, checked, defaults filled. */
  query: Q;
  caller: Caller;
  /** The request body, already read within the route's limit (empty when none was sent). */
  body: Uint8Array;
  /** The body parsed and checked against the route's schema (undefined when it declares none or checks it itself). */
  json: B;
  /** Who this call writes as: give it to the write path, which runs every write check for it. */
  as: WriteAs;
}

export type RouteHandler<Q = any, B = any> = (call: RouteCall<Q, B>) => Response | Promise<Response>;

export interface Route {
  spec: RouteSpec<any, any>;
  handler: RouteHandler;
}

export function route<Q extends TObject, B extends TSchema = TNever>(spec: RouteSpec<Q, B>, handler: RouteHandler<Static<Q>, Static<B>>): Route {
  return { spec, handler };
}

/** What a route's declaration lacks for the document and the checks (null: nothing). */
export function schemaProblem(spec: RouteSpec<any, any>): string | null {
  const label = routeLabel(spec);
  if (!spec.summary) return `${label} has no summary`;
  if (!spec.query || spec.query[Kind] !== "Object") return `${label} declares no query schema (NO_QUERY when it reads none)`;
  const ok = Object.entries(spec.answers ?? {}).filter(([status]) => Number(status) < 300);
  if (!ok.length) return `${label} declares no success answer`;
  for (const [status, a] of ok) if (!a.schema && !a.contentType) return `${label} answer ${status} has neither a schema nor a content type`;
  if (spec.maxBody && !spec.body) return `${label} takes a body but declares no body schema`;
  if (!spec.maxBody && spec.body) return `${label} declares a body schema but takes no body (maxBody)`;
  return null;
}

/** The value of the x-spl-route answer header, and the route named in denials. */
export const routeLabel = (spec: Pick<RouteSpec, "method" | "path">) => `${spec.method} ${spec.path}`;

/**
 * Served without a token: liveness, the console (its data comes from gated /v1/* routes), and the
 * API's description (it holds no data: the same document for everyone).
 */
export const OPEN_PATHS = ["/health", "/", "/openapi.json"];

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

// GET /openapi.json: the OpenAPI 3.1 description, generated from the route declarations
// (route.ts) so it cannot drift from what the app serves: one operation per declared route, its
// query, body and answer schemas (the same ones validate.ts checks requests against), its
// permission class as the required token scope, its body limit, and every error status it can
// answer with the error envelope. Shared schemas (a record, the error envelope) carry a $id and
// become components, so a generated client names them.
import { VERSION } from "../version";
import { routeLabel, type Route, type RouteSpec } from "../api/route";
import { ErrorSchema, type TSchema } from "../api/schema";
import { isOptional } from "../api/validate";

/** The statuses any route may answer with the error envelope, and when. */
const COMMON_ERRORS: Record<number, string> = {
  400: "the request is malformed: a query parameter or body field that does not fit its schema (INVALID_QUERY, INVALID_REQUEST naming the field), a parameter given twice, invalid JSON (INVALID_JSON)",
  401: "no valid bearer token (TCP only; the Unix socket needs none): AUTH_REQUIRED, INVALID_TOKEN",
  403: "refused: the token's scope (SCOPE_FORBIDDEN), a permission rule (PERMISSION_DENIED), a foreign Origin or Host, or an actor claim",
  404: "nothing by that id",
  413: "the request body is over the route's limit (REQUEST_TOO_LARGE or the route's own code)",
  503: "the daemon is starting (STARTING), or the memory for request bodies in flight is spent (Retry-After)",
};

/** `/v1/records/:id` → `/v1/records/{id}` and the names of its path parameters. */
function openApiPath(path: string): { path: string; params: string[] } {
  const params: string[] = [];
  const out = path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, (_, name: string) => {
    params.push(name);
    return `{${name}}`;
  });
  return { path: out, params };
}

/** Plain JSON of a schema; a sub-schema with a $id becomes a $ref to components.schemas. */
function plain(schema: TSchema, components: Record<string, unknown>): unknown {
  const walk = (v: unknown, root: boolean): unknown => {
    if (Array.isArray(v)) return v.map((x) => walk(x, false));
    if (!v || typeof v !== "object") return v;
    const o = v as Record<string, unknown>;
    if (typeof o.$id === "string" && !root) {
      const name = o.$id;
      if (!(name in components)) {
        components[name] = null; // reserved before walking, for recursion
        components[name] = walk(o, true);
      }
      return { $ref: `#/components/schemas/${name}` };
    }
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(o)) if (k !== "$id" && k !== "x-expected") out[k] = walk(x, false);
    // A union of string literals (schema.ts oneOf) is an enum: one line in the document.
    const any = out.anyOf as Record<string, unknown>[] | undefined;
    if (any?.length && any.every((m) => typeof m.const === "string" && Object.keys(m).length === 2 && m.type === "string")) {
      delete out.anyOf;
      return { type: "string", enum: any.map((m) => m.const), ...out };
    }
    return out;
  };
  return walk(schema, false);
}

function statusesOf(spec: RouteSpec): Record<number, string> {
  const open = spec.cls === "open";
  const out: Record<number, string> = {};
  const add = (status: number, text: string) => (out[status] = out[status] ? `${out[status]}; ${text}` : text);
  if (!open || spec.maxBody) add(400, COMMON_ERRORS[400]!);
  else add(400, "a query parameter given twice (INVALID_QUERY)");
  if (!open) {
    add(401, COMMON_ERRORS[401]!);
    add(403, COMMON_ERRORS[403]!);
  }
  if (openApiPath(spec.path).params.length) add(404, COMMON_ERRORS[404]!);
  if (spec.maxBody) add(413, `${COMMON_ERRORS[413]}: at most ${spec.maxBody} bytes`);
  if (!open) add(503, COMMON_ERRORS[503]!);
  for (const [status, text] of Object.entries(spec.errors ?? {})) {
    const n = Number(status);
    if (n === 404 && out[404]) out[404] = text;
    else add(n, text);
  }
  return out;
}

function operation(spec: RouteSpec, components: Record<string, unknown>) {
  const { params } = openApiPath(spec.path);
  const open = spec.cls === "open";
  const query = Object.entries(spec.query.properties as Record<string, TSchema>).map(([name, s]) => {
    const { description, ...schema } = plain(s, components) as Record<string, unknown>;
    return { name, in: "query", required: !isOptional(s), ...(description ? { description } : {}), schema };
  });
  const parameters = [...params.map((name) => ({ name, in: "path", required: true, schema: { type: "string" } })), ...query];

  const responses: Record<string, unknown> = {};
  for (const [status, a] of Object.entries(spec.answers)) {
    const content = a.schema ? { "application/json": { schema: plain(a.schema, components) } } : { [a.contentType!]: { schema: { type: "string" } } };
    responses[status] = { description: a.description, content };
  }
  for (const [status, text] of Object.entries(statusesOf(spec))) {
    if (responses[status]) continue; // /health's 503 is its own answer
    responses[status] = { description: text, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
  }

  const body = spec.body
    ? {
        requestBody: {
          required: !spec.bodyOptional,
          description: `${spec.body.description ?? "a JSON object"} — the request body is at most ${spec.maxBody} bytes (413 past it)${spec.bodyOptional ? "; may be empty" : ""}`,
          content: { "application/json": { schema: plain(spec.body, components) } },
        },
      }
    : {};
  return {
    operationId: `${spec.method.toLowerCase()}${spec.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ""))}` || "getRoot",
    summary: spec.summary,
    description: open ? "Needs no token." : `Permission class \`${spec.cls}\`${spec.publicIf ? " (open when configured public)" : ""}.`,
    "x-spl-route": routeLabel(spec),
    "x-spl-class": spec.cls,
    ...(parameters.length ? { parameters } : {}),
    ...body,
    responses,
    security: open ? [] : [{ bearerAuth: [] }],
  };
}

export function openApiDocument(routes: readonly Route[]) {
  const components: Record<string, unknown> = { Error: plain(ErrorSchema, {}) };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const { path } = openApiPath(r.spec.path);
    (paths[path] ??= {})[r.spec.method.toLowerCase()] = operation(r.spec, components);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "spl — Syncropel instance daemon",
      version: VERSION,
      description:
        "Served on TCP (bearer token) and on the Unix socket run/spl.sock (no token; the socket file is 0600). Errors are the envelope in components.schemas.Error. A record is at most 1 MiB (1048576 bytes) in canonical form (413 RECORD_TOO_LARGE); a batch holds at most 1000 records.",
    },
    servers: [{ url: "/" }],
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", description: "spl_<env>_<id>_<secret>: <home>/token, or one from 'spl token create'" } },
      schemas: Object.fromEntries(Object.entries(components).sort(([a], [b]) => a.localeCompare(b))),
    },
    security: [{ bearerAuth: [] }],
  };
}

// GET /openapi.json: the OpenAPI 3 description, generated from the route declarations
// (route.ts) so it cannot drift from what the app serves: one operation per declared route, its
// permission class as the required token scope, its body limit, and the error envelope.
import { VERSION } from "../version";
import { routeLabel, type Route } from "../api/route";

const ERROR_STATUSES: Record<string, string> = {
  "400": "the request is malformed (the message names the problem and the fix)",
  "401": "no valid bearer token (TCP only; the Unix socket needs none)",
  "403": "refused: token scope, permission rule, foreign Origin or Host, or a DID claim",
  "404": "nothing by that id",
  "413": "the request body is over the route's limit",
  "503": "the daemon is starting",
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

function operation(r: Route) {
  const { spec } = r;
  const doc = spec.doc;
  const { params } = openApiPath(spec.path);
  const open = spec.cls === "open";
  const parameters = [
    ...params.map((name) => ({ name, in: "path", required: true, schema: { type: "string" } })),
    ...Object.entries(doc?.query ?? {}).map(([name, description]) => ({ name, in: "query", required: false, description, schema: { type: "string" } })),
  ];
  const ok = doc?.ok ?? { description: "the answer, a JSON object" };
  const okContent = ok.contentType && ok.contentType !== "application/json" ? { [ok.contentType]: { schema: { type: "string" } } } : { "application/json": { schema: { type: "object" } } };
  const responses: Record<string, unknown> = { [String(ok.status ?? 200)]: { description: ok.description, content: okContent } };
  for (const status of Object.keys(ERROR_STATUSES)) {
    if (open && (status === "401" || status === "403")) continue;
    if (status === "413" && !spec.maxBody) continue;
    responses[status] = { $ref: `#/components/responses/Error${status}` };
  }
  return {
    operationId: `${spec.method.toLowerCase()}${spec.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : ""))}` || "getRoot",
    summary: doc?.summary ?? routeLabel(spec),
    description: open ? "Needs no token." : `Permission class \`${spec.cls}\`${spec.publicIf ? " (open when configured public)" : ""}.`,
    "x-spl-route": routeLabel(spec),
    "x-spl-class": spec.cls,
    ...(parameters.length ? { parameters } : {}),
    ...(spec.maxBody
      ? {
          requestBody: {
            required: true,
            description: `${doc?.body ?? "a JSON object"} (at most ${spec.maxBody} bytes)`,
            content: { "application/json": { schema: { type: "object" } } },
          },
        }
      : {}),
    responses,
    security: open ? [] : [{ bearerAuth: [] }],
  };
}

export function openApiDocument(routes: readonly Route[]) {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const { path } = openApiPath(r.spec.path);
    (paths[path] ??= {})[r.spec.method.toLowerCase()] = operation(r);
  }
  const responses: Record<string, unknown> = {};
  for (const [status, description] of Object.entries(ERROR_STATUSES)) {
    responses[`Error${status}`] = { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
  }
  return {
    openapi: "3.0.3",
    info: {
      title: "spl — Syncropel instance daemon",
      version: VERSION,
      description: "Served on TCP (bearer token) and on the Unix socket run/spl.sock (no token; the socket file is 0600). Errors are the envelope in components.schemas.Error.",
    },
    servers: [{ url: "/" }],
    paths,
    components: {
      securitySchemes: { bearerAuth: { type: "http", scheme: "bearer", description: "spl_<env>_<id>_<secret>: <home>/token, or one from 'spl token create'" } },
      schemas: {
        Error: {
          type: "object",
          required: ["object", "type", "code", "message"],
          properties: {
            object: { type: "string", enum: ["error"] },
            type: { type: "string", enum: ["invalid_request_error", "api_error"] },
            code: { type: "string", description: "UPPER_SNAKE, e.g. AUTH_REQUIRED" },
            message: { type: "string", description: "what went wrong and how to fix it" },
            permission: { type: "object", description: "on PERMISSION_DENIED: actor, resource, rule, priority, reason, route" },
          },
        },
      },
      responses,
    },
    security: [{ bearerAuth: [] }],
  };
}

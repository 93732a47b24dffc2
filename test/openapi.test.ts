// GET /openapi.json (issue 16 item 2, issue 28 item 2): generated from the schemas each route
// declares once (lib/api/route.ts, schema.ts), the same schemas that check every request
// (lib/api/validate.ts): valid OpenAPI 3.1, readable without a token, exactly the routes the app
// serves, every route declaring its schemas, documented statuses and limits that are the enforced
// ones, requests refused with 400 naming the field (never a 500), answers that fit their schemas.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { TypeCompiler } from "@sinclair/typebox/compiler";
import { allRoutes, buildApp } from "../lib/daemon/app";
import { NO_QUERY, RecordInput, T, type TSchema } from "../lib/api/schema";
import { route, routeLabel, schemaProblem } from "../lib/api/route";
import { MAX_RECORD_BYTES, prepareRecord, RecordError } from "../lib/records/envelope";
import { inProcessDaemon, type InProcessDaemon } from "./app-harness";
import { Instance } from "./harness";

const METHODS = ["get", "post", "delete", "put", "patch"];

function operations(doc: any): { method: string; path: string; op: any }[] {
  return Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([m, op]) => ({ method: m.toUpperCase(), path, op })),
  );
}

const rec = (o: Record<string, unknown> = {}) => ({ thread: "th_doc", actor: "did:sync:user:tester", act: "KNOW", body: { text: "hello" }, ...o });

describe("GET /openapi.json on the compiled binary", () => {
  const inst = new Instance();
  let doc: any;
  beforeAll(async () => {
    await inst.spl(["init"]);
    await inst.start();
    // Without a token: the document holds no data.
    const r = await inst.http("GET", "/openapi.json", undefined, { authorization: "" });
    expect(r.status).toBe(200);
    doc = r.json;
  });
  afterAll(async () => {
    await inst.stop();
  });

  test("is a valid OpenAPI 3.1 document (schema validator)", async () => {
    const res = await new Validator().validate(structuredClone(doc));
    expect({ valid: res.valid, errors: res.errors }).toEqual({ valid: true, errors: undefined as any });
    expect(doc.openapi).toBe("3.1.0");
  });

  test("is readable without a token over TCP and holds nothing of this daemon's (no DID, home, token)", async () => {
    const text = JSON.stringify(doc);
    const health = (await inst.http("GET", "/health")).json;
    expect(text).not.toContain(health.instance_did);
    expect(text).not.toContain(inst.home);
    expect(text).not.toContain(inst.token!);
    expect(doc.paths["/openapi.json"].get.security).toEqual([]);
    // Everything else that answers with data still needs one.
    expect((await inst.http("GET", "/v1/status", undefined, { authorization: "" })).status).toBe(401);
  });

  test("declares bodies, answers and statuses from the schemas: a record, the 409, the 200 duplicate, the 1 MiB limit", () => {
    expect(doc.components.schemas.Error.required).toEqual(["object", "type", "code", "message"]);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    const post = doc.paths["/v1/records"].post;
    expect(post.requestBody.required).toBe(true);
    expect(post.requestBody.content["application/json"].schema).toEqual({ $ref: "#/components/schemas/RecordInput" });
    expect(doc.components.schemas.RecordInput.required).toEqual(["thread", "actor", "act", "body"]);
    expect(doc.components.schemas.RecordInput.properties.act.enum).toContain("KNOW");
    expect(doc.components.schemas.RecordInput.description).toContain(String(MAX_RECORD_BYTES));
    expect(post.responses["201"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/Record" });
    expect(post.responses["200"].content["application/json"].schema).toEqual({ $ref: "#/components/schemas/DuplicateRecord" });
    expect(doc.components.schemas.DuplicateRecord.properties.duplicate).toMatchObject({ const: true });
    expect(post.responses["409"].description).toContain("CLOCK_CONFLICT");
    expect(post.responses["413"].description).toContain(`${MAX_RECORD_BYTES} bytes (1 MiB)`);
    expect(post.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/health"].get.security).toEqual([]);
    expect(doc.paths["/health"].get.responses["503"]).toBeDefined();
    expect(doc.paths["/v1/records/{id}"].get.parameters).toContainEqual({ name: "id", in: "path", required: true, schema: { type: "string" } });
    const limit = doc.paths["/v1/records"].get.parameters.find((p: any) => p.name === "limit");
    expect(limit.schema).toMatchObject({ type: "integer", minimum: 1, maximum: 1000, default: 100 });
    // A body that may be left out is not required.
    expect(doc.paths["/v1/tokens/{id}"].delete.requestBody.required).toBe(false);
    expect(doc.paths["/v1/records/batch"].post.requestBody.content["application/json"].schema.properties.records.maxItems).toBe(1000);
  });

  test("the documented statuses and limits are the enforced ones", async () => {
    const created = await inst.http("POST", "/v1/records", rec({ clock: 0 }));
    expect(created.status).toBe(201);
    const dup = await inst.http("POST", "/v1/records", rec({ clock: 0 }));
    expect([dup.status, dup.json.duplicate, dup.json.id]).toEqual([200, true, created.json.id]);
    const conflict = await inst.http("POST", "/v1/records", rec({ clock: 0, body: { text: "other" } }));
    expect([conflict.status, conflict.json.code]).toEqual([409, "CLOCK_CONFLICT"]);
    const big = await inst.http("POST", "/v1/records", rec({ body: { text: "x".repeat(MAX_RECORD_BYTES) } }));
    expect([big.status, big.json.code]).toEqual([413, "RECORD_TOO_LARGE"]);
    expect(big.json.message).toContain(`the limit is ${MAX_RECORD_BYTES} (1 MiB)`);
    const justUnder = await inst.http("POST", "/v1/records", rec({ body: { text: "x".repeat(MAX_RECORD_BYTES - 400) } }));
    expect(justUnder.status).toBe(201);
    const batch = await inst.http("POST", "/v1/records/batch", { records: Array.from({ length: 1001 }, (_, i) => rec({ body: { i } })) });
    expect([batch.status, batch.json.code]).toEqual([413, "BATCH_TOO_LARGE"]);
    expect((await inst.http("GET", "/v1/records?limit=1000")).status).toBe(200);
    const over = await inst.http("GET", "/v1/records?limit=1001");
    expect([over.status, over.json.code, over.json.message]).toEqual([400, "INVALID_QUERY", `'limit' must be an integer from 1 to 1000, got "1001"`]);
  });

  test("every documented operation is served by the route it names, and refuses TCP without a token unless open", async () => {
    const ops = operations(doc);
    expect(ops.length).toBeGreaterThan(20);
    for (const { method, path, op } of ops) {
      const url = path.replace(/\{[^}]+\}/g, "x");
      const withToken = await fetch(inst.url + url, { method, headers: { authorization: `Bearer ${inst.token}` } });
      await withToken.arrayBuffer();
      expect({ op: `${method} ${path}`, route: withToken.headers.get("x-spl-route") }).toEqual({ op: `${method} ${path}`, route: op["x-spl-route"] });
      const anonymous = await fetch(inst.url + url, { method });
      await anonymous.arrayBuffer();
      const open = op.security.length === 0;
      expect({ op: `${method} ${path}`, refused: anonymous.status === 401 }).toEqual({ op: `${method} ${path}`, refused: !open });
    }
  });
});

describe("the route declarations", () => {
  let d: InProcessDaemon;
  beforeAll(async () => {
    d = await inProcessDaemon();
  });
  afterAll(() => d.close());

  test("every route, the daemon's and each capability's, declares its query, body and answer schemas", () => {
    const routes = allRoutes(d.state);
    expect(routes.length).toBeGreaterThan(25);
    expect(routes.map((r) => ({ route: routeLabel(r.spec), problem: schemaProblem(r.spec) })).filter((p) => p.problem)).toEqual([]);
    // And the check does catch a route without them (a capability's new route, say).
    const bare = route({ method: "GET", path: "/v1/new", cls: "status_read" } as any, () => new Response());
    expect(schemaProblem(bare.spec)).toBe("GET /v1/new has no summary");
    const noAnswer = route({ method: "GET", path: "/v1/new", cls: "status_read", summary: "x", query: NO_QUERY, answers: {} }, () => new Response());
    expect(schemaProblem(noAnswer.spec)).toBe("GET /v1/new declares no success answer");
    const noBody = route(
      { method: "POST", path: "/v1/new", cls: "status_read", maxBody: 10, summary: "x", query: NO_QUERY, answers: { 200: { description: "x", schema: T.Object({}) } } },
      () => new Response(),
    );
    expect(schemaProblem(noBody.spec)).toBe("POST /v1/new takes a body but declares no body schema");
  });

  test("the document lists every route Elysia serves, and no other", async () => {
    const doc = (await d.request("GET", "/openapi.json")).json;
    const documented = operations(doc)
      .map((o) => o.op["x-spl-route"])
      .sort();
    const served = buildApp(d.state)
      .app.routes.map((r: { method: string; path: string }) => `${r.method} ${r.path}`)
      .sort();
    expect(documented).toEqual(served);
    for (const o of operations(doc)) expect(o.op["x-spl-route"]).toBe(`${o.method} ${o.path.replace(/\{([^}]+)\}/g, ":$1")}`);
  });

  test("a query parameter or body field that does not fit its schema is a 400 naming it, never a 500", async () => {
    const checked: string[] = [];
    for (const r of allRoutes(d.state)) {
      const path = r.spec.path.replace(/:[a-z]+/g, "x");
      for (const [name, s] of Object.entries(r.spec.query.properties as Record<string, TSchema>)) {
        // A free-form string (a thread name, an actor) takes anything; the others refuse "?!".
        if (s.type === "string" && !s.pattern && !s.anyOf) continue;
        const res = await d.request(r.spec.method, `${path}?${name}=%3F!`, r.spec.maxBody ? {} : undefined);
        expect({ route: routeLabel(r.spec), name, status: res.status, code: res.json?.code }).toEqual({ route: routeLabel(r.spec), name, status: 400, code: "INVALID_QUERY" });
        expect(res.json.message).toStartWith(`'${name}' must be `);
        checked.push(`${routeLabel(r.spec)} ?${name}`);
      }
      if (!r.spec.body || r.spec.bodyCheckedBy) continue;
      const unknown = await d.request(r.spec.method, path, { bogus_field: 1 });
      expect({ route: routeLabel(r.spec), status: unknown.status, code: unknown.json.code }).toEqual({ route: routeLabel(r.spec), status: 400, code: "INVALID_REQUEST" });
      expect(unknown.json.message).toMatch(/bogus_field|is required/);
      for (const name of Object.keys(r.spec.body.properties ?? {})) {
        const res = await d.request(r.spec.method, path, { [name]: { wrong: ["type"] } });
        expect({ route: routeLabel(r.spec), name, status: res.status }).toEqual({ route: routeLabel(r.spec), name, status: 400 });
        expect(res.json.message).toContain(`'`);
        checked.push(`${routeLabel(r.spec)} .${name}`);
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining(["GET /v1/records ?limit", "GET /v1/records ?act", "GET /v1/tasks ?all", "GET /v1/dispatches ?active", "POST /v1/tokens .scopes", "POST /v1/engine/expr/eval .context"]),
    );
    // A type the query string cannot hold is refused with what it must be.
    const all = await d.request("GET", "/v1/tasks?all=yes");
    expect([all.status, all.json.message]).toEqual([400, `'all' must be true or false, got "yes"`]);
    const scopes = await d.request("POST", "/v1/tokens", { scopes: [] });
    expect([scopes.status, scopes.json.code, scopes.json.message]).toEqual([
      400,
      "INVALID_REQUEST",
      "'scopes' must be a non-empty list of: records:read, records:write, threads:write, federation:manage, config:read, config:write, fleet:control, admin",
    ]);
  });

  test("every JSON answer fits the schema its route declares (a populated daemon, each GET route)", async () => {
    const first = await d.request("POST", "/v1/records", rec({ clock: 0 }));
    expect(first.status).toBe(201);
    expect((await d.request("POST", "/v1/records", rec({ clock: 0 }))).status).toBe(200);
    const task = await d.request("POST", "/v1/records", { thread: "th_task_doc", actor: "did:sync:user:tester", act: "INTEND", body: { task: true, goal: "document the API", alias: "DOC-1" } });
    expect(task.status).toBe(201);
    expect((await d.request("POST", "/v1/tokens", { name: "doc", scopes: ["records:read"] })).status).toBe(201);
    const ids: Record<string, string> = { id: first.json.id, ref: "DOC-1", thread: "th_task_doc" };
    const answered: string[] = [];
    for (const r of allRoutes(d.state)) {
      if (r.spec.method !== "GET") continue;
      const path = r.spec.path.replace(/:([a-z]+)/g, (_: string, p: string) => (p === "id" && r.spec.path.startsWith("/v1/threads") ? "th_doc" : (ids[p] ?? "x")));
      const res = await d.request("GET", path);
      const declared = r.spec.answers[res.status];
      if (!declared?.schema) continue;
      const check = TypeCompiler.Compile(declared.schema);
      const errors = [...check.Errors(res.json)].slice(0, 3).map((e) => `${e.path}: ${e.message}`);
      expect({ route: routeLabel(r.spec), errors }).toEqual({ route: routeLabel(r.spec), errors: [] });
      answered.push(routeLabel(r.spec));
    }
    expect(answered).toEqual(
      expect.arrayContaining([
        "GET /v1/status",
        "GET /v1/records/:id",
        "GET /v1/threads",
        "GET /v1/tasks/:ref",
        "GET /v1/tokens",
        "GET /v1/dispatches",
        "GET /v1/fleet/status",
        "GET /v1/rates",
        "GET /v1/backups",
        "GET /health",
      ]),
    );
  });

  test("RecordInput describes what records/envelope.ts accepts (the check the ingest routes run)", () => {
    const check = TypeCompiler.Compile(RecordInput);
    const cases: unknown[] = [
      rec(),
      rec({ clock: 3, parents: ["a"], data_type: "VOID", judged_by: null }),
      rec({ clock: null, parents: null, data_type: null }),
      rec({ id: "abc", object: "record", sequence: 4, created_at: 5, duplicate: true }),
      rec({ thread: "" }),
      rec({ actor: "alice" }),
      rec({ act: "SHOUT" }),
      rec({ body: [] }),
      rec({ body: "text" }),
      rec({ clock: -1 }),
      rec({ clock: 1.5 }),
      rec({ data_type: "BLOB" }),
      rec({ parents: [""] }),
      rec({ parents: "a" }),
      rec({ judged_by: 7 }),
      rec({ extra: 1 }),
      rec({ id: 4 }),
      { thread: "th", actor: "did:sync:user:a", act: "DO" },
      "a string",
      [rec()],
    ];
    const accepted = (x: unknown) => {
      try {
        prepareRecord(x);
        return true;
      } catch (err) {
        if (err instanceof RecordError) return false;
        throw err;
      }
    };
    for (const c of cases) expect({ record: c, schema: check.Check(c) }).toEqual({ record: c, schema: accepted(c) });
  });
});

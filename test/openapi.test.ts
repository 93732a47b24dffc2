// GET /openapi.json (issue 16, item 2): generated from the route declarations, valid OpenAPI 3,
// and exactly the routes the app serves: every documented operation is answered by the route it
// names (compiled binary), and every route Elysia knows is documented (in-process app).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Validator } from "@seriousme/openapi-schema-validator";
import { buildApp } from "../lib/daemon/app";
import { inProcessDaemon } from "./app-harness";
import { Instance } from "./harness";

const METHODS = ["get", "post", "delete", "put", "patch"];

function operations(doc: any): { method: string; path: string; op: any }[] {
  return Object.entries(doc.paths as Record<string, Record<string, any>>).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([m]) => METHODS.includes(m))
      .map(([m, op]) => ({ method: m.toUpperCase(), path, op })),
  );
}

describe("GET /openapi.json on the compiled binary", () => {
  const inst = new Instance();
  let doc: any;
  beforeAll(async () => {
    await inst.spl(["init"]);
    await inst.start();
    const r = await inst.http("GET", "/openapi.json");
    expect(r.status).toBe(200);
    doc = r.json;
  });
  afterAll(async () => {
    await inst.stop();
  });

  test("is a valid OpenAPI 3 document (schema validator)", async () => {
    const res = await new Validator().validate(structuredClone(doc));
    expect({ valid: res.valid, errors: res.errors }).toEqual({ valid: true, errors: undefined as any });
    expect(doc.openapi).toStartWith("3.");
  });

  test("declares the error envelope, bearer auth, bodies with their limits, path and query parameters", () => {
    expect(doc.components.schemas.Error.required).toEqual(["object", "type", "code", "message"]);
    expect(doc.components.securitySchemes.bearerAuth).toMatchObject({ type: "http", scheme: "bearer" });
    const post = doc.paths["/v1/records"].post;
    expect(post.requestBody.description).toContain("bytes");
    expect(post.responses["413"]).toEqual({ $ref: "#/components/responses/Error413" });
    expect(post.security).toEqual([{ bearerAuth: [] }]);
    expect(doc.paths["/health"].get.security).toEqual([]);
    expect(doc.paths["/v1/records/{id}"].get.parameters).toContainEqual({ name: "id", in: "path", required: true, schema: { type: "string" } });
    expect(doc.paths["/v1/records"].get.parameters.map((p: any) => p.name)).toEqual(expect.arrayContaining(["thread", "limit", "after"]));
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

  test("needs a token over TCP like /v1/*", async () => {
    expect((await inst.http("GET", "/openapi.json", undefined, { authorization: "" })).status).toBe(401);
  });
});

describe("coverage against the app's own router", () => {
  test("every route Elysia serves is in the document, and the document has no other", async () => {
    const d = await inProcessDaemon();
    try {
      const doc = (await d.request("GET", "/openapi.json")).json;
      const documented = operations(doc).map((o) => o.op["x-spl-route"]).sort();
      const served = buildApp(d.state).app.routes.map((r: { method: string; path: string }) => `${r.method} ${r.path}`).sort();
      expect(documented).toEqual(served);
      // And the OpenAPI path is the route's path with {param} for :param.
      for (const o of operations(doc)) expect(o.op["x-spl-route"]).toBe(`${o.method} ${o.path.replace(/\{([^}]+)\}/g, ":$1")}`);
    } finally {
      d.close();
    }
  });
});

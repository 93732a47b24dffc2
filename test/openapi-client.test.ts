// A client generated from GET /openapi.json (issue 28 item 2): openapi-typescript turns the
// compiled daemon's document into types, a small program written against them (post a record,
// list threads, read a task) type-checks with tsc, a program that sends a wrong record does not,
// and the program runs against the daemon.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Instance } from "./harness";

const REPO = join(import.meta.dir, "..");
const dir = mkdtempSync(join(tmpdir(), "spl-client-"));
const inst = new Instance();

const CLIENT = `import type { components, paths } from "./api";

type Record = components["schemas"]["Record"];
type NewRecord = paths["/v1/records"]["post"]["requestBody"]["content"]["application/json"];
type Threads = paths["/v1/threads"]["get"]["responses"][200]["content"]["application/json"];
type ThreadQuery = NonNullable<paths["/v1/threads"]["get"]["parameters"]["query"]>;
type Task = paths["/v1/tasks/{ref}"]["get"]["responses"][200]["content"]["application/json"];

declare const process: { env: { [name: string]: string | undefined } };
const base = process.env.SPL_URL as string;
const headers = { authorization: "Bearer " + process.env.SPL_TOKEN, "content-type": "application/json" };

async function call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; json: T }> {
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: (await res.json()) as T };
}

const intend: NewRecord = { thread: "th_generated", actor: "did:sync:user:client", act: "INTEND", body: { task: true, goal: "typed client", alias: "GEN-1" } };
const posted = await call<Record>("POST", "/v1/records", intend);
const id: string = posted.json.id;
const sequence: number = posted.json.sequence;

const query: ThreadQuery = { limit: 50, order: "recent" };
const threads = await call<Threads>("GET", "/v1/threads?limit=" + query.limit + "&order=" + query.order);
const names: string[] = threads.json.data.map((t) => t.thread + ":" + t.record_count);

const task = await call<Task>("GET", "/v1/tasks/GEN-1");
const status: "inbox" | "active" | "review" | "approved" | "rejected" | "blocked" | "deferred" | "failed" | "cancelled" = task.json.status;

console.log(JSON.stringify({ created: posted.status, id, sequence, threads: names, task: task.json.alias, status, goal: task.json.goal }));
`;

// The types must refuse what the server refuses: an act that is not one, a body that is not an object.
const WRONG = `import type { paths } from "./api";
type NewRecord = paths["/v1/records"]["post"]["requestBody"]["content"]["application/json"];
export const a: NewRecord = { thread: "th", actor: "did:sync:user:a", act: "SHOUT", body: {} };
export const b: NewRecord = { thread: "th", actor: "did:sync:user:a", act: "KNOW", body: "text" };
`;

const TSCONFIG = JSON.stringify({
  compilerOptions: { strict: true, noEmit: true, target: "es2022", module: "esnext", moduleResolution: "bundler", lib: ["es2022", "dom"], types: [], skipLibCheck: false },
});

function run(cmd: string[], env: Record<string, string> = {}) {
  const r = Bun.spawnSync(cmd, { cwd: dir, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, out: r.stdout.toString(), err: r.stderr.toString() };
}

describe("a client generated with openapi-typescript from /openapi.json", () => {
  beforeAll(async () => {
    await inst.spl(["init"]);
    await inst.start();
    const doc = await fetch(`${inst.url}/openapi.json`);
    expect(doc.status).toBe(200);
    writeFileSync(join(dir, "openapi.json"), await doc.text());
    writeFileSync(join(dir, "tsconfig.json"), TSCONFIG);
  });
  afterAll(async () => {
    await inst.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("generates types, type-checks a program that posts a record, lists threads and reads a task, and runs it", async () => {
    const gen = run(["bun", "--preload", join(REPO, "test", "fixtures", "typescript5.ts"), join(REPO, "node_modules", "openapi-typescript", "bin", "cli.js"), "openapi.json", "-o", "api.ts"]);
    expect({ code: gen.code, err: gen.err.includes("rror") ? gen.err : "" }).toEqual({ code: 0, err: "" });
    const types = await Bun.file(join(dir, "api.ts")).text();
    expect(types).toContain("RecordInput: {");

    writeFileSync(join(dir, "client.ts"), CLIENT);
    const tsc = join(REPO, "node_modules", ".bin", "tsc");
    const checked = run([tsc, "-p", ".", "--noEmit"]);
    expect({ code: checked.code, out: checked.out }).toEqual({ code: 0, out: "" });

    writeFileSync(join(dir, "wrong.ts"), WRONG);
    const refused = run([tsc, "-p", ".", "--noEmit"]);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toContain("wrong.ts(3,");
    expect(refused.out).toContain('"SHOUT"');
    expect(refused.out).toContain("wrong.ts(4,");
    rmSync(join(dir, "wrong.ts"));

    const ran = run(["bun", "client.ts"], { SPL_URL: inst.url, SPL_TOKEN: inst.token! });
    expect({ code: ran.code, err: ran.err }).toEqual({ code: 0, err: "" });
    const out = JSON.parse(ran.out);
    expect(out).toMatchObject({ created: 201, task: "GEN-1", status: "inbox", goal: "typed client" });
    expect(out.id).toMatch(/^[0-9a-f]{64}$/);
    expect(out.threads).toContain("th_generated:1");
  });
});

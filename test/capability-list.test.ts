// The daemon is built from one list of capabilities (ARCHITECTURE.md "Capabilities"). This test
// proves a new capability is one module plus one list entry: it copies the sources, adds
// test/fixtures/toy-capability.ts as lib/toy/capability.ts and one entry to lib/capabilities.ts,
// compiles that copy, and drives the compiled daemon: the toy's config section, route with its
// permission class, fold, service, write check, CEL function (in-process rules, the evaluation
// worker and the CLI's own check), status field, metrics and doctor row all work, and the fold
// is rebuilt after a restart. It also checks the import graph has no cycle.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync, mkdirSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { Instance } from "./harness";

const REPO = resolve(import.meta.dir, "..");
const scratch = mkdtempSync(join(tmpdir(), "spl-toy-"));
const bin = join(scratch, "spl-toy");
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

beforeAll(() => {
  const src = join(scratch, "src");
  for (const p of ["index.ts", "lib", "commands", "package.json", "tsconfig.json", ".ci"]) cpSync(join(REPO, p), join(src, p), { recursive: true });
  symlinkSync(join(REPO, "node_modules"), join(src, "node_modules"));
  // The one new module...
  mkdirSync(join(src, "lib", "toy"));
  cpSync(join(REPO, "test", "fixtures", "toy-capability.ts"), join(src, "lib", "toy", "capability.ts"));
  // ...and the one list entry.
  const listFile = join(src, "lib", "capabilities.ts");
  const list = readFileSync(listFile, "utf8");
  const entry = /export const CAPABILITIES: readonly Capability\[\] = \[/;
  expect(list).toMatch(entry);
  writeFileSync(listFile, `import { toyCapability } from "./toy/capability";\n${list.replace(entry, (m) => `${m}toyCapability, `)}`);
  const built = Bun.spawnSync(["bun", join(src, ".ci", "build.ts"), "--outfile", bin], { cwd: src, env: { ...process.env, SPL_COMMIT: "toy" }, stderr: "pipe", stdout: "pipe" });
  if (built.exitCode !== 0) throw new Error(`building the copy with the toy capability failed: ${built.stderr.toString()}${built.stdout.toString()}`);
}, 240_000);

describe("a capability is one module and one list entry", () => {
  test("every part of the toy works on the compiled daemon, and again after a restart", async () => {
    const inst = new Instance({ bin });
    expect((await inst.spl(["init"])).code).toBe(0);
    writeFileSync(inst.path("config.toml"), `${readFileSync(inst.path("config.toml"), "utf8")}\n[toy]\ngreeting = "hello"\ngretting = "typo"\n`);
    const start = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(start.code).toBe(0);
    // Config section: parsed, shown by `spl config show`, and its unknown key warned about.
    expect(start.stderr).toContain("unknown key 'gretting' in [toy] is ignored — known keys there: greeting");
    const shown = JSON.parse((await inst.spl(["config", "show", "-o", "json"])).stdout);
    expect(shown.sections.toy).toEqual({ greeting: "hello" });

    // Fold and write check: toy records count; a forbidden one is refused and not written.
    for (let i = 0; i < 3; i++) expect((await inst.socket("POST", "/v1/records", { thread: "th_toys", actor: "did:sync:user:tester", act: "DO", body: { toy: true, n: i } })).status).toBe(201);
    const refused = await inst.socket("POST", "/v1/records", { thread: "th_toys", actor: "did:sync:user:tester", act: "DO", body: { toy: true, toy_forbidden: true } });
    expect([refused.status, refused.json.code]).toEqual([403, "TOY_REFUSED"]);

    // Route with its permission class: config_read, so a records:read token is refused.
    const token = (await Bun.file(inst.path("token")).text()).trim();
    expect((await inst.http("GET", "/v1/toy", undefined, { authorization: `Bearer ${token}` })).json).toEqual({ greeting: "hello", toys: 3 });
    const created = await inst.spl(["token", "create", "--scopes", "records:read", "-o", "json"]);
    const reader = created.stderr.match(/token \(shown once\): (\S+)/)![1]!;
    const denied = await inst.http("GET", "/v1/toy", undefined, { authorization: `Bearer ${reader}` });
    expect([denied.status, denied.json.code]).toEqual([403, "SCOPE_FORBIDDEN"]);

    // Service (started, sees commits) and status field.
    const status = (await inst.socket("GET", "/v1/status")).json;
    expect(status.toy.started).toBe(true);
    expect(status.toy.commits_seen).toBeGreaterThanOrEqual(3);

    // CEL: the CLI's own check knows the function; the evaluation worker reads its facts; a
    // health check (in-process rule) reads them live.
    expect((await inst.spl(["expr", "check", "toy_count() == 3", "--context", "routing"])).code).toBe(0);
    const evaluated = await inst.spl(["expr", "eval", "toy_count()", "--context", "routing", "-o", "json"]);
    expect(JSON.parse(evaluated.stdout).value).toBe(3);
    const rule = await inst.spl(["config", "add-health", "--name", "three-toys", "--severity", "warn", "--expression", "toy_count() >= 3"]);
    expect(rule.code).toBe(0);
    expect((await inst.socket("GET", "/v1/engine/health")).json.checks).toEqual([expect.objectContaining({ name: "three-toys", status: "pass" })]);

    // Metrics and the doctor row.
    expect((await inst.http("GET", "/metrics", undefined, { authorization: `Bearer ${token}` })).text).toContain("spl_toys 3");
    expect((await inst.spl(["doctor"])).stdout).toMatch(/✓ toy\s+greeting hello/);

    // After a restart the fold is rebuilt from the log.
    expect((await inst.spl(["restart"])).code).toBe(0);
    expect((await inst.http("GET", "/v1/toy", undefined, { authorization: `Bearer ${token}` })).json).toEqual({ greeting: "hello", toys: 3 });
    expect(JSON.parse((await inst.spl(["expr", "eval", "toy_count()", "--context", "routing", "-o", "json"])).stdout).value).toBe(3);
    await inst.stop();
  }, 120_000);
});

describe("the import graph", () => {
  const files: string[] = [];
  for (const top of ["lib", "commands"]) {
    for (const f of readdirSync(join(REPO, top), { recursive: true }) as string[]) {
      if (f.endsWith(".ts") && !f.endsWith(".test.ts")) files.push(join(REPO, top, f));
    }
  }
  files.push(join(REPO, "index.ts"));
  const known = new Set(files);
  const imports = new Map<string, string[]>();
  const spec = /(?:import|export)\s[^'"]*?from\s*["'](\.[^"']+)["']|import\(\s*["'](\.[^"']+)["']\s*\)/g;
  for (const f of files) {
    const out: string[] = [];
    for (const m of readFileSync(f, "utf8").matchAll(spec)) {
      const target = resolve(dirname(f), m[1] ?? m[2]!);
      const hit = [target, `${target}.ts`, join(target, "index.ts")].find((c) => known.has(c));
      if (hit) out.push(hit);
    }
    imports.set(f, out);
  }
  const rel = (f: string) => relative(REPO, f);

  test("has no cycle (type-only imports count too)", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const stack: string[] = [];
    const visit = (f: string) => {
      state.set(f, "open");
      stack.push(f);
      for (const g of imports.get(f) ?? []) {
        if (state.get(g) === "open") cycles.push([...stack.slice(stack.indexOf(g)), g].map(rel).join(" → "));
        else if (!state.has(g)) visit(g);
      }
      stack.pop();
      state.set(f, "done");
    };
    for (const f of files) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });

  test("no capability imports the daemon's assembly or the server", () => {
    const capabilityDirs = ["lib/tasks", "lib/dispatch", "lib/fleet", "lib/fanout", "lib/backup"].map((d) => join(REPO, d));
    const offending = files
      .filter((f) => capabilityDirs.some((d) => f.startsWith(`${d}/`)))
      .flatMap((f) => (imports.get(f) ?? []).filter((g) => g.startsWith(join(REPO, "lib", "daemon") + "/")).map((g) => `${rel(f)} imports ${rel(g)}`));
    expect(offending).toEqual([]);
    expect(existsSync(join(REPO, "lib", "capabilities.ts"))).toBe(true);
  });
});

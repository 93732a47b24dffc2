// `bun run build` on a host like a container builder: a copy of the sources without .git, and a
// PATH holding only bun (no git). The commit comes from SPL_COMMIT, else reads "unknown".
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";

setDefaultTimeout(120_000);
const REPO = resolve(import.meta.dir, "..");
let root: string;
let src: string;
let env: Record<string, string>;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "spl-build-test-"));
  src = join(root, "src");
  const skip = new Set([".git", "node_modules", "dist"]);
  cpSync(REPO, src, { recursive: true, filter: (p) => !skip.has(relative(REPO, p).split("/")[0]!) });
  symlinkSync(join(REPO, "node_modules"), join(src, "node_modules"));
  const bin = join(root, "bin");
  mkdirSync(bin);
  symlinkSync(process.execPath, join(bin, "bun"));
  symlinkSync(Bun.which("sh")!, join(bin, "sh")); // package.json scripts may run through sh
  env = { PATH: bin, HOME: join(root, "home"), SYNCROPEL_HOME: join(root, "home", ".syncro") };
});

afterAll(() => {
  if (root) rmSync(root, { recursive: true, force: true });
});

function build(extra: Record<string, string>): { commit: string; version: string } {
  const r = Bun.spawnSync([process.execPath, "run", "build"], { cwd: src, env: { ...env, ...extra } });
  expect({ code: r.exitCode, stderr: r.stderr.toString() }).toEqual({ code: 0, stderr: expect.any(String) });
  const v = Bun.spawnSync([join(src, "dist", "spl"), "version", "-o", "json"], { env });
  return JSON.parse(v.stdout.toString());
}

test("bun run build without git or .git: commit from SPL_COMMIT, else unknown", () => {
  expect(Bun.spawnSync([Bun.which("sh")!, "-c", "command -v git"], { env }).exitCode).not.toBe(0);
  expect(build({})).toMatchObject({ commit: "unknown", version: require("../package.json").version });
  expect(build({ SPL_COMMIT: "0123456789ab" })).toMatchObject({ commit: "0123456789ab" });
});

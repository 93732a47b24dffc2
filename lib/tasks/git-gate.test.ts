import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspectTree, parsePorcelain, uncommittedError } from "./git-gate";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
function sh(cwd: string, ...args: string[]) {
  const r = Bun.spawnSync(["git", ...args], { cwd, env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" } });
  if (r.exitCode !== 0) throw new Error(r.stderr.toString());
  return r.stdout.toString().trim();
}
function repo(): string {
  const d = mkdtempSync(join(tmpdir(), "spl-gate-"));
  dirs.push(d);
  sh(d, "init", "-q");
  writeFileSync(join(d, "a.txt"), "a\n");
  sh(d, "add", "a.txt");
  sh(d, "commit", "-qm", "first");
  return d;
}

describe("completion gate", () => {
  test("porcelain: renames consume their source entry; untracked apart", () => {
    expect(parsePorcelain("R  new\0old\0 M b\0?? c\0A  d\0")).toEqual({ changed: ["new", "b", "d"], untracked: ["c"] });
  });
  test("clean tree gives HEAD; dirty, staged and untracked are told apart", () => {
    const d = repo();
    const clean = inspectTree(d);
    expect(clean).toMatchObject({ inRepo: true, changed: [], untracked: [], commit: sh(d, "rev-parse", "HEAD") });
    writeFileSync(join(d, "new.txt"), "u\n");
    expect(inspectTree(d)).toMatchObject({ changed: [], untracked: ["new.txt"] });
    writeFileSync(join(d, "a.txt"), "changed\n");
    expect(inspectTree(d)).toMatchObject({ changed: ["a.txt"] });
    sh(d, "add", "a.txt");
    const staged = inspectTree(d);
    expect(staged).toMatchObject({ changed: ["a.txt"] });
    const err = uncommittedError(staged as any);
    expect(err.oneLine).toContain("uncommitted changes in");
    expect(err.oneLine).toContain("--force");
    expect(err.oneLine).toContain("a.txt");
  });
  test("outside a repository the gate passes; a missing dir is a clear error", () => {
    const d = mkdtempSync(join(tmpdir(), "spl-nogit-"));
    dirs.push(d);
    expect(inspectTree(d)).toEqual({ inRepo: false });
    expect(() => inspectTree(join(d, "nope"))).toThrow(/is not a directory/);
  });
});

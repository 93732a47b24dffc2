// The completion gate end to end (issue 10 point 2): the compiled binary run inside real git
// repositories made in temp dirs. Dirty tracked or staged files refuse `task done` and write
// nothing; untracked files do not; --force passes and is recorded; a clean tree records HEAD;
// outside a repository the gate passes; --repo checks another tree; no git → a clear error.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Instance, SPL, type Run } from "./harness";

const inst = new Instance();
const dirs: string[] = [];
const tempDir = (tag: string) => {
  const d = mkdtempSync(join(tmpdir(), `spl-${tag}-`));
  dirs.push(d);
  return d;
};

/** git with no global or system config of the machine running the tests. */
function git(cwd: string, ...args: string[]): string {
  const r = Bun.spawnSync(["git", ...args], { cwd, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: inst.home, GIT_CONFIG_NOSYSTEM: "1" } });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(" ")}: ${r.stderr.toString()}`);
  return r.stdout.toString().trim();
}

/** A repository with one committed file, a.txt, and its own user.name/email. */
function repo(): string {
  const d = tempDir("repo");
  git(d, "init", "-q");
  git(d, "config", "user.name", "Spl Test");
  git(d, "config", "user.email", "spl-test@example.invalid");
  writeFileSync(join(d, "a.txt"), "a\n");
  mkdirSync(join(d, "src"));
  writeFileSync(join(d, "src", "b.txt"), "b\n");
  git(d, "add", ".");
  git(d, "commit", "-qm", "first");
  return d;
}

/** `spl <args>` run from `cwd`, as an operator in that directory would. */
async function splIn(cwd: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const proc = Bun.spawn([SPL, ...args], { cwd, env: { ...inst.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

async function ok(args: string[], cwd = inst.root) {
  const r = await splIn(cwd, args);
  if (r.code !== 0) throw new Error(`spl ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}
const show = async (alias: string) => JSON.parse(await ok(["task", "show", alias, "-o", "json"]));
const threadLength = async (thread: string) => JSON.parse(await ok(["thread", "records", thread, "-o", "json"])).length as number;

/** An active task, ready for `done`. */
async function activeTask(alias: string) {
  await ok(["task", "add", `work for ${alias}`, "--alias", alias]);
  await ok(["task", "start", alias]);
  return (await show(alias)).thread as string;
}

/** A refused `done`: exit 1, nothing printed on stdout, nothing written, the task still active. */
async function refusedDone(cwd: string, alias: string, thread: string, extra: string[] = [], env: Record<string, string> = {}) {
  const before = await threadLength(thread);
  const r = await splIn(cwd, ["task", "done", alias, ...extra], env);
  expect(r.code).toBe(1);
  expect(r.stdout).toBe("");
  expect(r.stderr.startsWith("error: ")).toBe(true);
  expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace
  expect(await threadLength(thread)).toBe(before);
  expect((await show(alias)).status).toBe("active");
  return r.stderr;
}

beforeAll(async () => {
  await ok(["init"]);
  await inst.start();
});
afterAll(async () => {
  await inst.stop();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("spl task done: the completion gate", () => {
  test("a modified tracked file refuses done with the paths and the --force hint; staged-only changes refuse too", async () => {
    const d = repo();
    const thread = await activeTask("GATE-1");
    writeFileSync(join(d, "a.txt"), "changed\n");
    writeFileSync(join(d, "src", "b.txt"), "changed too\n");
    const err = await refusedDone(d, "GATE-1", thread, ["--summary", "did it"]);
    const lines = err.trimEnd().split("\n");
    expect(lines[0]).toBe(`error: uncommitted changes in ${git(d, "rev-parse", "--show-toplevel")} (2 files) — commit your work first, or pass --force if you are sure (e.g. triage of pre-existing tasks)`);
    expect(lines.slice(1).map((l) => l.trim()).sort()).toEqual(["a.txt", "src/b.txt"]);

    // Staged but not committed is still uncommitted, from a subdirectory as well.
    git(d, "add", "a.txt");
    git(d, "checkout", "--", "src/b.txt");
    const staged = await refusedDone(join(d, "src"), "GATE-1", thread);
    expect(staged).toContain("uncommitted changes");
    expect(staged).toContain("(1 file)");
    expect(staged).toContain("a.txt");
  });

  test("a clean tree records HEAD's commit; untracked files do not block and are mentioned", async () => {
    const d = repo();
    await activeTask("GATE-2");
    writeFileSync(join(d, "notes.tmp"), "scratch\n");
    const r = await splIn(d, ["task", "done", "GATE-2", "--summary", "shipped"]);
    expect(r.code).toBe(0);
    const head = git(d, "rev-parse", "HEAD");
    expect(r.stdout).toBe(`GATE-2: active → review  (commit ${head.slice(0, 12)})\n`);
    expect(r.stderr).toContain("1 untracked file(s)");
    const t = await show("GATE-2");
    expect(t).toMatchObject({ status: "review", commit: head, repo: git(d, "rev-parse", "--show-toplevel"), forced: false });
    const done = JSON.parse(await ok(["thread", "records", t.thread, "-o", "json"])).at(-1);
    expect(done.body).toMatchObject({ task_event: "done", commit: head, summary: "shipped" });
    expect(done.body.forced).toBeUndefined();
  });

  test("--force passes a dirty tree and is recorded on the task", async () => {
    const d = repo();
    await activeTask("GATE-3");
    writeFileSync(join(d, "a.txt"), "dirty\n");
    const r = await splIn(d, ["task", "done", "GATE-3", "--force"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("GATE-3: active → review");
    const t = await show("GATE-3");
    expect(t).toMatchObject({ status: "review", forced: true });
    const done = JSON.parse(await ok(["thread", "records", t.thread, "-o", "json"])).at(-1);
    expect(done.body.forced).toBe(true);
    expect(await ok(["task", "show", "GATE-3"])).toContain("forced:");
  });

  test("outside a repository the gate passes; --repo DIR checks that tree instead", async () => {
    const plain = tempDir("plain");
    await activeTask("GATE-4");
    const r = await splIn(plain, ["task", "done", "GATE-4"]);
    expect(r.code).toBe(0);
    expect(await show("GATE-4")).toMatchObject({ status: "review", commit: null, repo: null, forced: false });

    const dirty = repo();
    writeFileSync(join(dirty, "a.txt"), "dirty\n");
    const thread = await activeTask("GATE-5");
    expect(await refusedDone(plain, "GATE-5", thread, ["--repo", dirty])).toContain(`uncommitted changes in ${git(dirty, "rev-parse", "--show-toplevel")}`);
    git(dirty, "commit", "-qam", "second");
    expect((await splIn(plain, ["task", "done", "GATE-5", "--repo", dirty])).code).toBe(0);
    expect((await show("GATE-5")).commit).toBe(git(dirty, "rev-parse", "HEAD"));
    expect(await refusedDone(plain, "GATE-6", await activeTask("GATE-6"), ["--repo", join(plain, "missing")])).toContain("is not a directory");
  });

  test("without git on PATH: a clear one-line error naming git and --force, nothing written", async () => {
    const d = repo();
    const thread = await activeTask("GATE-7");
    const noGit = tempDir("nogit-path");
    const err = await refusedDone(d, "GATE-7", thread, [], { PATH: noGit });
    expect(err.trimEnd().split("\n").length).toBe(1);
    expect(err).toContain("needs git, which is not installed or not on PATH — install git, or pass --force");
    // --force still records the task as done without git.
    expect((await splIn(d, ["task", "done", "GATE-7", "--force"], { PATH: noGit })).code).toBe(0);
    expect(await show("GATE-7")).toMatchObject({ status: "review", forced: true });
  });

  test.skipIf(process.getuid?.() !== 0)("a repository owned by another user: git's ownership refusal is named with the safe.directory fix", async () => {
    const d = repo();
    const thread = await activeTask("GATE-8");
    chownSync(d, 4242, 4242);
    const err = await refusedDone(d, "GATE-8", thread, [], { GIT_CONFIG_NOSYSTEM: "1" }); // a machine-wide safe.directory would hide it
    expect(err).toContain("is owned by another user");
    expect(err).toContain("git config --global --add safe.directory");
  });
});

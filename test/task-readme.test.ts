// The README's Tasks walk-through (issue 10 point 7), pasted into bash as an operator would: the
// compiled binary as `spl` on PATH, a running daemon, real git.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { Instance, SPL } from "./harness";

const inst = new Instance();

/** The first ```sh block of the README's "## Tasks" section. */
function readmeTasksScript(): string {
  const readme = readFileSync(resolve(import.meta.dir, "..", "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("\n## Tasks\n"));
  const m = /```sh\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error("README.md has no ```sh block under ## Tasks");
  return m[1]!;
}

beforeAll(async () => {
  expect((await inst.spl(["init"])).code).toBe(0);
  await inst.start();
});
afterAll(async () => {
  await inst.stop();
});

test("the README Tasks section runs as written: the gate refuses, the commit passes, another actor approves", async () => {
  const bin = join(inst.root, "bin");
  mkdirSync(bin);
  symlinkSync(SPL, join(bin, "spl"));
  const script = join(inst.root, "tasks.sh");
  writeFileSync(script, readmeTasksScript());
  const proc = Bun.spawn(["bash", script], {
    cwd: inst.root,
    env: { ...inst.env, PATH: `${bin}:${inst.env.PATH}`, TMPDIR: inst.root, GIT_CONFIG_NOSYSTEM: "1" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  expect(code).toBe(0);

  expect(stdout).toContain("◇ Task created: Add input validation\n  thread: th_");
  expect(stdout).toContain("  alias:  TSK-0001\n");
  // The first done met the gate; nothing was written, so the second done moved it from active.
  expect(stderr).toMatch(/^error: uncommitted changes in \S+ \(1 file\) — commit your work first, or pass --force/m);
  expect(stdout).toMatch(/TSK-0001: inbox → active\nTSK-0001: active → review {2}\(commit [0-9a-f]{12}\)\nTSK-0001: review → approved\n/);
  expect(stdout).toMatch(/ID\s+STATUS\s+PRI\s+GOAL\s+ASSIGN\nTSK-0001\s+approved\s+high\s+Add input validation\s+—\n/);
  expect(stdout).toMatch(/approve\s+review → approved\s+did:sync:user:reviewer\s+looks good/);
  expect(stdout).toMatch(/did:sync:user:tester\s+general\s+1\s+1\s+0\.\d{3}/);
});

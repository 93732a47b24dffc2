// The end-to-end harness refuses a dist/spl older than the sources it is meant to hold, and a
// wait that fails says what it waited for and what it saw.
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readUntil, staleBinary, waitFor } from "./harness";

test("staleBinary: missing or older than any lib/, commands/ or index.ts source → names `bun run build`", () => {
  const repo = mkdtempSync(join(tmpdir(), "spl-harness-"));
  try {
    for (const d of ["lib/store", "commands", "dist"]) mkdirSync(join(repo, d), { recursive: true });
    const bin = join(repo, "dist", "spl");
    const at = (path: string, secs: number) => (writeFileSync(path, "x"), utimesSync(path, secs, secs));
    at(join(repo, "index.ts"), 1000);
    at(join(repo, "lib", "store", "records.ts"), 1000);
    at(join(repo, "commands", "serve.ts"), 1000);
    expect(staleBinary(bin, repo)).toMatch(/does not exist — run `bun run build`/);
    at(bin, 2000);
    expect(staleBinary(bin, repo)).toBeNull();
    // A test file beside the sources is not compiled in: editing it needs no rebuild.
    at(join(repo, "lib", "store", "records.test.ts"), 3000);
    expect(staleBinary(bin, repo)).toBeNull();
    at(join(repo, "lib", "store", "records.ts"), 3000);
    expect(staleBinary(bin, repo)).toMatch(/older than lib\/store\/records\.ts.*run `bun run build`/);
    at(bin, 4000);
    at(join(repo, "commands", "serve.ts"), 5000);
    expect(staleBinary(bin, repo)).toMatch(/older than commands\/serve\.ts/);
    at(bin, 6000);
    at(join(repo, "index.ts"), 7000);
    expect(staleBinary(bin, repo)).toMatch(/older than index\.ts/);
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
});

test("the dist/spl these tests drive is at least as new as the sources", () => {
  if (process.env.SPL_BIN) return; // a binary chosen explicitly is the caller's business
  expect(staleBinary(`${import.meta.dir}/../dist/spl`, `${import.meta.dir}/..`)).toBeNull();
});

test("waitFor returns the first value that holds; a timeout names what it waited for and the last thing it saw", async () => {
  let n = 0;
  expect(await waitFor("n to reach 3", () => ++n, { stepMs: 1, until: (v) => v >= 3 })).toBe(3);
  expect(await waitFor("a truthy value", () => (++n > 5 ? { n } : null), { stepMs: 1 })).toEqual({ n: 6 });
  const err = await waitFor("worker-b to be archived", () => "stale", { timeoutMs: 50, stepMs: 10, until: (s) => s === "archived" }).catch((e: Error) => e);
  expect(String(err)).toMatch(/^Error: timed out after 0\.05 s \(\d+ looks\) waiting for worker-b to be archived; last saw: "stale"$/);
  // A probe that throws has not seen it yet; the error is what it saw.
  const thrown = await waitFor("a log line", () => {
    throw new Error("ENOENT: no such file");
  }, { timeoutMs: 30, stepMs: 10 }).catch((e: Error) => e);
  expect(String(thrown)).toContain("waiting for a log line; last saw: Error: ENOENT: no such file");
  // `show` picks what the message prints of a value.
  const shown = await waitFor("3 dispatches", () => ({ total: 2, data: ["long"] }), { timeoutMs: 30, stepMs: 10, show: (d) => d.total, until: (d) => d.total === 3 }).catch((e: Error) => e);
  expect(String(shown)).toEndWith("waiting for 3 dispatches; last saw: 2");
});

test("readUntil returns the text once it holds; an output that ends first is named with what it held", async () => {
  const proc = Bun.spawn(["sh", "-c", "echo one; echo two"], { stdout: "pipe" });
  expect(await readUntil(proc.stdout, "two lines", (t) => t.includes("two\n"))).toBe("one\ntwo\n");
  const short = Bun.spawn(["sh", "-c", "echo only"], { stdout: "pipe" });
  const err = await readUntil(short.stdout, "a second frame", (t) => t.includes("frame")).catch((e: Error) => e);
  expect(String(err)).toBe('Error: the output ended while waiting for a second frame; saw: "only\\n"');
});

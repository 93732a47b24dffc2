// The end-to-end harness refuses a dist/spl older than the sources it is meant to hold.
import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { staleBinary } from "./harness";

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

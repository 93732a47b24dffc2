// Progress on long work (issue 16, item 4), on the compiled binary: the daemon logs one line per
// startup phase with its duration; `spl backup` and `spl restore` show percent and rate on a
// terminal (util-linux `script` gives them one) and stay plain when piped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Instance, SPL, waitFor } from "./harness";

const inst = new Instance();

/** Runs spl with a terminal as stdin/stdout/stderr; answers everything it printed. */
function onTerminal(args: string[]): { code: number; text: string } {
  const cmd = [SPL, ...args].map((a) => `'${a}'`).join(" ");
  const r = Bun.spawnSync(["script", "-qefc", cmd, "/dev/null"], { env: inst.env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, text: r.stdout.toString() };
}

const FINISHED = (phase: string) => new RegExp(`${phase.replace(/[()]/g, "\\$&")}  100%  [\\d.]+ (B|KiB|MiB) in \\d+\\.\\d\\d s \\([\\d.]+ (B|KiB|MiB|GiB)/s\\)`);

beforeAll(async () => {
  await inst.spl(["init"]);
  await inst.start();
  for (let b = 0; b < 3; b++) {
    const records = Array.from({ length: 1000 }, (_, i) => ({ thread: `th_p${i % 20}`, actor: "did:sync:user:tester", act: "KNOW", body: { i, b, text: "progress" } }));
    const r = await inst.http("POST", "/v1/records/batch", { records });
    expect({ status: r.status, created: r.json.data.filter((d: any) => d.status === "created").length }).toEqual({ status: 200, created: 1000 });
  }
  await inst.stop();
  await inst.start(); // an existing store: integrity check, startup backup (in a worker), rebuild
});
afterAll(async () => {
  await inst.stop();
});

describe("daemon startup phases", () => {
  test("one log line per phase, in startup order, each with its duration", async () => {
    const stored = JSON.parse((await inst.spl(["status", "-o", "json"])).stdout).records;
    expect(stored).toBeGreaterThanOrEqual(3000);
    const read = () => readFileSync(inst.path("logs", "spl.log"), "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l));
    // Log lines reach the file in batches: wait for the second start's "ready".
    const lines = await waitFor("the second start's 'ready' log line", read, { show: (all) => all.filter((l) => l.msg === "ready").length + " 'ready' lines", until: (all) => all.filter((l) => l.msg === "ready").length >= 2 });
    const lastStart = lines.findLastIndex((l) => l.msg === "starting spl serve");
    const phases = lines.slice(lastStart).filter((l) => l.msg === "phase finished");
    // The startup backup is no phase of its own: a worker writes it while the daemon serves.
    expect(phases.map((p) => p.phase)).toEqual(["integrity check (files)", "integrity check (quick_check)", "rebuild_from_store"]);
    for (const p of phases) expect(Number.isInteger(p.ms) && p.ms >= 0).toBe(true);
    expect(phases[1].bytes).toBeGreaterThan(0);
    expect(phases[2].records).toBe(stored); // what rebuild_from_store went through
  });
});

describe("spl backup and spl restore", () => {
  const skip = !Bun.which("script");
  if (skip) console.log("skipped the terminal checks: util-linux `script` is not installed");

  test.skipIf(skip)("backup on a terminal ends its phase with percent, size, duration and rate", () => {
    const r = onTerminal(["backup", "--out", join(inst.root, "tty.bak")]);
    expect(r.code).toBe(0);
    expect(r.text).toMatch(FINISHED("snapshot"));
    expect(r.text).toContain("Backup written:");
  });

  test("piped, backup prints exactly its report: no progress, nothing on stderr", async () => {
    const r = await inst.spl(["backup", "--out", join(inst.root, "piped.bak")]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).not.toContain("%");
    expect(r.stdout).not.toContain("\r");
    expect(r.stdout).toStartWith("Backup written:");
  });

  test.skipIf(skip)("restore on a terminal shows the check and the copy", async () => {
    await inst.stop();
    const r = onTerminal(["restore", join(inst.root, "piped.bak")]);
    expect(r.code).toBe(0);
    expect(r.text).toMatch(FINISHED("check backup"));
    expect(r.text).toMatch(FINISHED("copy"));
    const piped = await inst.spl(["restore", join(inst.root, "tty.bak")]);
    expect(piped.code).toBe(0);
    expect(piped.stderr).toBe("");
    expect(piped.stdout).not.toContain("%");
    await inst.start();
  });
});

describe("off-host push and restore on a terminal (issue 28 item 5)", () => {
  const skip = !Bun.which("script");

  test("sizes and rates read like a person writes them: whole bytes, binary units, no raw counts", async () => {
    const { formatBytes, progressLine } = await import("../lib/progress/line");
    expect(formatBytes(755.9055118110236)).toBe("756 B");
    expect(formatBytes(127873024)).toBe("122 MiB");
    expect(progressLine("download", 12 << 20, 48 << 20, 1000, "bytes")).toBe("download   25%  12 MiB of 48 MiB  12 MiB/s");
    expect(progressLine("rebuild_from_store", 1234567, 2469134, 1000, "records")).toBe("rebuild_from_store   50%  1,234,567 records of 2,469,134 records  1,234,567 records/s");
  });

  test.skipIf(skip)("push shows each step with its rate; restore from the URL shows the copy's percent as it is read, and its log line names the URL", async () => {
    const off = join(inst.root, "offsite");
    const home = new Instance();
    expect((await home.spl(["init"])).code).toBe(0);
    appendFileSync(home.path("config.toml"), `\n[backup.offsite]\nurl = "file://${off}"\n`);
    await home.start();
    const records = Array.from({ length: 1000 }, (_, i) => ({ thread: `th_o${i % 10}`, actor: "did:sync:user:tester", act: "KNOW", body: { i, text: "x".repeat(200) } }));
    expect((await home.http("POST", "/v1/records/batch", { records })).status).toBe(200);
    const pushed = onTerminalAt(home, ["backup", "push"]);
    expect(pushed.code).toBe(0);
    for (const step of ["snapshot", "compress and upload"]) expect(pushed.text).toMatch(FINISHED(step));
    expect(pushed.text).not.toMatch(/\d{7,} bytes|\d\.\d{4,}/); // no raw byte counts, no long decimals
    const url = /Pushed (file:\/\/\S+)/.exec(pushed.text)![1]!;
    await home.stop();

    const restored = onTerminalAt(home, ["restore", url, "--force"]);
    expect(restored.code).toBe(0);
    const copy = url.split("/").pop()!;
    // A file:// copy is read and verified in place ("verify"); an s3:// one is downloaded ("download").
    expect(restored.text).toMatch(new RegExp(`verify ${copy} +\\d+%  [\\d.]+ (B|KiB|MiB) of [\\d.]+ (B|KiB|MiB)  [\\d.]+ (B|KiB|MiB|GiB)/s`));
    expect(restored.text).toMatch(FINISHED(`verify ${copy}`));
    expect(restored.text).toMatch(FINISHED(`decompress ${copy}`));
    expect(restored.text).toContain(`Restored ${url}`);
    const logged = readFileSync(home.path("logs", "spl.log"), "utf8").split("\n").filter((l) => l.includes("store restored from backup")).map((l) => JSON.parse(l));
    expect(logged.at(-1)!.from).toBe(url);
  });
});

describe("off-host restore from S3 on a terminal (s3rver on loopback)", () => {
  test.skipIf(!Bun.which("script"))("the download shows its percent and rate, then the finished line", async () => {
    const { startS3, S3_KEY, S3_SECRET } = await import("./s3-server");
    const s3 = await startS3();
    const home = new Instance({ env: { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET, AWS_ENDPOINT_URL: `http://127.0.0.1:${s3.port}` } });
    try {
      expect((await home.spl(["init"])).code).toBe(0);
      appendFileSync(home.path("config.toml"), `\n[backup.offsite]\nurl = "s3://spl-backups/progress"\nendpoint = "http://127.0.0.1:${s3.port}"\nregion = "us-east-1"\n`);
      await home.start();
      const records = Array.from({ length: 1000 }, (_, i) => ({ thread: `th_s${i % 10}`, actor: "did:sync:user:tester", act: "KNOW", body: { i, text: "x".repeat(200) } }));
      expect((await home.http("POST", "/v1/records/batch", { records })).status).toBe(200);
      await home.stop(); // its schedule would push too; one push, by hand, is enough here
      // s3rver runs in this process: the terminal runs asynchronously so it can answer.
      const pushed = await onTerminalAsync(home, ["backup", "push"]);
      expect({ code: pushed.code, text: pushed.code === 0 ? "" : pushed.text }).toEqual({ code: 0, text: "" });
      const url = /Pushed (s3:\/\/\S+)/.exec(pushed.text)![1]!;
      const restored = await onTerminalAsync(home, ["restore", url, "--force"]);
      expect(restored.code).toBe(0);
      const copy = url.split("/").pop()!;
      expect(restored.text).toMatch(new RegExp(`download ${copy} +\\d+%  [\\d.]+ (B|KiB|MiB) of [\\d.]+ (B|KiB|MiB)  [\\d.]+ (B|KiB|MiB|GiB)/s`));
      expect(restored.text).toMatch(FINISHED(`download ${copy}`));
      expect(restored.text).toContain(`Restored ${url}`);
    } finally {
      await s3.stop();
    }
  });
});

/** Like onTerminalAt, without blocking this process (which may be serving the other end). */
async function onTerminalAsync(home: Instance, args: string[]): Promise<{ code: number; text: string }> {
  const cmd = [SPL, ...args].map((a) => `'${a}'`).join(" ");
  const p = Bun.spawn(["script", "-qefc", cmd, "/dev/null"], { env: home.env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const [text, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
  return { code, text };
}

/** Like onTerminal, for another home. */
function onTerminalAt(home: Instance, args: string[]): { code: number; text: string } {
  const cmd = [SPL, ...args].map((a) => `'${a}'`).join(" ");
  const r = Bun.spawnSync(["script", "-qefc", cmd, "/dev/null"], { env: home.env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  return { code: r.exitCode, text: r.stdout.toString() };
}

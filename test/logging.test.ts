// Logs for systemd and Docker (issue 16, item 3), on the compiled binary: a foreground daemon
// writes every log line to stderr (JSON when not a terminal, readable on one), `[log] file = false`
// keeps them off disk, SIGHUP reopens the log file and never stops the daemon, and the systemd
// unit in deploy/ passes `systemd-analyze verify`.
import { describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Instance, SPL, isAlive, track, waitFor } from "./harness";

const REPO = join(import.meta.dir, "..");

/** Runs `spl serve` in the foreground with stderr piped (not a terminal). */
async function foreground(inst: Instance) {
  const proc = Bun.spawn([SPL, "serve", "--port", String(inst.port)], { env: inst.env, stdout: "pipe", stderr: "pipe" });
  track(proc.pid);
  const stderr = new Response(proc.stderr).text();
  await inst.healthy();
  return { proc, stderr };
}

const jsonLines = (text: string) => text.split("\n").filter(Boolean).map((l) => JSON.parse(l));

describe("foreground logs", () => {
  test("every line goes to stderr as JSON (ts, level, target, msg) and to spl.log; SIGHUP keeps the daemon running", async () => {
    const inst = new Instance();
    const { proc, stderr } = await foreground(inst);
    expect((await inst.socket("POST", "/v1/records", { thread: "th_fg", actor: "did:sync:user:a", act: "KNOW", body: {} })).status).toBe(201);
    proc.kill("SIGHUP");
    const logged = (text: string) => existsSync(inst.path("logs", "spl.log")) && readFileSync(inst.path("logs", "spl.log"), "utf8").includes(text);
    await waitFor("the log line 'reloaded on SIGHUP'", () => logged("reloaded on SIGHUP"));
    expect(isAlive(proc.pid)).toBe(true);
    expect((await inst.http("GET", "/health")).json.pid).toBe(proc.pid);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);

    const lines = jsonLines(await stderr);
    for (const l of lines) expect(Object.keys(l).slice(0, 4)).toEqual(["ts", "level", "target", "msg"]);
    const msgs = lines.map((l) => l.msg);
    expect(msgs).toEqual(expect.arrayContaining(["starting spl serve", "ready", "record ingested", "reloaded on SIGHUP: log file reopened, [metrics] public re-read", "stopped"]));
    expect(msgs.indexOf("ready")).toBeLessThan(msgs.indexOf("stopped"));
    expect(lines.find((l) => l.msg === "stopped")!.signal).toBe("SIGTERM");
    // The file holds the same lines.
    expect(jsonLines(readFileSync(inst.path("logs", "spl.log"), "utf8")).map((l) => l.msg)).toEqual(msgs);
  });

  test("[log] file = false: nothing is written under logs/, stderr has it all; a wrong value is refused with the fix", async () => {
    const inst = new Instance();
    expect((await inst.spl(["init"])).code).toBe(0);
    appendFileSync(inst.path("config.toml"), "\n[log]\nfile = false\n");
    const { proc, stderr } = await foreground(inst);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(jsonLines(await stderr).map((l) => l.msg)).toEqual(expect.arrayContaining(["ready", "stopped"]));
    expect(existsSync(inst.path("logs", "spl.log"))).toBe(false);

    writeFileSync(inst.path("config.toml"), readFileSync(inst.path("config.toml"), "utf8").replace(/^file = false$/m, 'file = "off"'));
    const bad = await inst.spl(["serve", "--port", String(inst.port)]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("[log] file must be true or false — edit the file and try again");
  });

  test("on a terminal the lines are readable text, not JSON", async () => {
    if (!Bun.which("script")) {
      console.log("skipped: util-linux `script` (to give spl a terminal) is not installed");
      return;
    }
    const inst = new Instance();
    const cmd = `${SPL} serve --port ${inst.port}`;
    const proc = Bun.spawn(["script", "-qefc", cmd, "/dev/null"], { env: inst.env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
    track(proc.pid);
    const out = new Response(proc.stdout).text();
    await inst.healthy();
    const pid = (await inst.http("GET", "/health")).json.pid;
    track(pid);
    process.kill(pid, "SIGTERM");
    await proc.exited;
    const text = await out;
    expect(text).toMatch(/\d\d:\d\d:\d\d\.\d{3} INFO  spl  ready startup_ms=\d+/);
    expect(text).not.toContain('"msg":"ready"');
  });
});

describe("SIGHUP reopens the log file (logrotate)", () => {
  test("after the file is moved away, SIGHUP starts a fresh spl.log and the daemon keeps its pid", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    try {
      await waitFor("logs/spl.log to be written", () => existsSync(inst.path("logs", "spl.log")));
      renameSync(inst.path("logs", "spl.log"), inst.path("logs", "spl.log.rotated"));
      process.kill(pid, "SIGHUP");
      await waitFor("a fresh logs/spl.log after SIGHUP", () => existsSync(inst.path("logs", "spl.log")));
      expect((await inst.socket("POST", "/v1/records", { thread: "th_rot", actor: "did:sync:user:a", act: "KNOW", body: {} })).status).toBe(201);
      await waitFor("'record ingested' in the fresh logs/spl.log", () => readFileSync(inst.path("logs", "spl.log"), "utf8").includes("record ingested"));
      const fresh = jsonLines(readFileSync(inst.path("logs", "spl.log"), "utf8")).map((l) => l.msg);
      expect(fresh).toContain("reloaded on SIGHUP: log file reopened, [metrics] public re-read");
      expect(readFileSync(inst.path("logs", "spl.log.rotated"), "utf8")).not.toContain("reloaded on SIGHUP");
      expect((await inst.http("GET", "/health")).json.pid).toBe(pid);
    } finally {
      await inst.stop();
    }
  });
});

describe("deploy/spl.service", () => {
  const unit = readFileSync(join(REPO, "deploy", "spl.service"), "utf8");

  test("runs spl serve in the foreground, restarts on failure, reloads with SIGHUP, is hardened", () => {
    expect(unit).toMatch(/^Type=(simple|notify)$/m);
    expect(unit).toMatch(/^ExecStart=\/usr\/local\/bin\/spl serve$/m);
    expect(unit).toMatch(/^Restart=on-failure$/m);
    expect(unit).toMatch(/^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
    for (const key of ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "ReadWritePaths=/var/lib/spl"]) expect(unit).toContain(key);
  });

  test("systemd-analyze verify accepts it (ExecStart pointed at the binary under test)", () => {
    const analyze = Bun.which("systemd-analyze");
    if (!analyze) {
      console.log("skipped: systemd-analyze is not installed (Debian: apt-get install systemd)");
      return;
    }
    const dir = new Instance().root;
    const path = join(dir, "spl.service");
    writeFileSync(path, unit.replace("ExecStart=/usr/local/bin/spl", `ExecStart=${SPL}`));
    const r = Bun.spawnSync([analyze, "verify", path], { stdout: "pipe", stderr: "pipe" });
    const complaints = `${r.stdout}${r.stderr}`.split("\n").filter((l) => l.includes("spl.service"));
    expect({ code: r.exitCode, complaints }).toEqual({ code: 0, complaints: [] });
  });
});

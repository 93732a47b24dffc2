// Logs for systemd and Docker (issue 16 item 3, issue 28 item 4), on the compiled binary: a
// foreground daemon writes its log lines to stderr (JSON when not a terminal, readable on one, with
// a syslog priority when stderr is the journal) and nothing else to stdout unless it is a terminal;
// the line per ingested record stays in spl.log unless `[log] records_to_stderr`; `[log] file =
// false` keeps lines off disk; SIGHUP reopens the log file and never stops the daemon; the systemd
// unit in deploy/ passes `systemd-analyze verify`.
import { describe, expect, test } from "bun:test";
import { appendFileSync, closeSync, existsSync, fstatSync, openSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Instance, SPL, isAlive, track, waitFor } from "./harness";

const REPO = join(import.meta.dir, "..");

/** Runs `spl serve` in the foreground with stdout and stderr piped (not a terminal). */
async function foreground(inst: Instance) {
  const proc = Bun.spawn([SPL, "serve", "--port", String(inst.port)], { env: inst.env, stdout: "pipe", stderr: "pipe" });
  track(proc.pid);
  const stderr = new Response(proc.stderr).text();
  const stdout = new Response(proc.stdout).text();
  await inst.healthy();
  return { proc, stderr, stdout };
}

/**
 * Runs `spl serve` in the foreground as systemd would: stderr is a stream JOURNAL_STREAM names
 * (here a file, so the test can read what journald would receive).
 */
async function underSystemd(inst: Instance, name = "journal.txt") {
  const path = join(inst.root, name);
  const fd = openSync(path, "w");
  const st = fstatSync(fd);
  const proc = Bun.spawn([SPL, "serve", "--port", String(inst.port)], { env: { ...inst.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` }, stdout: fd, stderr: fd });
  closeSync(fd);
  track(proc.pid);
  return { proc, read: () => readFileSync(path, "utf8") };
}

const ingest = async (inst: Instance, n: number, thread: string) => {
  const records = Array.from({ length: n }, (_, i) => ({ thread, actor: "did:sync:user:a", act: "KNOW", body: { i } }));
  const r = await inst.socket("POST", "/v1/records/batch", { records });
  expect(r.status).toBe(200);
};

const jsonLines = (text: string) => text.split("\n").filter(Boolean).map((l) => JSON.parse(l));

describe("foreground logs", () => {
  test("every line but the per-record ones goes to stderr as JSON (ts, level, target, msg), all of them to spl.log; nothing else on stdout; SIGHUP keeps the daemon running", async () => {
    const inst = new Instance();
    const { proc, stderr, stdout } = await foreground(inst);
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
    expect(msgs).toEqual(expect.arrayContaining(["starting spl serve", "ready", "reloaded on SIGHUP: log file reopened, [metrics] public re-read", "stopped"]));
    expect(msgs.indexOf("ready")).toBeLessThan(msgs.indexOf("stopped"));
    expect(lines.find((l) => l.msg === "stopped")!.signal).toBe("SIGTERM");
    // The banner's facts are the ready line's fields; stdout (journald and `docker logs` read it too) stays empty.
    expect(lines.find((l) => l.msg === "ready")).toMatchObject({ bind: `127.0.0.1:${inst.port}`, pid: proc.pid, store: expect.stringMatching(/^sqlite:\/\//) });
    expect(await stdout).toBe("");
    // The file holds the same lines, and the per-record one.
    const inFile = jsonLines(readFileSync(inst.path("logs", "spl.log"), "utf8")).map((l) => l.msg);
    expect(inFile.filter((m) => m !== "record ingested")).toEqual(msgs);
    expect(inFile).toContain("record ingested");
    expect(msgs).not.toContain("record ingested");
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

describe("under systemd (JOURNAL_STREAM names stderr)", () => {
  test("each line carries its syslog priority, so journalctl -p selects by level; per-record lines stay in spl.log by default", async () => {
    const inst = new Instance();
    expect((await inst.spl(["init"])).code).toBe(0);
    appendFileSync(inst.path("config.toml"), "\n[log]\nno_such_key = 1\n"); // a WARN at start
    const { proc, read } = await underSystemd(inst);
    await inst.healthy();
    await ingest(inst, 1000, "th_journal");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    const lines = read().split("\n").filter(Boolean);
    const PRIORITY: Record<string, string> = { ERROR: "<3>", WARN: "<4>", INFO: "<6>", DEBUG: "<7>", TRACE: "<7>" };
    for (const line of lines) {
      const m = /^(<[0-7]>)(\{.*\})$/.exec(line);
      expect({ line, prefixed: m !== null }).toEqual({ line, prefixed: true });
      expect({ line, priority: m![1] }).toEqual({ line, priority: PRIORITY[JSON.parse(m![2]!).level]! });
    }
    expect(lines.some((l) => l.startsWith("<4>") && l.includes("no_such_key"))).toBe(true);
    expect(lines.some((l) => l.startsWith("<6>") && l.includes('"msg":"ready"'))).toBe(true);
    // 1000 records, 1000 lines in spl.log, none in the journal: journald's rate limit (by default
    // 10000 lines per 30 s per service) is left for the lines that matter.
    expect(lines.filter((l) => l.includes("record ingested"))).toEqual([]);
    expect(readFileSync(inst.path("logs", "spl.log"), "utf8").split("\n").filter((l) => l.includes('"msg":"record ingested"')).length).toBe(1000);
  });

  test("[log] records_to_stderr = true puts them on stderr too; a start refused under systemd is an error line with priority 3", async () => {
    const inst = new Instance();
    expect((await inst.spl(["init"])).code).toBe(0);
    appendFileSync(inst.path("config.toml"), "\n[log]\nrecords_to_stderr = true\n");
    const { proc, read } = await underSystemd(inst);
    await inst.healthy();
    await ingest(inst, 10, "th_journal_on");
    // A second daemon on the same home is refused: its one error line is for `journalctl -p err`.
    const second = await underSystemd(inst, "second.txt");
    expect(await second.proc.exited).toBe(1);
    expect(second.read()).toMatch(/^<3>error: /m);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(read().split("\n").filter((l) => l.startsWith("<6>") && l.includes('"msg":"record ingested"')).length).toBe(10);
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

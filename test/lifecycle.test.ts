// Daemon lifecycle on the compiled binary: start, status, stop, stale files, port
// conflicts, graceful shutdown, crash durability, logs.
import { describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, rmSync } from "node:fs";
import { Instance, SPL, isAlive, processGone, track, waitFor } from "./harness";

const modeOf = (p: string) => statSync(p).mode & 0o777;

async function foreground(inst: Instance, extra: string[] = []) {
  const proc = Bun.spawn([SPL, "serve", "--port", String(inst.port), ...extra], { env: inst.env, stdout: "pipe", stderr: "pipe" });
  track(proc.pid);
  await inst.healthy();
  return proc;
}

describe("start, status, stop", () => {
  test("serve --daemon detaches, writes pid file and socket with private modes, prints the banner, is ready on return", async () => {
    const inst = new Instance();
    const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(r.code).toBe(0);
    const pid = Number(/PID:\s+(\d+)/.exec(r.stdout)![1]);
    track(pid);
    expect(r.stdout).toContain("Starting Syncropel instance...");
    expect(r.stdout).toContain(`Store:    sqlite://${inst.path("hub.db")}`);
    expect(r.stdout).toContain(`Bind:     127.0.0.1:${inst.port}`);
    expect(r.stdout).toContain(`Socket:   ${inst.path("run", "spl.sock")}`);
    expect(r.stdout).toContain("Instance started. Run 'spl status' to verify health.");
    // Ready on return: no polling needed.
    const h = await inst.http("GET", "/health");
    expect(h.status).toBe(200);
    expect(h.json.pid).toBe(pid);
    expect(readFileSync(inst.path("run", "spl.pid"), "utf8").trim()).toBe(String(pid));
    expect(modeOf(inst.path("run"))).toBe(0o700);
    expect(modeOf(inst.path("run", "spl.sock"))).toBe(0o600);
    expect(statSync(inst.path("run", "spl.sock")).isSocket()).toBe(true);
    // Detached: its own session, not our child's process group.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    expect(Number(fields[3])).toBe(pid); // session id == pid → setsid happened

    const status = await inst.spl(["status"]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/^Syncropel kernel \d+\.\d+\.\d+/);
    expect(status.stdout).toContain("Status:   ok");
    expect(status.stdout).toContain(`PID:      ${pid}`);
    expect(status.stdout).toMatch(/Records:  \d+ across \d+ threads/);

    const json = JSON.parse((await inst.spl(["status", "-o", "json"])).stdout);
    expect(json).toMatchObject({ status: "ok", pid, store: `sqlite://${inst.path("hub.db")}`, home: inst.splHome });
    expect(json.uptime_secs).toBeGreaterThanOrEqual(0);
    expect(json.memory.rss_bytes).toBeGreaterThan(0);

    const curl = Bun.spawnSync(["curl", "-fsS", `http://localhost:${inst.port}/health`]);
    expect(curl.exitCode).toBe(0);
    expect(JSON.parse(curl.stdout.toString())).toMatchObject({ status: "ok", version: json.version, records: json.records });

    const pgrep = Bun.spawnSync(["pgrep", "-af", "spl serve"]).stdout.toString();
    expect(pgrep.split("\n").some((l) => l.startsWith(`${pid} `))).toBe(true);

    const stop = await inst.spl(["serve", "--stop"]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain(`Stopped spl serve (pid ${pid})`);
    expect(isAlive(pid)).toBe(false);
    expect(existsSync(inst.path("run", "spl.pid"))).toBe(false);
    expect(existsSync(inst.path("run", "spl.sock"))).toBe(false);
    // Graceful: the WAL was checkpointed into hub.db and truncated.
    const wal = inst.path("hub.db-wal");
    expect(!existsSync(wal) || statSync(wal).size === 0).toBe(true);
    const log = readFileSync(inst.path("logs", "spl.log"), "utf8");
    expect(log).toContain('"msg":"stopped"');

    const again = await inst.spl(["serve", "--stop"]);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain("not running");
    const down = await inst.spl(["status"]);
    expect(down.code).toBe(1);
    expect(down.stdout).toContain("Status:   not running");
  });

  test("start/stop/restart aliases; restart keeps the port", async () => {
    const inst = new Instance();
    const s = await inst.spl(["start", "--port", String(inst.port)]);
    expect(s.code).toBe(0);
    const pid1 = Number(/PID:\s+(\d+)/.exec(s.stdout)![1]);
    track(pid1);
    const r = await inst.spl(["restart"]);
    expect(r.code).toBe(0);
    const pid2 = Number(/PID:\s+(\d+)/.exec(r.stdout)![1]);
    track(pid2);
    expect(pid2).not.toBe(pid1);
    expect(isAlive(pid1)).toBe(false);
    expect(r.stdout).toContain(`Bind:     127.0.0.1:${inst.port}`);
    const r2 = await inst.spl(["serve", "--restart"]);
    expect(r2.code).toBe(0);
    track(Number(/PID:\s+(\d+)/.exec(r2.stdout)![1]));
    expect((await inst.spl(["stop"])).code).toBe(0);
    expect((await inst.spl(["status"])).code).toBe(1);
  });

  test("--stop finds the daemon when its pid file is gone (socket, then port)", async () => {
    const inst = new Instance();
    // Use config.toml's port so --stop can find it by port once the socket is gone too.
    await inst.spl(["init"]);
    const cfg = readFileSync(inst.path("config.toml"), "utf8").replace(/port = \d+/, `port = ${inst.port}`);
    writeFileSync(inst.path("config.toml"), cfg);
    let pid = await inst.start();
    rmSync(inst.path("run", "spl.pid"));
    let stop = await inst.spl(["serve", "--stop"]);
    expect(stop.stdout).toContain(`Stopped spl serve (pid ${pid}, found via socket`);
    expect(isAlive(pid)).toBe(false);

    pid = await inst.start();
    rmSync(inst.path("run", "spl.pid"));
    rmSync(inst.path("run", "spl.sock"));
    stop = await inst.spl(["serve", "--stop"]);
    expect(stop.stdout).toContain(`Stopped spl serve (pid ${pid}, found via port`);
    expect(isAlive(pid)).toBe(false);
  });
});

describe("stale state and conflicts", () => {
  test("after kill -9: stale pid file and stale socket are cleaned up with a warning", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    process.kill(pid, "SIGKILL");
    await processGone(pid);
    expect(existsSync(inst.path("run", "spl.pid"))).toBe(true);
    expect(existsSync(inst.path("run", "spl.sock"))).toBe(true);
    const pid2 = await inst.start();
    expect(pid2).not.toBe(pid);
    const log = readFileSync(inst.path("logs", "spl.log"), "utf8");
    expect(log).toMatch(/"level":"WARN".*"msg":"removing stale pid file"/);
    expect(log).toMatch(/"level":"WARN".*"msg":"removed stale socket file"/);
    await inst.stop();
  });

  test("a pid file naming a live process that is not spl serve is stale", async () => {
    const inst = new Instance();
    await inst.spl(["init"]);
    const sleeper = Bun.spawn(["sleep", "30"]);
    writeFileSync(inst.path("run", "spl.pid"), `${sleeper.pid}\n`);
    const pid = await inst.start();
    expect(pid).not.toBe(sleeper.pid);
    expect(isAlive(sleeper.pid)).toBe(true);
    sleeper.kill();
    await inst.stop();
  });

  test("a second daemon on the same home is refused: already running (pid N)", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    const other = new Instance();
    const r = await inst.spl(["serve", "--daemon", "--port", String(other.port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: spl serve is already running (pid ${pid})`);
    // Foreground too, through the pid-file lock itself.
    const fg = await inst.spl(["serve", "--port", String(other.port)]);
    expect(fg.code).toBe(1);
    expect(fg.stderr).toContain(`spl serve is already running (pid ${pid})`);
    await inst.stop();
  });

  test("a port taken by another process: exit 1 with 'address already in use' and a hint, nothing left behind", async () => {
    const squatter = Bun.serve({ port: 0, hostname: "127.0.0.1", reusePort: false, fetch: () => new Response("not spl") });
    const inst = new Instance({ port: squatter.port });
    const r = await inst.spl(["serve", "--daemon", "--port", String(squatter.port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`error: address already in use: 127.0.0.1:${squatter.port}`);
    expect(r.stderr).toContain("ss -tlnp");
    expect(r.stderr.split("\n").filter(Boolean)).toHaveLength(1);
    expect(existsSync(inst.path("run", "spl.pid"))).toBe(false);
    expect(existsSync(inst.path("run", "spl.sock"))).toBe(false);
    const fg = await inst.spl(["serve", "--port", String(squatter.port)]);
    expect(fg.code).toBe(1);
    expect(fg.stderr).toContain("address already in use");
    squatter.stop(true);
  });

  test("a non-socket file where the socket belongs is refused, not deleted", async () => {
    const inst = new Instance();
    await inst.spl(["init"]);
    writeFileSync(inst.path("run", "spl.sock"), "precious");
    const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("is not a socket");
    expect(readFileSync(inst.path("run", "spl.sock"), "utf8")).toBe("precious");
  });
});

describe("foreground serve and signals", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`${signal} shuts down gracefully with exit 0`, async () => {
      const inst = new Instance();
      const proc = await foreground(inst);
      await inst.socket("POST", "/v1/records", { thread: "th_fg", actor: "did:sync:user:a", act: "KNOW", body: {} });
      proc.kill(signal);
      expect(await proc.exited).toBe(0);
      // Not a terminal: no banner on stdout (one format per stream); the ready line says it started.
      expect(await new Response(proc.stdout).text()).toBe("");
      expect(await new Response(proc.stderr).text()).toContain('"msg":"ready"');
      expect(existsSync(inst.path("run", "spl.pid"))).toBe(false);
      expect(existsSync(inst.path("run", "spl.sock"))).toBe(false);
    });
  }
});

describe("durability", () => {
  test("every acknowledged record survives kill -9 mid-ingest", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    const token = inst.token;
    const acked: string[] = [];
    let running = true;
    const worker = async (w: number) => {
      for (let i = 0; running; i++) {
        try {
          const res = await fetch(`${inst.url}/v1/records`, {
            method: "POST",
            headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
            body: JSON.stringify({ thread: `th_kill_${w % 4}`, actor: `did:sync:user:w${w}`, act: "KNOW", body: { i } }),
          });
          if (res.status === 201) acked.push(((await res.json()) as { id: string }).id);
        } catch {
          return;
        }
      }
    };
    const workers = Array.from({ length: 16 }, (_, w) => worker(w));
    await waitFor("3000 acknowledged records", () => acked.length, { timeoutMs: 90_000, until: (n) => n >= 3000 });
    process.kill(pid, "SIGKILL");
    running = false;
    await Promise.all(workers);
    await inst.start();
    const stored = new Set<string>();
    for (let w = 0; w < 4; w++) {
      let after = "";
      for (;;) {
        const page = await inst.socket("GET", `/v1/threads/th_kill_${w}/records?limit=1000${after ? `&after=${after}` : ""}`);
        for (const r of page.json.data) stored.add(r.id);
        if (!page.json.has_more) break;
        after = page.json.next_cursor;
      }
    }
    const lost = acked.filter((id) => !stored.has(id));
    expect(acked.length).toBeGreaterThanOrEqual(3000);
    expect(lost).toEqual([]);
    await inst.stop();
  }, 120_000);
});

describe("logs", () => {
  test("JSON lines with ts, level, target, msg; ingest lines carry actor, thread, record; SPL_LOG sets the level", async () => {
    const inst = new Instance();
    await inst.start();
    const w = await inst.socket("POST", "/v1/records", { thread: "th_log", actor: "did:sync:user:logger", act: "KNOW", body: {} });
    await inst.stop();
    const lines = readFileSync(inst.path("logs", "spl.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    for (const l of lines) {
      expect(typeof l.ts).toBe("string");
      expect(["ERROR", "WARN", "INFO", "DEBUG", "TRACE"]).toContain(l.level);
      expect(typeof l.target).toBe("string");
      expect(typeof l.msg).toBe("string");
    }
    const ingest = lines.find((l) => l.record === w.json.id);
    expect(ingest).toMatchObject({ level: "INFO", target: "spl::ingest", msg: "record ingested", actor: "did:sync:user:logger", thread: "th_log" });

    const quiet = new Instance({ env: { SPL_LOG: "warn" } });
    await quiet.start();
    await quiet.socket("POST", "/v1/records", { thread: "th_log", actor: "did:sync:user:logger", act: "KNOW", body: {} });
    await quiet.stop();
    const qlog = existsSync(quiet.path("logs", "spl.log")) ? readFileSync(quiet.path("logs", "spl.log"), "utf8") : "";
    expect(qlog).not.toContain('"level":"INFO"');
    expect(qlog).not.toContain("record ingested");
  });

  test("the log rotates at 10 MiB into spl.log.1", async () => {
    const inst = new Instance({ env: { SPL_LOG: "debug" } });
    await inst.start();
    const batch = (b: number) => ({
      records: Array.from({ length: 1000 }, (_, i) => ({ thread: `th_rot_${b}`, actor: "did:sync:user:rotator", act: "KNOW", body: { pad: "p".repeat(64), i }, clock: i })),
    });
    for (let b = 0; b < 60 && !existsSync(inst.path("logs", "spl.log.1")); b++) {
      expect((await inst.socket("POST", "/v1/records/batch", batch(b))).status).toBe(200);
    }
    await inst.stop();
    const files = readdirSync(inst.path("logs")).filter((f) => f.startsWith("spl.log"));
    expect(files).toContain("spl.log.1");
    expect(statSync(inst.path("logs", "spl.log.1")).size).toBeLessThanOrEqual(10 * 1024 * 1024);
    for (const f of files) {
      for (const line of readFileSync(inst.path("logs", f), "utf8").trim().split("\n")) expect(() => JSON.parse(line)).not.toThrow();
    }
  }, 120_000);
});

describe("the runbook's plain `cp ~/.syncro/hub.db` snapshot", () => {
  test("a quiet running daemon has every acknowledged record in hub.db itself", async () => {
    const { Database } = await import("bun:sqlite");
    const { copyFileSync } = await import("node:fs");
    const inst = new Instance();
    await inst.start();
    const ids: string[] = [];
    for (let i = 0; i < 50; i++) ids.push((await inst.socket("POST", "/v1/records", { thread: "th_cp", actor: "did:sync:user:cp", act: "KNOW", body: { i } })).json.id);
    const copy = `${inst.root}/hub.db.pre-upgrade.bak`;
    // Only the main file, as the runbook copies it (no -wal): wait for the checkpoint thread.
    await waitFor("all 50 records in a copy of hub.db alone (the checkpoint)", () => {
      copyFileSync(inst.path("hub.db"), copy);
      const db = new Database(copy, { readonly: true });
      try {
        return (db.query("SELECT COUNT(*) AS n FROM records WHERE thread = 'th_cp'").get() as { n: number }).n === 50;
      } catch {
        return false;
      } finally {
        db.close();
      }
    });
    const db = new Database(copy, { readonly: true });
    const stored = (db.query("SELECT id FROM records WHERE thread = 'th_cp' ORDER BY seq").all() as { id: string }[]).map((r) => r.id);
    expect((db.query("PRAGMA quick_check").get() as any).quick_check).toBe("ok");
    db.close();
    expect(stored).toEqual(ids);
    await inst.stop();
  });
});

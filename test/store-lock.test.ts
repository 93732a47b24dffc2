// The single-instance lock lives with the store (<home>/spl.lock), not in run/: deleting run/
// cannot let a second daemon onto the same hub.db, kill -9 never leaves it stale, and the
// commands that rewrite a stopped store (restore, permissions-unlock) cannot interleave with a
// starting daemon.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Instance, isAlive, processGone, track } from "./harness";
import { emit, health, openImmutable, sha256File, stopOk } from "./backup-helpers";

describe("the store lock", () => {
  test("rm -rf run/: a second daemon on another port is refused naming the running one; status, doctor and stop still find it", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    rmSync(inst.path("run"), { recursive: true, force: true });
    const other = new Instance().port;

    const detached = await inst.spl(["serve", "--daemon", "--port", String(other)]);
    expect(detached.code).toBe(1);
    expect(detached.stderr).toContain(`error: spl serve is already running (pid ${pid})`);
    const fg = await inst.spl(["serve", "--port", String(other)]);
    expect(fg.code).toBe(1);
    expect(fg.stderr).toContain(`error: spl serve is already running (pid ${pid}) on 127.0.0.1:${inst.port}`);
    // Nothing answers on the other port: no second daemon got as far as binding it.
    expect(await fetch(`http://127.0.0.1:${other}/health`).then(() => true, () => false)).toBe(false);

    const status = await inst.spl(["status"]);
    expect(status.code).toBe(0);
    expect(status.stdout).toContain("Status:   ok");
    expect(status.stdout).toContain(`PID:      ${pid}`);
    expect(status.stderr).toContain(`reached spl serve (pid ${pid}) on http://127.0.0.1:${inst.port}`);
    expect(JSON.parse((await inst.spl(["status", "-o", "json"])).stdout)).toMatchObject({ status: "ok", pid });

    const doctor = JSON.parse((await inst.spl(["doctor", "-o", "json"])).stdout);
    const reachable = doctor.checks.find((c: any) => c.name === "daemon reachable");
    expect(reachable.status).toBe("pass");
    expect(reachable.detail).toContain(`pid ${pid}`);
    expect(doctor.checks.find((c: any) => c.name === "store lock")).toMatchObject({ status: "pass" });

    const stop = await inst.spl(["serve", "--stop"]);
    expect(stop.stdout).toContain(`Stopped spl serve (pid ${pid}, found via port`);
    expect(isAlive(pid)).toBe(false);
  });

  test("spl.lock deleted under a running daemon: doctor fails the store lock row", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    rmSync(inst.path("spl.lock"));
    const doctor = await inst.spl(["doctor", "-o", "json"]);
    expect(doctor.code).toBe(2);
    const row = JSON.parse(doctor.stdout).checks.find((c: any) => c.name === "store lock");
    expect(row.status).toBe("fail");
    expect(row.detail).toContain(`is missing while spl serve (pid ${pid}) runs`);
    await stopOk(inst);
  });

  test("spl.lock and run/ deleted by hand: a second daemon on the same hub.db is still refused (the lock on hub.db itself), and kill -9 of the first releases it", async () => {
    const inst = new Instance();
    await inst.spl(["init"]);
    const pid = await inst.start();
    await emit(inst, 5, "th_first");
    rmSync(inst.path("spl.lock"));
    rmSync(inst.path("run"), { recursive: true, force: true });
    const other = new Instance().port;
    for (const args of [["serve", "--daemon", "--port", String(other)], ["serve", "--port", String(other)]]) {
      const r = await inst.spl(args);
      expect({ args, code: r.code }).toEqual({ args, code: 1 });
      expect(r.stderr).toContain(`error: spl serve is already running (pid ${pid})`);
    }
    expect(await fetch(`http://127.0.0.1:${other}/health`).then(() => true, () => false)).toBe(false);
    // Offline writers meet the same lock.
    const unlock = await inst.spl(["config", "permissions-unlock"]);
    expect(unlock.code).toBe(1);
    expect(unlock.stderr).toContain(`spl serve is already running (pid ${pid})`);
    expect(isAlive(pid)).toBe(true);

    // kill -9: the kernel drops the lock with the process; the next start takes it at once.
    process.kill(pid, "SIGKILL");
    await processGone(pid);
    const pid2 = await inst.start();
    expect((await health(inst)).pid).toBe(pid2);
    expect((await health(inst)).records).toBeGreaterThanOrEqual(5);
    await stopOk(inst);
  });

  test("kill -9 leaves no stale lock: the next start takes it at once", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    process.kill(pid, "SIGKILL");
    await processGone(pid);
    rmSync(inst.path("run"), { recursive: true, force: true });
    expect(existsSync(inst.path("spl.lock"))).toBe(true);
    const pid2 = await inst.start();
    expect(pid2).not.toBe(pid);
    expect((await health(inst)).pid).toBe(pid2);
    await stopOk(inst);
  });

  test("permissions-unlock refuses while a daemon holds the store even when it cannot be found otherwise", async () => {
    const inst = new Instance();
    await inst.spl(["init"]);
    const pid = await inst.start();
    rmSync(inst.path("run"), { recursive: true, force: true });
    // Neither pid file nor socket is left, and config.toml names another port: only the lock knows.
    const r = await inst.spl(["config", "permissions-unlock"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^error: spl serve is (already )?running \\(pid ${pid}\\)`));
    await inst.stop();
  });
});

describe("restore racing a start", () => {
  test("50 rounds of `spl restore --force` and `spl serve --daemon` at once: every acknowledged record is in hub.db, or one refused clearly", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 20, "th_race", "base");
    const bak = join(inst.root, "race.bak");
    expect((await inst.spl(["backup", "--out", bak])).code).toBe(0);
    await stopOk(inst);

    const outcomes = { both: 0, serveRefused: 0, restoreRefused: 0 };
    for (let round = 0; round < 50; round++) {
      const [restore, serve] = await Promise.all([
        inst.spl(["restore", bak, "--force"]),
        inst.spl(["serve", "--daemon", "--port", String(inst.port)]),
      ]);
      const pid = Number(/PID:\s+(\d+)/.exec(serve.stdout)?.[1]);
      if (pid) track(pid);
      for (const r of [restore, serve]) {
        if (r.code !== 0) expect(r.stderr.trim().split("\n").pop()).toMatch(/^error: .+ — .+/);
      }
      expect(restore.code === 0 || serve.code === 0).toBe(true);
      if (serve.code !== 0) {
        outcomes.serveRefused++;
        continue;
      }
      if (restore.code !== 0) {
        outcomes.restoreRefused++;
        expect(restore.stderr).toContain(`spl serve is`);
      } else outcomes.both++;
      const ack = await inst.socket("POST", "/v1/records", { thread: "th_race", actor: "did:sync:user:racer", act: "KNOW", body: { round } });
      expect(ack.status).toBe(201);
      await stopOk(inst);
      const db = openImmutable(inst.path("hub.db"));
      try {
        expect(db.query("SELECT id FROM records WHERE id = ?").get(ack.json.id)).toEqual({ id: ack.json.id });
      } finally {
        db.close();
      }
    }
    expect(outcomes.both + outcomes.serveRefused + outcomes.restoreRefused).toBe(50);
  }, 600_000);
});

describe("every command that rewrites the store takes the same lock", () => {
  test("while another process holds spl.lock (as a restore does), serve, restore, permissions-unlock and init refuse naming it, and write nothing", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 5, "th_lock");
    const bak = join(inst.root, "lock.bak");
    expect((await inst.spl(["backup", "--out", bak])).code).toBe(0);
    await stopOk(inst);
    const before = sha256File(inst.path("hub.db"));

    // This test process takes the lock the way spl does and names itself as a restore.
    const holder = new Database(inst.path("spl.lock"));
    holder.exec("PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = MEMORY; BEGIN EXCLUSIVE");
    holder.exec("DELETE FROM holder");
    holder.query("INSERT INTO holder VALUES (?, 'restore', NULL, NULL, ?)").run(process.pid, new Date().toISOString());
    holder.exec("COMMIT");
    try {
      const busy = `'spl restore' (pid ${process.pid}) is using the store`;
      for (const args of [["serve", "--port", String(inst.port)], ["restore", bak, "--force"], ["config", "permissions-unlock"], ["init"]]) {
        const r = await inst.spl(args);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`error: ${busy}`);
      }
      const detached = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
      expect(detached.code).toBe(1);
      expect(detached.stderr).toContain(busy);
      expect(sha256File(inst.path("hub.db"))).toBe(before);
      expect(existsSync(inst.path("run", "spl.pid"))).toBe(false);
    } finally {
      holder.close();
    }
    // Released: everything works again.
    expect((await inst.spl(["config", "permissions-unlock"])).code).toBe(0);
    await inst.start();
    await stopOk(inst);
  });
});

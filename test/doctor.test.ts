// `spl doctor [--json]` (issue 3 item 8): rows ✓/!/✗, exit = worst (0/1/2), read-only.
import { describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { Instance, isAlive } from "./harness";
import { emit, health, sha256File, stopOk } from "./backup-helpers";


interface Row {
  name: string;
  status: "pass" | "warn" | "fail";
  detail: string;
}

async function doctor(inst: Instance): Promise<{ code: number; rows: Record<string, Row>; human: string }> {
  const j = await inst.spl(["doctor", "--json"]);
  const report = JSON.parse(j.stdout);
  expect(report.object).toBe("doctor_report");
  for (const c of report.checks) expect(Object.keys(c).sort()).toEqual(["detail", "name", "status"]);
  const h = await inst.spl(["doctor"]);
  expect(h.code).toBe(j.code);
  return { code: j.code, rows: Object.fromEntries(report.checks.map((c: Row) => [c.name, c])), human: h.stdout };
}

/** Started, with records and a startup backup (restart), running. */
async function healthy(): Promise<Instance> {
  const inst = new Instance();
  await inst.start();
  await emit(inst, 5);
  const r = await inst.spl(["restart"]);
  expect(r.code).toBe(0);
  return inst;
}

describe("spl doctor", () => {
  test("healthy instance: every row ✓, exit 0", async () => {
    const inst = await healthy();
    const d = await doctor(inst);
    const bad = Object.values(d.rows).filter((r) => r.status !== "pass");
    expect(bad).toEqual([]);
    expect(d.code).toBe(0);
    for (const name of ["daemon reachable", "pid file", "socket", "store integrity", "store has records", "schema version", "backup", "config file mode", "token file mode", "secrets dir mode"]) {
      expect(d.rows[name]).toBeDefined();
    }
    const pid = (await health(inst)).pid;
    expect(d.rows["pid file"]!.detail).toBe(`${inst.path("run", "spl.pid")} → live spl serve (pid ${pid})`);
    expect(d.rows["backup"]!.detail).toContain("hub.db.bak");
    // Where the copies off this machine are is the off-host row's (here: none configured).
    expect(d.rows["off-host backup"]!.detail).toContain("every backup lives on this machine only");
    expect(d.human).toMatch(/^  ✓ daemon reachable +spl \d+\.\d+\.\d+ on sqlite:\/\//m);
    expect(d.human).not.toMatch(/^  [!✗]/m);
    await stopOk(inst);
  });

  test("stopped instance: ✗ daemon, store checked directly (quick_check) without writing anything; exit 2", async () => {
    const inst = await healthy();
    await stopOk(inst);
    const before = readdirSync(inst.splHome).sort();
    const hash = sha256File(inst.path("hub.db"));
    const d = await doctor(inst);
    expect(d.code).toBe(2);
    expect(d.rows["daemon reachable"]).toMatchObject({ status: "fail" });
    expect(d.rows["daemon reachable"]!.detail).toContain("spl serve --daemon");
    expect(d.rows["pid file"]).toMatchObject({ status: "pass", detail: "none (daemon not running)" });
    expect(d.rows["store integrity"]!.status).toBe("pass");
    expect(d.rows["store integrity"]!.detail).toStartWith("quick_check ok");
    expect(d.rows["store has records"]!.status).toBe("pass");
    expect(readdirSync(inst.splHome).sort()).toEqual(before);
    expect(sha256File(inst.path("hub.db"))).toBe(hash);
    expect(existsSync(inst.path("run", "spl.pid"))).toBe(false);
  });

  test("stale pid file: ! pid file names the dead pid; serve still starts", async () => {
    const inst = await healthy();
    await stopOk(inst);
    const dead = Bun.spawn(["true"]);
    await dead.exited;
    expect(isAlive(dead.pid)).toBe(false);
    writeFileSync(inst.path("run", "spl.pid"), `${dead.pid}\n`);
    const d = await doctor(inst);
    expect(d.rows["pid file"]!.status).toBe("warn");
    expect(d.rows["pid file"]!.detail).toContain(`pid ${dead.pid} does not exist (stale pid file`);
    expect(d.rows["pid file"]!.detail).toContain(`rm -f ${inst.path("run", "spl.pid")}`);
    expect(d.code).toBe(2); // the daemon is down
    expect(d.human).toMatch(/^  ! pid file /m);
    await inst.start();
    await stopOk(inst);
  });

  test("live daemon whose pid file is gone: ! pid file, stop still finds it; exit 1", async () => {
    const inst = await healthy();
    const pid = (await health(inst)).pid;
    rmSync(inst.path("run", "spl.pid"));
    const d = await doctor(inst);
    expect(d.rows["daemon reachable"]!.status).toBe("pass");
    expect(d.rows["pid file"]!.status).toBe("warn");
    expect(d.rows["pid file"]!.detail).toContain(`missing, but spl serve (pid ${pid}) answers`);
    expect(d.code).toBe(1);
    const stop = await inst.stop();
    expect(stop.stdout).toContain(`Stopped spl serve (pid ${pid}, found via socket`);
  });

  test("damaged store: ✗ store integrity with the recovery steps; exit 2", async () => {
    const inst = await healthy();
    await stopOk(inst);
    Bun.spawnSync(["dd", "if=/dev/zero", "of=hub.db", "bs=4096", "count=1", "conv=notrunc"], { cwd: inst.splHome });
    const hash = sha256File(inst.path("hub.db"));
    const d = await doctor(inst);
    expect(d.code).toBe(2);
    const row = d.rows["store integrity"]!;
    expect(row.status).toBe("fail");
    expect(row.detail).toContain(`store ${inst.path("hub.db")} is damaged`);
    expect(row.detail).toContain("spl restore");
    expect(row.detail).not.toMatch(/\brm\b|delete/i);
    expect(sha256File(inst.path("hub.db"))).toBe(hash);
    expect(d.human).toMatch(/^  ✗ store integrity /m);
  });

  test("no backup yet on a brand-new store is information, not a warning: every row ✓, exit 0", async () => {
    const inst = new Instance();
    await inst.start();
    const d = await doctor(inst);
    expect(d.rows["backup"]!.status).toBe("pass");
    expect(d.rows["backup"]!.detail).toContain("no backup yet, as expected");
    expect(d.rows["backup"]!.detail).toContain("spl backup");
    expect(Object.values(d.rows).filter((r) => r.status !== "pass")).toEqual([]);
    expect(d.code).toBe(0);
    // `spl backup` fixes it.
    expect((await inst.spl(["backup"])).code).toBe(0);
    expect((await doctor(inst)).rows["backup"]!.status).toBe("pass");
    await stopOk(inst);
  });

  test("a store with a garbage header: every row carries its literal name, none fails because a check threw", async () => {
    const inst = await healthy();
    await stopOk(inst);
    Bun.spawnSync(["dd", "if=/dev/urandom", "of=hub.db", "bs=100", "count=1", "conv=notrunc"], { cwd: inst.splHome });
    const d = await doctor(inst);
    expect(d.code).toBe(2);
    expect(d.rows["store integrity"]!.status).toBe("fail");
    const known = ["daemon reachable", "pid file", "socket", "config", "store integrity", "storage", "store lock", "store has records", "schema version", "backup", "off-host backup", "last off-host push", "config file mode", "token file mode", "secrets dir mode", "secret file modes", "permission enforcement"];
    for (const name of Object.keys(d.rows)) expect(known).toContain(name);
    for (const row of Object.values(d.rows)) expect(row.detail).not.toContain("the check itself failed");
  });

  test("world-readable config or token: ! with the chmod to run; exit 1", async () => {
    const inst = await healthy();
    chmodSync(inst.path("config.toml"), 0o644);
    if (existsSync(inst.path("token"))) chmodSync(inst.path("token"), 0o644);
    else writeFileSync(inst.path("token"), "spl_test_token\n", { mode: 0o644 });
    chmodSync(inst.path("token"), 0o644);
    const d = await doctor(inst);
    expect(d.rows["config file mode"]).toEqual({
      name: "config file mode",
      status: "warn",
      detail: `${inst.path("config.toml")} has mode 0644: recommended 0600. Run chmod 600 ${inst.path("config.toml")}.`,
    });
    expect(d.rows["token file mode"]!.status).toBe("warn");
    expect(d.rows["token file mode"]!.detail).toContain(`Run chmod 600 ${inst.path("token")}.`);
    expect(d.code).toBe(1);
    chmodSync(inst.path("config.toml"), 0o600);
    chmodSync(inst.path("token"), 0o600);
    expect((await doctor(inst)).code).toBe(0);
    await stopOk(inst);
  });
});

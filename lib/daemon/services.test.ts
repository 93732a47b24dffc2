import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileLogger } from "../log";
import { openStore } from "../store/open";
import { StorageHealth } from "./storage-health";
import { idleCheckpoint, startServices, stopServices, type Service } from "./services";

const dir = mkdtempSync(join(tmpdir(), "spl-services-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("background services", () => {
  test("stop runs last-started-first; a service that fails to stop is logged and the rest still stop", async () => {
    const logPath = join(dir, "order.log");
    const log = createFileLogger(logPath, { level: "info" });
    const events: string[] = [];
    const svc = (name: string, fail = false): Service => ({
      name,
      start: () => void events.push(`start ${name}`),
      stop: async () => {
        events.push(`stop ${name}`);
        if (fail) throw new Error(`${name} is stuck`);
      },
    });
    const services = [svc("heartbeat"), svc("reconciler", true), svc("checkpoint")];
    startServices(services, log);
    await stopServices(services, log);
    expect(events).toEqual(["start heartbeat", "start reconciler", "start checkpoint", "stop checkpoint", "stop reconciler", "stop heartbeat"]);
    log.flush();
    const lines = readFileSync(logPath, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.filter((l) => l.msg === "service stopped").map((l) => l.service)).toEqual(["checkpoint", "heartbeat"]);
    expect(lines.find((l) => l.level === "ERROR")).toMatchObject({ msg: "service did not stop cleanly", service: "reconciler", error: "reconciler is stuck" });
  });

  test("the idle checkpoint copies the WAL into the store after a quiet spell, and not once stopped", async () => {
    const path = join(dir, "hub.db");
    const { db } = openStore(path);
    const storage = new StorageHealth(db, path, createFileLogger(join(dir, "storage.log"), { level: "info" }));
    const svc = idleCheckpoint(() => storage.checkpoint(), 20);
    svc.afterCommit!([]);
    expect(svc.pending).toBe(false); // not started yet
    svc.start();
    expect(svc.pending).toBe(true);
    db.exec("CREATE TABLE t (x)");
    db.exec("INSERT INTO t VALUES (randomblob(100000))");
    svc.afterCommit!([]);
    const walBefore = statSync(`${path}-wal`).size;
    expect(walBefore).toBeGreaterThan(0);
    const sizeBefore = statSync(path).size;
    await (async () => {
      while (svc.pending) await Bun.sleep(10);
    })();
    expect(statSync(path).size).toBeGreaterThan(sizeBefore);
    expect(storage.status()).toMatchObject({ checkpoint_ok: true, last_error: null });
    svc.afterCommit!([]);
    svc.stop();
    expect(svc.pending).toBe(false);
    db.close();
  });
});

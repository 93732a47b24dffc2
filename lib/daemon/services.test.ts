import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createFileLogger } from "../log";
import { openStore } from "../store/open";
import { StorageHealth } from "./storage-health";
import { startServices, stopServices, walCheckpointer, type Service } from "./services";
import { waitFor } from "../../test/harness";

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

  test("the checkpoint thread copies the WAL into the store after commits, with SQLite's own checkpoint off meanwhile", async () => {
    const path = join(dir, "hub.db");
    const { db } = openStore(path);
    const storage = new StorageHealth(db, path, createFileLogger(join(dir, "storage.log"), { level: "info" }));
    const svc = walCheckpointer(db, path, storage);
    svc.start();
    expect(db.query("PRAGMA wal_autocheckpoint").get()).toEqual({ wal_autocheckpoint: 0 });
    db.exec("CREATE TABLE t (x)");
    // More than SQLite's 1000-page automatic threshold: only the thread can have copied it.
    for (let i = 0; i < 40; i++) {
      db.exec("INSERT INTO t VALUES (randomblob(200000))");
      svc.afterCommit!([]);
    }
    // Until every page is in hub.db (40 x 200 kB) and a checkpoint copied the whole WAL.
    await waitFor("the checkpoint thread to copy the whole WAL into hub.db (its size, storage status)", () => ({ bytes: statSync(path).size, ...storage.status() }), {
      stepMs: 10,
      until: (s) => s.bytes >= 8_000_000 && s.checkpoint_ok === true,
    });
    expect(storage.status()).toMatchObject({ checkpoint_ok: true, last_error: null });
    await svc.stop();
    expect(db.query("PRAGMA wal_autocheckpoint").get()).toEqual({ wal_autocheckpoint: 1000 });
    // The thread closed its connection: a TRUNCATE checkpoint (graceful shutdown's) empties the WAL.
    db.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    expect(statSync(`${path}-wal`).size).toBe(0);
    db.close();
  });
});

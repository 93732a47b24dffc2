// The startup backup written while the daemon serves (issue 17 item 3): the SQLite premise it
// relies on, writes going on during it, the truthful banner, a SIGTERM waiting for it, and a
// kill -9 in the middle of writing it.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, constants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, watch, writeSync } from "node:fs";
import { join } from "node:path";
import { generateStore } from "../bench/backup";
import { Instance, isAlive, processGone, track, waitFor } from "./harness";
import { backupsRoot, factsOf, hashTree, instanceDir, logLines, openImmutable, sha256File, stopOk } from "./backup-helpers";

/** Large enough that copying and checking it takes far longer than the test takes to react. */
const BIG = 150_000;
const TEMP = /^\.hub\.db\.bak\.tmp-(\d+)-[0-9a-f]{8}$/;

function idsOf(path: string): Set<string> {
  const db = openImmutable(path);
  try {
    return new Set((db.query("SELECT id FROM records").all() as { id: string }[]).map((r) => r.id));
  } finally {
    db.close();
  }
}

/** A stopped instance whose store holds BIG records, with its backup dir known. */
async function bigInstance(): Promise<{ inst: Instance; dir: string }> {
  const inst = new Instance();
  generateStore(inst.path("hub.db"), BIG);
  const db = openImmutable(inst.path("hub.db"));
  const genesis = (db.query("SELECT id FROM records WHERE thread = 'th_instance' ORDER BY seq LIMIT 1").get() as { id: string }).id;
  db.close();
  const dir = instanceDir(inst, `did:sync:instance:${genesis.slice(0, 16)}`);
  mkdirSync(dir, { recursive: true, mode: 0o700 }); // so it can be watched before the first start
  return { inst, dir };
}

describe("the premise: a reader on a fully checkpointed WAL keeps hub.db unchanged", () => {
  test("while a read transaction begun on an empty WAL is open, heavy writes and checkpoints leave the db file byte-identical", () => {
    const inst = new Instance();
    const path = inst.path("hub.db");
    generateStore(path, 2000);
    const writer = new Database(path);
    writer.exec("PRAGMA journal_mode = WAL");
    expect(writer.query("PRAGMA wal_checkpoint(TRUNCATE)").get()).toMatchObject({ busy: 0, log: 0 });
    const reader = new Database(path, { readonly: true });
    reader.exec("BEGIN");
    reader.query("SELECT COUNT(*) FROM sqlite_master").get();
    const before = sha256File(path);
    const insert = writer.prepare("INSERT INTO meta (key, value) VALUES (?, ?)");
    for (let i = 0; i < 20; i++) {
      writer.transaction(() => {
        for (let j = 0; j < 500; j++) insert.run(`k${i}-${j}`, "x".repeat(200));
      })();
      writer.query("PRAGMA wal_checkpoint(PASSIVE)").get();
    }
    expect(statSync(`${path}-wal`).size).toBeGreaterThan(0);
    expect(sha256File(path)).toBe(before);
    reader.exec("COMMIT");
    // Once the reader is gone the checkpoint goes through, changing the file.
    expect(writer.query("PRAGMA wal_checkpoint(TRUNCATE)").get()).toMatchObject({ busy: 0 });
    expect(sha256File(path)).not.toBe(before);
    reader.close();
    writer.close();
  });
});

describe("startup backup in the background", () => {
  test("writes go on while it is written (checkpoints cannot pass it); it holds exactly the records present at start; banner, status and doctor say so", async () => {
    const { inst, dir } = await bigInstance();
    const atStart = idsOf(inst.path("hub.db"));
    const hold = holdBackup(inst);
    const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)], { waitForBackup: false });
    expect(r.code).toBe(0);
    track(Number(/PID:\s+(\d+)/.exec(r.stdout)![1]));
    const backup = join(dir, "hub.db.bak");
    // The banner tells the truth: path first, then what it is doing.
    const inProgress = `${backup} (in progress: snapshot of ${atStart.size} records taken at start)`;
    expect(r.stdout).toContain(`Backup:   ${inProgress}\n`);
    const status = (await inst.socket("GET", "/v1/status")).json.backup;
    expect(status).toMatchObject({ path: backup, outcome: `in progress: snapshot of ${atStart.size} records taken at start`, records: atStart.size, written_at: null });
    expect((await inst.spl(["status"])).stdout).toContain(`Backup:   ${inProgress}\n`);
    const doc = JSON.parse((await inst.spl(["doctor", "--json"])).stdout).checks.find((c: any) => c.name === "backup");
    expect(doc.status).toBe("pass");
    expect(doc.detail).toContain("in progress");

    // Writes while the snapshot is pinned: past the autocheckpoint size (1000 pages), so every
    // further commit tries to checkpoint, and until a checkpoint has tried and could not finish.
    const written: string[] = [];
    const write = async (i: number) => {
      const records = Array.from({ length: 500 }, (_, j) => ({ thread: "th_during", actor: "did:sync:user:tester", act: "KNOW", body: { text: `during ${i} ${j}` } }));
      const w = await inst.socket("POST", "/v1/records/batch", { records });
      expect(w.status).toBe(200);
      written.push(...w.json.data.map((d: any) => d.id));
    };
    let i = 0;
    while (statSync(inst.path("hub.db-wal")).size < 1500 * 4096) await write(i++);
    await waitFor("the held backup to stall the checkpoint (GET /v1/status storage)", async () => (await inst.socket("GET", "/v1/status")).json.storage, { until: (st) => st.checkpoint_ok === false });
    // Expected while the backup is written: neither status nor doctor calls it trouble.
    expect((await inst.spl(["status"])).stdout).not.toContain("Storage:");
    const storage = JSON.parse((await inst.spl(["doctor", "--json"])).stdout).checks.find((c: any) => c.name === "storage");
    expect(storage).toMatchObject({ status: "pass" });
    expect(storage.detail).toContain("startup backup");
    // Let it copy, and keep writing meanwhile.
    hold.release();
    while ((await inst.socket("GET", "/v1/status")).json.backup.outcome.startsWith("in progress")) await write(i++);

    const f = factsOf(backup);
    expect(f.quick_check).toBe("ok");
    expect(idsOf(backup)).toEqual(atStart);
    expect((await inst.socket("GET", "/v1/status")).json.backup).toMatchObject({ outcome: "written", records: atStart.size });
    // A standalone rollback-journal file, like VACUUM INTO writes: header bytes 18-19 = 1.
    expect([...readFileSync(backup).subarray(18, 20)]).toEqual([1, 1]);
    expect(readdirSync(dir).filter((n) => TEMP.test(n))).toEqual([]);
    const logged = await waitFor("the log line 'startup backup written'", () => logLines(inst).find((l) => l.msg === "startup backup written"));
    expect(logged).toMatchObject({ level: "INFO", target: "spl::backup", path: backup, records: atStart.size });
    await stopOk(inst);
    // Nothing written during the backup was lost from the store.
    const stored = idsOf(inst.path("hub.db"));
    for (const id of [...atStart, ...written]) expect(stored.has(id)).toBe(true);
  });

  test("SIGTERM while it is being written: the daemon says it waits, finishes it, and exits cleanly", async () => {
    const { inst, dir } = await bigInstance();
    const hold = holdBackup(inst);
    const pid = await inst.start([], { waitForBackup: false });
    process.kill(pid, "SIGTERM");
    await waitFor("the log line 'waiting for the startup backup to finish before shutting down'", () => logLines(inst).find((l) => l.msg === "waiting for the startup backup to finish before shutting down"));
    expect(isAlive(pid)).toBe(true);
    hold.release();
    await processGone(pid, 120_000);
    const lines = logLines(inst);
    const written = lines.findIndex((l) => l.msg === "startup backup written");
    const stopped = lines.findIndex((l) => l.msg === "stopped");
    expect(written).toBeGreaterThan(-1);
    expect(stopped).toBeGreaterThan(written);
    expect(factsOf(join(dir, "hub.db.bak"))).toMatchObject({ quick_check: "ok", records: BIG + 1 });
    expect(existsSync(inst.path("run", "spl.pid"))).toBe(false);
    expect(readdirSync(dir).filter((n) => TEMP.test(n))).toEqual([]);
  });

  test("a SIGTERM that arrives before the daemon handles signals is held, not fatal, once the backup has started", async () => {
    const { inst, dir } = await bigInstance();
    let pid = 0;
    const watcher = watchFor(dir, (name) => {
      // The temporary is named after the daemon's pid: signal it the moment the copy starts.
      pid = Number(TEMP.exec(name)![1]);
      process.kill(pid, "SIGTERM");
    });
    try {
      await inst.spl(["serve", "--daemon", "--port", String(inst.port)], { waitForBackup: false });
      await waitFor("the daemon to start and then exit on its SIGTERM", () => pid && !isAlive(pid), { timeoutMs: 120_000 });
    } finally {
      watcher.close();
    }
    const lines = logLines(inst);
    const shutting = lines.findIndex((l) => l.msg === "shutting down" && l.signal === "SIGTERM");
    const written = lines.findIndex((l) => l.msg === "startup backup written");
    const stopped = lines.findIndex((l) => l.msg === "stopped");
    expect(shutting).toBeGreaterThan(-1);
    expect(written).toBeGreaterThan(-1);
    expect(stopped).toBeGreaterThan(Math.max(written, shutting));
    expect(factsOf(join(dir, "hub.db.bak")).records).toBe(BIG + 1);
    expect(readdirSync(dir).filter((n) => TEMP.test(n))).toEqual([]);
  });

  test("`spl serve --stop` during the backup says it waits for it, and reports the daemon stopped", async () => {
    const { inst, dir } = await bigInstance();
    const hold = holdBackup(inst);
    await inst.start([], { waitForBackup: false });
    const stopping = inst.stop();
    await waitFor("the log line 'waiting for the startup backup to finish before shutting down'", () => logLines(inst).find((l) => l.msg === "waiting for the startup backup to finish before shutting down"));
    hold.release();
    const stop = await stopping;
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain("Stopped spl serve");
    expect(stop.stderr).toContain("finishes its startup backup (in progress: snapshot of");
    expect(factsOf(join(dir, "hub.db.bak")).records).toBe(BIG + 1);
  });

  test("a reader elsewhere keeps the WAL from being emptied: the backup is taken before serving instead, never from a mixed file", async () => {
    const inst = new Instance();
    generateStore(inst.path("hub.db"), 1000);
    // Another process's read transaction on a WAL with frames: no checkpoint can reset the WAL.
    const writer = new Database(inst.path("hub.db"));
    writer.exec("PRAGMA wal_autocheckpoint = 0");
    writer.query("INSERT INTO meta (key, value) VALUES ('fallback-test', 'x')").run();
    const reader = new Database(inst.path("hub.db"), { readonly: true });
    reader.exec("BEGIN");
    reader.query("SELECT COUNT(*) FROM records").get();
    try {
      const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)], { waitForBackup: false });
      expect(r.code).toBe(0);
      track(Number(/PID:\s+(\d+)/.exec(r.stdout)![1]));
      expect(r.stdout).toMatch(/Backup:\s+\S+hub\.db\.bak \(written\)\n/);
      await waitFor("the WARN line 'startup backup is taken before serving'", () => logLines(inst).find((l) => l.level === "WARN" && /startup backup is taken before serving/.test(l.msg)));
      const bak = /Backup:\s+(\S+) \(written\)/.exec(r.stdout)![1]!;
      expect(factsOf(bak)).toMatchObject({ quick_check: "ok", records: 1001 });
    } finally {
      reader.exec("COMMIT");
      reader.close();
      writer.close();
    }
    await stopOk(inst);
  });

  test("kill -9 while it is being written leaves every earlier backup byte-identical and intact; the next start removes the temporary and writes a new one", async () => {
    const { inst, dir } = await bigInstance();
    // Earlier backups: hub.db.bak, hub.db.bak.1 and hub.db.bak.max.
    await inst.start();
    await inst.spl(["restart"]);
    await stopOk(inst);
    const before = hashTree(dir);
    delete before["owner.json"]; // not a backup: rewritten by every start
    expect(Object.keys(before).sort()).toEqual(["hub.db.bak", "hub.db.bak.1", "hub.db.bak.max"]);

    let killed: { pid: number; temp: string } | null = null;
    const watcher = watchFor(dir, (name) => {
      if (killed) return;
      const pid = Number(TEMP.exec(name)![1]);
      process.kill(pid, "SIGKILL");
      killed = { pid, temp: name };
    });
    try {
      await inst.spl(["serve", "--daemon", "--port", String(inst.port)], { waitForBackup: false });
      await waitFor("the daemon to be killed mid-backup and gone", () => killed && !isAlive(killed.pid), { timeoutMs: 120_000 });
    } finally {
      watcher.close();
    }
    const { temp } = killed!;
    // Nothing removes it once the daemon is dead: it existed when the kill landed.
    expect(existsSync(join(dir, temp))).toBe(true);
    const after = hashTree(dir);
    for (const [name, hash] of Object.entries(before)) expect(after[name]).toBe(hash);
    for (const name of ["hub.db.bak", "hub.db.bak.1", "hub.db.bak.max"]) {
      const f = factsOf(join(dir, name));
      expect(f.quick_check).toBe("ok");
      expect(f.records).toBeGreaterThan(BIG);
    }

    await inst.start();
    expect(existsSync(join(dir, temp))).toBe(false);
    const removed = await waitFor("the log line 'removed temporaries left by an interrupted backup'", () => logLines(inst).find((l) => l.msg === "removed temporaries left by an interrupted backup"));
    expect(removed?.files).toContain(temp);
    expect(readdirSync(dir).sort()).toEqual(["hub.db.bak", "hub.db.bak.1", "hub.db.bak.2", "hub.db.bak.max", "owner.json"]);
    expect(sha256File(join(dir, "hub.db.bak.1"))).toBe(before["hub.db.bak"]!);
    const status = (await inst.socket("GET", "/v1/status")).json.backup;
    expect(status.outcome).toBe("written");
    expect(factsOf(join(dir, "hub.db.bak"))).toMatchObject({ quick_check: "ok", records: status.records });
    await stopOk(inst);
  });
});

/**
 * Keeps the startup backup "in progress" until `release`: another backup folder's owner.json is
 * a FIFO, and the worker's survey of this home's backups (the first thing it does after pinning)
 * blocks reading it until a writer comes.
 */
function holdBackup(inst: Instance): { release(): void } {
  const dir = join(backupsRoot(inst), "home-000000000000");
  mkdirSync(dir, { recursive: true });
  const fifo = join(dir, "owner.json");
  expect(Bun.spawnSync(["mkfifo", fifo]).exitCode).toBe(0);
  return {
    release() {
      // Non-blocking: the open fails (ENXIO) until the worker has it open for reading.
      const deadline = Date.now() + 60_000;
      for (;;) {
        try {
          const fd = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
          writeSync(fd, "{}");
          closeSync(fd);
          break;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "ENXIO" || Date.now() > deadline) throw err;
          Bun.sleepSync(10);
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Calls `onTemp` once, for the first startup-backup temporary that appears in `dir`. */
function watchFor(dir: string, onTemp: (name: string) => void) {
  let fired = false;
  return watch(dir, (_event, name) => {
    if (fired || typeof name !== "string" || !TEMP.test(name)) return;
    fired = true;
    onTemp(name);
  });
}

// Startup backups (issue 3 items 1-3): identity, instance-key rules, VACUUM INTO snapshot
// checked then renamed, rotation with [backup] keep, hub.db.bak.max, the runbook's trap, and a
// failed backup that leaves every existing backup alone while the daemon keeps running.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Instance, waitFor } from "./harness";
import { backupsRoot, emit, factsOf, hashTree, health, instanceDir, logLines, settledBackupLine, startWithBanner, stopOk } from "./backup-helpers";


describe("instance identity", () => {
  test("bootstrapped on first start, content-addressed, shown by /health, status and the banner, stable across restarts", async () => {
    const inst = new Instance();
    const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(r.code).toBe(0);
    const did = /Instance: (did:sync:instance:[0-9a-f]{16})\n/.exec(r.stdout)![1]!;
    const h = await health(inst);
    expect(h.instance_did).toBe(did);
    const status = await inst.spl(["status"]);
    expect(status.stdout).toContain(`Instance: ${did}`);
    // Content-addressed: the first 16 hex of the genesis LEARN on th_instance.
    const genesis = (await inst.socket("GET", "/v1/threads/th_instance/records")).json.data[0];
    expect(genesis.act).toBe("LEARN");
    expect(genesis.actor).toBe("did:sync:system:engine");
    expect(genesis.body.topic).toBe("instance_bootstrap");
    expect(did).toBe(`did:sync:instance:${genesis.id.slice(0, 16)}`);
    await inst.spl(["restart"]);
    expect((await health(inst)).instance_did).toBe(did);
    await stopOk(inst);
  });
});

describe("startup backup", () => {
  test("none for a new store; on the next start a verified snapshot at backups/instance-<16 hex>/hub.db.bak, shown in banner and /v1/status", async () => {
    const inst = new Instance();
    const first = await startWithBanner(inst);
    expect(first.backup).toBe("none (new store)");
    expect(existsSync(backupsRoot(inst))).toBe(false);
    await emit(inst, 25);
    const did = (await health(inst)).instance_did;
    const before = (await health(inst)).records;
    await stopOk(inst);

    const second = await startWithBanner(inst);
    const file = join(instanceDir(inst, did), "hub.db.bak");
    expect(second.backup).toBe(`${file} (written)`);
    const f = factsOf(file);
    expect(f.quick_check).toBe("ok");
    expect(f.records).toBe(before);
    // A compact single file: no -wal/-shm beside it, no temporaries left behind.
    const names = readdirSync(instanceDir(inst, did)).sort();
    expect(names).toEqual(["hub.db.bak", "hub.db.bak.max", "owner.json"]);
    expect(statSync(file).mode & 0o777).toBe(0o600);

    const status = (await inst.socket("GET", "/v1/status")).json;
    expect(status.backup.path).toBe(file);
    expect(status.backup.records).toBe(before);
    expect(Number.isNaN(Date.parse(status.backup.written_at))).toBe(false);
    // INFO lines are flushed within 50 ms; wait for it rather than assume.
    const line = await waitFor("the log line 'startup backup written'", () => logLines(inst).find((l) => l.msg === "startup backup written"));
    expect(line).toMatchObject({ level: "INFO", path: file, records: before });
    await stopOk(inst);
  });

  test("rotation keeps [backup] keep copies, newest first; hub.db.bak.max holds the largest", async () => {
    const inst = new Instance();
    await inst.start();
    const did = (await health(inst)).instance_did;
    let atStop = (await health(inst)).records;
    await stopOk(inst);
    writeFileSync(inst.path("config.toml"), `[backup]\nkeep = 2\n`, { mode: 0o600 });
    const counts: number[] = []; // what each start's backup captured: the store as the last stop left it
    for (let i = 0; i < 4; i++) {
      counts.push(atStop);
      await inst.start();
      await emit(inst, 3, "th_rotation", `round ${i}`);
      atStop = (await health(inst)).records;
      await stopOk(inst);
    }
    const dir = instanceDir(inst, did);
    const names = readdirSync(dir).filter((n) => n.startsWith("hub.db")).sort();
    expect(names).toEqual(["hub.db.bak", "hub.db.bak.1", "hub.db.bak.2", "hub.db.bak.max"]);
    expect(factsOf(join(dir, "hub.db.bak")).records).toBe(counts[3]!);
    expect(factsOf(join(dir, "hub.db.bak.1")).records).toBe(counts[2]!);
    expect(factsOf(join(dir, "hub.db.bak.2")).records).toBe(counts[1]!);
    expect(factsOf(join(dir, "hub.db.bak.max")).records).toBe(counts[3]!);
    for (const n of names) expect(factsOf(join(dir, n)).quick_check).toBe("ok");
  });

  test("instance-key rules: home-<sha256(realpath(home))[:12]> without a DID when SYNCROPEL_HOME is set; flat hub.db.bak for the default home", async () => {
    // A store without an instance DID (as an older spl would have left it): records and meta only.
    const build = (path: string) => {
      mkdirSync(join(path, ".."), { recursive: true });
      const db = new Database(path, { create: true });
      db.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
        CREATE TABLE records (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, thread TEXT NOT NULL, actor TEXT NOT NULL,
          act TEXT NOT NULL, clock INTEGER NOT NULL, data_type TEXT NOT NULL, judged_by TEXT, parents TEXT NOT NULL,
          body TEXT NOT NULL, created_at INTEGER NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');`);
      for (let i = 0; i < 5; i++) {
        db.query("INSERT INTO records (id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at) VALUES (?, 'th_old', 'did:sync:user:old', 'KNOW', ?, 'SCALAR', NULL, '[]', ?, 1700000000)").run(
          createHash("sha256").update(`old ${i}`).digest("hex"),
          i,
          JSON.stringify({ text: `old ${i}` }),
        );
      }
      db.close();
    };

    // Rule 2: SYNCROPEL_HOME set, no DID yet → home-<hash>.
    const a = new Instance();
    build(a.path("hub.db"));
    const startA = await startWithBanner(a);
    const key = "home-" + createHash("sha256").update(realpathSync(a.splHome)).digest("hex").slice(0, 12);
    expect(startA.backup).toBe(`${join(backupsRoot(a), key, "hub.db.bak")} (written)`);
    expect(factsOf(join(backupsRoot(a), key, "hub.db.bak")).records).toBe(5);
    // The DID is bootstrapped after the backup; the next start backs up under instance-<tail>.
    const did = (await health(a)).instance_did;
    await a.spl(["restart"]);
    expect(existsSync(join(instanceDir(a, did), "hub.db.bak"))).toBe(true);
    await stopOk(a);

    // Rule 3: the default home (SYNCROPEL_HOME unset) without a DID → the flat <backups>/hub.db.bak.
    const b = new Instance({ env: { SYNCROPEL_HOME: "" } });
    build(join(b.home, ".syncro", "hub.db"));
    const startB = await startWithBanner(b);
    expect(startB.backup).toBe(`${join(backupsRoot(b), "hub.db.bak")} (written)`);
    expect(factsOf(join(backupsRoot(b), "hub.db.bak")).records).toBe(5);
    await stopOk(b);

    // SPL_BACKUP_DIR moves the whole backups root (e.g. onto a mounted off-host volume).
    const c = new Instance();
    c.env.SPL_BACKUP_DIR = join(c.root, "mounted-backups");
    await c.start();
    const cdid = (await health(c)).instance_did;
    const startC = await settledBackupLine(c, (await c.spl(["restart"])).stdout);
    expect(startC).toBe(`${join(c.root, "mounted-backups", `instance-${cdid.slice(-16)}`, "hub.db.bak")} (written)`);
    expect(existsSync(backupsRoot(c))).toBe(false);
    await stopOk(c);
  });

  test("the runbook's trap is closed: delete hub.db, start, restart — the good backup survives and the log names it", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 40, "th_precious");
    const good = (await health(inst)).records;
    const did = (await health(inst)).instance_did;
    await inst.spl(["restart"]); // backup with every record
    const dir = instanceDir(inst, did);
    expect(factsOf(join(dir, "hub.db.bak")).records).toBe(good);
    await stopOk(inst);

    // The accident: hub.db deleted, daemon started (empty store), then restarted — twice.
    for (const f of ["hub.db", "hub.db-wal", "hub.db-shm"]) rmSync(inst.path(f), { force: true });
    const empty = await startWithBanner(inst);
    expect(empty.backup).toBe("none (new store)");
    expect((await health(inst)).records).toBeLessThan(good);
    const warnNew = logLines(inst).filter((l) => l.level === "WARN" && /new, empty store/.test(l.msg));
    expect(warnNew.length).toBe(1);
    expect(warnNew[0].msg).toContain(`spl restore ${join(dir, "hub.db.bak.max")}`);
    for (let i = 0; i < 2; i++) {
      const r = await inst.spl(["restart"]);
      expect(r.code).toBe(0);
      // The banner may print while the backup (written while serving) is in progress: its settled outcome.
      const line = await settledBackupLine(inst, r.stdout);
      expect(line).toContain("WARNING store shrank");
      expect(line).toContain(join(dir, "hub.db.bak.max"));
    }
    // A backup with all the records still exists, and the log said which one to restore from.
    expect(factsOf(join(dir, "hub.db.bak.max")).records).toBe(good);
    // The recreated store's snapshots rotated into the same folder (issue 14 item 8): one folder per home.
    expect(factsOf(join(dir, "hub.db.bak")).records).toBeLessThan(good);
    expect(readdirSync(backupsRoot(inst))).toEqual([`instance-${did.slice(-16)}`]);
    const shrank = logLines(inst).filter((l) => l.level === "WARN" && /store shrank/.test(l.msg));
    expect(shrank.length).toBe(2);
    expect(shrank[0].msg).toContain(`spl restore ${join(dir, "hub.db.bak.max")}`);
    expect(shrank[0].best_records).toBe(good);

    // Same directory as well: a store that shrinks under the same instance keeps .max.
    await stopOk(inst);
    const r = await inst.spl(["restore", join(dir, "hub.db.bak.max")]);
    expect(r.code).toBe(0);
    await inst.start();
    expect((await health(inst)).records).toBeGreaterThanOrEqual(good);
    expect((await health(inst)).instance_did).toBe(did);
    await stopOk(inst);
  });

  test("a store that shrinks under the same instance key: .max is never replaced by the smaller snapshot, even after keep rotations", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 30, "th_big");
    const did = (await health(inst)).instance_did;
    const big = (await health(inst)).records;
    await stopOk(inst);
    writeFileSync(inst.path("config.toml"), `[backup]\nkeep = 1\n`, { mode: 0o600 });
    await inst.start(); // backup: everything
    await stopOk(inst);
    // Replace the store with an older copy of the same instance (fewer records, same DID).
    const dir = instanceDir(inst, did);
    const db = new Database(inst.path("hub.db"));
    db.exec("DELETE FROM records WHERE thread = 'th_big' AND seq > (SELECT MIN(seq) + 4 FROM records WHERE thread = 'th_big')");
    db.exec("UPDATE threads SET record_count = 5 WHERE thread = 'th_big'");
    db.close();
    for (let i = 0; i < 3; i++) {
      await inst.start();
      await stopOk(inst);
    }
    expect(factsOf(join(dir, "hub.db.bak.max")).records).toBe(big);
    expect(factsOf(join(dir, "hub.db.bak")).records).toBeLessThan(big);
    expect(logLines(inst).filter((l) => /store shrank/.test(l.msg)).length).toBe(3);
  });

  test("a failed startup backup is loud (banner, ERROR log, status, doctor) but leaves every existing backup byte-identical and the daemon running", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 10);
    const did = (await health(inst)).instance_did;
    await inst.spl(["restart"]);
    await inst.spl(["restart"]);
    await stopOk(inst);
    const dir = instanceDir(inst, did);
    const before = hashTree(backupsRoot(inst));
    // An obstacle the backup cannot write past: owner.json turned into a non-empty directory.
    rmSync(join(dir, "owner.json"));
    mkdirSync(join(dir, "owner.json", "blocker"), { recursive: true });
    delete before[join(`instance-${did.slice(-16)}`, "owner.json")];

    const r = await startWithBanner(inst);
    expect(r.backup).toMatch(/^.*hub\.db\.bak \(FAILED: .+\)$/);
    expect((await health(inst)).status).toBe("ok");
    const err = logLines(inst).find((l) => l.level === "ERROR" && /startup backup FAILED/.test(l.msg));
    expect(err).toBeDefined();
    expect((await inst.socket("GET", "/v1/status")).json.backup.outcome).toStartWith("FAILED");
    const after = hashTree(backupsRoot(inst));
    for (const [k, v] of Object.entries(before)) expect(after[k]).toBe(v);
    expect(readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
    const doc = JSON.parse((await inst.spl(["doctor", "--json"])).stdout);
    expect(doc.checks.find((c: any) => c.name === "backup").status).toBe("fail");
    await stopOk(inst);
  });
});

// Corruption detection and recovery (issue 3 items 4-5): every damage case refuses startup with
// exit 1, an ERROR log line and a stderr message naming the file, SQLite's error and the recovery
// steps, leaving every backup (and the damaged file itself) byte-identical; the runbook's manual
// procedure works; `spl restore` does it safely.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, copyFileSync, existsSync, openSync, readdirSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Instance, SPL, isAlive, processGone } from "./harness";
import { backupsRoot, emit, factsOf, hashTree, health, instanceDir, logLines, sha256File, stopOk } from "./backup-helpers";


interface Prepared {
  inst: Instance;
  did: string;
  dir: string;
  records: number;
  drill: { count: number; lastId: string };
}

/** An instance with records, a startup backup of them, stopped. */
async function prepared(n = 40): Promise<Prepared> {
  const inst = new Instance();
  await inst.start();
  const ids = await emit(inst, n, "th_drill", "baseline");
  const h = await health(inst);
  await inst.spl(["restart"]); // startup backup of everything
  await stopOk(inst);
  const dir = instanceDir(inst, h.instance_did);
  expect(factsOf(join(dir, "hub.db.bak")).records).toBe(h.records);
  return { inst, did: h.instance_did, dir, records: h.records, drill: { count: n, lastId: ids[ids.length - 1]! } };
}

/** Deterministic garbage (no /dev/urandom: the same bytes every run). */
function garbage(n: number, seed = 7): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

function writeAt(path: string, offset: number, data: Buffer) {
  const fd = openSync(path, "r+");
  writeSync(fd, data, 0, data.length, offset);
  closeSync(fd);
}

const sh = (cmd: string, cwd: string) => {
  const r = Bun.spawnSync(["bash", "-c", cmd], { cwd });
  if (r.exitCode !== 0) throw new Error(`${cmd}: ${r.stderr.toString()}`);
};

const CASES: [string, (p: Prepared) => void, RegExp][] = [
  ["header zeroed (dd if=/dev/zero of=hub.db bs=4096 count=1 conv=notrunc)", (p) => sh("dd if=/dev/zero of=hub.db bs=4096 count=1 conv=notrunc", p.inst.splHome), /file header is not a SQLite header.*SQLite: /],
  ["file truncated", (p) => sh(`truncate -s ${Math.floor(statSync(p.inst.path("hub.db")).size / 2) + 100} hub.db`, p.inst.splHome), /truncated.*SQLite: /],
  [
    "a page in the middle overwritten with garbage",
    (p) => {
      const size = statSync(p.inst.path("hub.db")).size;
      const page = Math.floor(size / 4096 / 2);
      writeAt(p.inst.path("hub.db"), page * 4096, garbage(4096));
    },
    /(quick_check found damage|SQLite cannot read it).*SQLite: /,
  ],
  ["a garbage hub.db-wal", (p) => writeFileSync(p.inst.path("hub.db-wal"), garbage(8192, 11)), /write-ahead log .*hub\.db-wal has an invalid header/],
];

describe("a damaged store refuses to start and touches nothing", () => {
  for (const [name, corrupt, problem] of CASES) {
    test(name, async () => {
      const p = await prepared();
      corrupt(p);
      const backups = hashTree(backupsRoot(p.inst));
      const store = p.inst.path("hub.db");
      const evidence = { db: sha256File(store), wal: existsSync(`${store}-wal`) ? sha256File(`${store}-wal`) : null };

      // Detached start: the parent reports the child's error and exits 1.
      const r = await p.inst.spl(["serve", "--daemon", "--port", String(p.inst.port)]);
      expect(r.code).toBe(1);
      const line = r.stderr.trim().split("\n").pop()!;
      expect(line).toStartWith(`error: store ${store} is damaged: `);
      expect(line).toMatch(problem);
      expect(line).toContain(`mv ${store} ${store}.corrupt.`);
      expect(line).toContain("spl restore <backup file>");
      expect(line).toContain("spl backup list");
      expect(line).not.toMatch(/\brm\b|delete/i);

      // Foreground start: same refusal, same exit code.
      const fg = Bun.spawn([SPL, "serve", "--port", String(p.inst.port)], { env: p.inst.env, stdout: "pipe", stderr: "pipe" });
      const [fgErr, fgCode] = await Promise.all([new Response(fg.stderr).text(), fg.exited]);
      expect(fgCode).toBe(1);
      expect(fgErr).toContain(`error: store ${store} is damaged: `);
      expect(fgErr).toContain("spl restore");

      const errors = logLines(p.inst).filter((l) => l.level === "ERROR" && l.store === store);
      expect(errors.length).toBe(2);
      expect(errors[0].msg).toContain("store is damaged");
      expect(errors[0].error).toMatch(problem);

      // Nothing was copied over a backup, nothing new appeared, the evidence is intact.
      expect(hashTree(backupsRoot(p.inst))).toEqual(backups);
      expect(sha256File(store)).toBe(evidence.db);
      if (evidence.wal) expect(sha256File(`${store}-wal`)).toBe(evidence.wal);
      expect(existsSync(p.inst.path("run", "spl.pid"))).toBe(false);
      expect((await p.inst.spl(["status"])).code).toBe(1);

      // `spl restore` cannot tell what a damaged store holds, so it asks for --force (and moves
      // nothing); with it, the startup backup brings the store back.
      const unsure = await p.inst.spl(["restore", join(p.dir, "hub.db.bak")]);
      expect(unsure.code).toBe(1);
      expect(unsure.stderr).toStartWith(`error: cannot tell whether ${store} holds records that ${join(p.dir, "hub.db.bak")} lacks`);
      expect(unsure.stderr).toContain("--force");
      expect(sha256File(store)).toBe(evidence.db);
      expect(readdirSync(p.inst.splHome).filter((n) => n.includes("replaced"))).toEqual([]);
      const rs = await p.inst.spl(["restore", join(p.dir, "hub.db.bak"), "--force"]);
      expect(rs.code).toBe(0);
      expect(rs.stdout).toContain(`records:  ${p.records} across`);
      await p.inst.start();
      expect((await health(p.inst)).records).toBeGreaterThanOrEqual(p.records);
      const recs = (await p.inst.socket("GET", "/v1/threads/th_drill/records?limit=1000")).json.data;
      expect(recs.length).toBe(p.drill.count);
      expect(recs[recs.length - 1].id).toBe(p.drill.lastId);
      await stopOk(p.inst);
    });
  }
});

describe("recovery", () => {
  test("the runbook's manual procedure works as written", async () => {
    const p = await prepared();
    sh("dd if=/dev/zero of=hub.db bs=4096 count=1 conv=notrunc", p.inst.splHome);
    const offsite = join(p.inst.root, "offsite");
    sh(`mkdir -p ${offsite} && cp ${join(p.dir, "hub.db.bak")} ${offsite}/hub.db.drill.bak`, p.inst.root);
    // 1. stop  2. move the corrupt store aside  3. copy the backup in  4. start and verify.
    const script = `
      set -e
      export PATH=${join(SPL, "..")}:$PATH
      spl serve --stop || true
      mv ~/.syncro/hub.db ~/.syncro/hub.db.corrupt.$(date +%s)
      mv ~/.syncro/hub.db-wal ~/.syncro/hub.db-wal.corrupt.$(date +%s) 2>/dev/null || true
      mv ~/.syncro/hub.db-shm ~/.syncro/hub.db-shm.corrupt.$(date +%s) 2>/dev/null || true
      cp ${offsite}/hub.db.drill.bak ~/.syncro/hub.db
      spl serve --daemon --port ${p.inst.port}
      spl status
    `;
    const r = Bun.spawnSync(["bash", "-c", script], { env: p.inst.env, cwd: p.inst.root });
    const out = r.stdout.toString();
    expect(r.exitCode).toBe(0);
    const pid = Number(/PID:\s+(\d+)/.exec(out)![1]);
    (await import("./harness")).track(pid);
    expect(out).toContain("Status:   ok");
    expect(readdirSync(p.inst.splHome).some((n) => /^hub\.db\.corrupt\.\d+$/.test(n))).toBe(true);
    const recs = (await p.inst.socket("GET", "/v1/threads/th_drill/records?limit=1000")).json.data;
    expect(recs.length).toBe(p.drill.count);
    expect(recs[recs.length - 1].id).toBe(p.drill.lastId);
    expect((await health(p.inst)).instance_did).toBe(p.did);
    await stopOk(p.inst);
  });

  test("hub.db deleted after a crash, its WAL left behind: startup refuses rather than replay it into a new store", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    await emit(inst, 50);
    process.kill(pid, "SIGKILL");
    await processGone(pid);
    const { rmSync } = await import("node:fs");
    rmSync(inst.path("hub.db"));
    const wal = sha256File(inst.path("hub.db-wal"));
    rmSync(inst.path("run", "spl.pid"), { force: true });
    const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`store ${inst.path("hub.db")} is missing, but its write-ahead log ${inst.path("hub.db-wal")} still holds`);
    expect(r.stderr).toContain("spl restore <backup file>");
    expect(existsSync(inst.path("hub.db"))).toBe(false);
    expect(sha256File(inst.path("hub.db-wal"))).toBe(wal);
    // Nor does restore set that WAL aside without --force: it cannot tell what it holds.
    const bak = join(inst.root, "empty.bak");
    const other = new Instance();
    await other.start();
    expect((await other.spl(["backup", "--out", bak])).code).toBe(0);
    await other.stop();
    const rs = await inst.spl(["restore", bak]);
    expect(rs.code).toBe(1);
    expect(rs.stderr).toContain(`cannot tell whether ${inst.path("hub.db")} holds records`);
    expect(rs.stderr).toContain("its write-ahead log holds");
    expect(sha256File(inst.path("hub.db-wal"))).toBe(wal);
  });

  test("spl restore refuses while the daemon runs", async () => {
    const p = await prepared(5);
    await p.inst.start();
    const before = sha256File(p.inst.path("hub.db"));
    const r = await p.inst.spl(["restore", join(p.dir, "hub.db.bak")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: spl serve is running \(pid \d+\).*spl serve --stop/);
    expect(sha256File(p.inst.path("hub.db"))).toBe(before);
    expect(readdirSync(p.inst.splHome).filter((n) => n.includes("replaced"))).toEqual([]);
    await stopOk(p.inst);
  });

  test("spl restore refuses anything that is not an intact spl store, and moves nothing", async () => {
    const p = await prepared(5);
    const bad = join(p.inst.root, "bad");
    const files: [string, () => void, RegExp][] = [
      ["missing.bak", () => {}, /no such file/],
      ["garbage.bak", () => writeFileSync(join(bad, "garbage.bak"), garbage(64 * 1024)), /does not start with a SQLite header/],
      ["zeroed.bak", () => {
        copyFileSync(join(p.dir, "hub.db.bak"), join(bad, "zeroed.bak"));
        writeAt(join(bad, "zeroed.bak"), 0, Buffer.alloc(4096));
      }, /does not start with a SQLite header/],
      ["truncated.bak", () => {
        copyFileSync(join(p.dir, "hub.db.bak"), join(bad, "truncated.bak"));
        sh(`truncate -s ${Math.floor(statSync(join(bad, "truncated.bak")).size / 2)} truncated.bak`, bad);
      }, /quick_check|cannot (read|open)|malformed/],
      ["other.db", () => {
        const db = new Database(join(bad, "other.db"), { create: true });
        db.exec("CREATE TABLE t (x); INSERT INTO t VALUES (1);");
        db.close();
      }, /no records table/],
      ["newer.bak", () => {
        copyFileSync(join(p.dir, "hub.db.bak"), join(bad, "newer.bak"));
        const db = new Database(join(bad, "newer.bak"));
        db.exec("UPDATE meta SET value = '99' WHERE key = 'schema_version'");
        db.close();
      }, /schema version 99, but this spl understands only up to version 2/],
    ];
    sh(`mkdir -p ${bad}`, p.inst.root);
    const store = sha256File(p.inst.path("hub.db"));
    for (const [name, make, why] of files) {
      make();
      const r = await p.inst.spl(["restore", join(bad, name)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toStartWith(`error: ${join(bad, name)} is not an intact spl store: `);
      expect(r.stderr).toMatch(why);
      expect(sha256File(p.inst.path("hub.db"))).toBe(store);
      expect(readdirSync(p.inst.splHome).filter((n) => n.includes("replaced") || n.includes(".tmp-"))).toEqual([]);
    }
    const usage = await p.inst.spl(["restore"]);
    expect(usage.code).toBe(2);
  });

  test("spl restore moves the current files aside, never deletes, prints what it restored; --force needed to lose records", async () => {
    const p = await prepared(20);
    // The store has grown since the backup: restoring would set records aside.
    await p.inst.start();
    await emit(p.inst, 5, "th_after");
    const grown = (await health(p.inst)).records;
    await stopOk(p.inst);
    const refused = await p.inst.spl(["restore", join(p.dir, "hub.db.bak")]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`holds ${grown} records but ${join(p.dir, "hub.db.bak")} holds only ${p.records}`);
    expect(refused.stderr).toContain("--force");

    const storeHash = sha256File(p.inst.path("hub.db"));
    writeFileSync(p.inst.path("hub.db-wal"), ""); // an (empty) sidecar moves aside too
    const r = await p.inst.spl(["restore", join(p.dir, "hub.db.bak"), "--force", "-o", "json"]);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ object: "restore", records: p.records, restored_from: join(p.dir, "hub.db.bak"), store: p.inst.path("hub.db") });
    expect(j.threads).toBeGreaterThan(0);
    expect(j.replaced.records).toBe(grown);
    const aside = j.moved_aside as string[];
    expect(aside.length).toBe(2);
    const mainAside = aside.find((a) => /hub\.db\.replaced\.\d+$/.test(a))!;
    expect(sha256File(mainAside)).toBe(storeHash);
    expect(aside.some((a) => /hub\.db-wal\.replaced\.\d+$/.test(a))).toBe(true);
    expect(existsSync(p.inst.path("hub.db-wal"))).toBe(false);
    expect(statSync(p.inst.path("hub.db")).mode & 0o777).toBe(0o600);
    expect(factsOf(p.inst.path("hub.db")).records).toBe(p.records);

    // Human output names records and threads.
    await p.inst.spl(["restore", mainAside]).then((h) => {
      expect(h.code).toBe(0);
      expect(h.stdout).toMatch(/records:  \d+ across \d+ threads/);
      expect(h.stdout).toContain("moved aside (not deleted): ");
      expect(h.stdout).toContain("Next: spl serve --daemon, then spl status");
    });
    await p.inst.start();
    expect((await health(p.inst)).records).toBeGreaterThanOrEqual(grown);
    await stopOk(p.inst);
    expect(readdirSync(p.inst.splHome).filter((n) => n.startsWith("hub.db.replaced.")).length).toBe(2);
  });

  test("spl restore compares records, not counts: a larger backup that lacks the store's records needs --force", async () => {
    const mine = await prepared(5);
    const other = new Instance();
    await other.start();
    await emit(other, 30, "th_other", "other");
    const bak = join(other.root, "other.bak");
    expect((await other.spl(["backup", "--out", bak])).code).toBe(0);
    await stopOk(other);
    const store = mine.inst.path("hub.db");
    const before = sha256File(store);
    const r = await mine.inst.spl(["restore", bak]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`restoring it would set aside ${mine.drill.count} records that ${bak} lacks`);
    expect(r.stderr).toContain("--force");
    expect(sha256File(store)).toBe(before);
    // Its own startup backup holds everything: no question asked.
    const own = await mine.inst.spl(["restore", join(mine.dir, "hub.db.bak")]);
    expect(own.code).toBe(0);
  });

  test("spl restore into a wiped home (rm -rf ~/.syncro) recreates it", async () => {
    const p = await prepared(8);
    const offsite = join(p.inst.root, "hub.db.offsite.bak");
    copyFileSync(join(p.dir, "hub.db.bak"), offsite);
    sh(`rm -rf ${p.inst.splHome}`, p.inst.root);
    const r = await p.inst.spl(["restore", offsite]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("(there was no store to move aside)");
    const pid = await p.inst.start();
    expect(isAlive(pid)).toBe(true);
    const recs = (await p.inst.socket("GET", "/v1/threads/th_drill/records?limit=1000")).json.data;
    expect(recs.length).toBe(8);
    expect(recs[7].id).toBe(p.drill.lastId);
    await stopOk(p.inst);
  });
});

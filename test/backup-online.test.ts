// `spl backup` and `spl backup list` (issue 3 item 6): a consistent, verified snapshot while the
// daemon keeps taking writes; never overwriting without --force; never from a damaged store.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Instance, waitFor } from "./harness";
import { ACTOR, emit, factsOf, health, instanceDir, openImmutable, stopOk } from "./backup-helpers";


describe("spl backup", () => {
  test("online snapshot under concurrent write load is consistent, verified and counted from the snapshot", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 20_000, "th_load_base");
    const before = (await health(inst)).records;

    // A writer that keeps committing batches until told to stop.
    let stop = false;
    let written = 0;
    let failures = 0;
    const writer = (async () => {
      for (let round = 0; !stop; round++) {
        const records = Array.from({ length: 50 }, (_, i) => ({ thread: `th_load_${round % 7}`, actor: ACTOR, act: "KNOW", body: { text: `w ${round} ${i}` } }));
        const r = await inst.socket("POST", "/v1/records/batch", { records });
        if (r.status === 200 && r.json.data.every((d: any) => d.status === "created")) written += 50;
        else failures++;
      }
    })();
    // Let the writer get going, then snapshot twice while it runs.
    const progress = () => ({ written, failures });
    await waitFor("the writer to commit 500 records", progress, { stepMs: 5, until: (p) => p.written >= 500 });
    const out = join(inst.root, "offsite", "snap.bak");
    const r = await inst.spl(["backup", "--out", out, "-o", "json"]);
    const r2 = await inst.spl(["backup", "-o", "json"]);
    const writtenDuring = written;
    await waitFor(`the writer to commit 500 more records after the backups (${writtenDuring} before)`, progress, { stepMs: 5, until: (p) => p.written >= writtenDuring + 500 });
    stop = true;
    await writer;
    expect(failures).toBe(0);
    const after = (await health(inst)).records;

    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j).toMatchObject({ object: "backup", path: out, quick_check: "ok", daemon_running: true });
    expect(j.records).toBeGreaterThan(before);
    expect(j.records).toBeLessThan(after);
    const f = factsOf(out, true);
    expect(f.quick_check).toBe("ok");
    expect(f.records).toBe(j.records);
    // Consistent: exactly the records committed up to one point, with nothing missing in between.
    const live = new Database(inst.path("hub.db"), { readonly: true });
    const liveSeqs = (live.query("SELECT seq FROM records WHERE seq <= ? ORDER BY seq").all(f.seqs[f.seqs.length - 1]!) as { seq: number }[]).map((x) => x.seq);
    live.close();
    expect(f.seqs).toEqual(liveSeqs);
    // Thread summaries agree with the records in the snapshot.
    const snap = openImmutable(out);
    const mismatched = snap.query("SELECT t.thread FROM threads t WHERE t.record_count != (SELECT COUNT(*) FROM records r WHERE r.thread = t.thread)").all();
    snap.close();
    expect(mismatched).toEqual([]);

    // The default target: a timestamped file in this instance's backup dir.
    expect(r2.code).toBe(0);
    const j2 = JSON.parse(r2.stdout);
    const dir = instanceDir(inst, (await health(inst)).instance_did);
    expect(j2.path).toMatch(new RegExp(`^${dir}/hub\\.db\\.\\d{8}-\\d{6}(-\\d+)?\\.bak$`));
    expect(factsOf(j2.path).records).toBe(j2.records);
    expect(j2.records).toBeGreaterThanOrEqual(j.records);
    expect(readdirSync(dir).filter((n) => n.includes(".tmp-"))).toEqual([]);
    await stopOk(inst);
  });

  test("never overwrites without --force, never writes over the live store, refuses a damaged stopped store", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 10);
    const out = join(inst.root, "keep.bak");
    writeFileSync(out, "precious, not a backup");
    const refused = await inst.spl(["backup", "--out", out]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(`error: ${out} already exists — pass --force to replace it, or choose another --out\n`);
    expect(await Bun.file(out).text()).toBe("precious, not a backup");

    const forced = await inst.spl(["backup", "--out", out, "--force"]);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain(`Backup written: ${out}`);
    expect(forced.stdout).toMatch(/records:  \d+ across \d+ threads \(verified: quick_check ok/);
    expect(factsOf(out).quick_check).toBe("ok");

    const live = await inst.spl(["backup", "--out", inst.path("hub.db"), "--force"]);
    expect(live.code).toBe(1);
    expect(live.stderr).toContain("is the live store itself");

    // Stopped: works directly on the file, leaving no -wal/-shm behind.
    const count = (await health(inst)).records;
    await stopOk(inst);
    const stopped = await inst.spl(["backup", "--out", join(inst.root, "stopped.bak"), "-o", "json"]);
    expect(stopped.code).toBe(0);
    expect(JSON.parse(stopped.stdout)).toMatchObject({ daemon_running: false, records: count });
    expect(readdirSync(inst.splHome).filter((n) => n.startsWith("hub.db"))).toEqual(["hub.db"]);

    // Damaged and stopped: refused, nothing written.
    const fd = require("node:fs").openSync(inst.path("hub.db"), "r+");
    require("node:fs").writeSync(fd, Buffer.alloc(4096), 0, 4096, 0);
    require("node:fs").closeSync(fd);
    const damaged = await inst.spl(["backup", "--out", join(inst.root, "damaged.bak")]);
    expect(damaged.code).toBe(1);
    expect(damaged.stderr).toStartWith(`error: store ${inst.path("hub.db")} is damaged: `);
    expect(existsSync(join(inst.root, "damaged.bak"))).toBe(false);
    expect(readdirSync(inst.root).filter((n) => n.includes(".tmp-"))).toEqual([]);
  });
});

describe("spl backup list", () => {
  test("shows this instance's backups (startup, rotated, largest, manual) with time and record count; not other homes'", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 12);
    await inst.spl(["restart"]);
    await emit(inst, 3);
    await inst.spl(["restart"]);
    const manual = JSON.parse((await inst.spl(["backup", "-o", "json"])).stdout);
    const did = (await health(inst)).instance_did;

    const list = await inst.spl(["backup", "list", "-o", "json"]);
    expect(list.code).toBe(0);
    const files = JSON.parse(list.stdout) as any[];
    const dir = instanceDir(inst, did);
    const byName = Object.fromEntries(files.map((f) => [f.name, f]));
    expect(Object.keys(byName).sort()).toEqual([manual.path.split("/").pop(), "hub.db.bak", "hub.db.bak.1", "hub.db.bak.max"].sort());
    for (const f of files) {
      expect(f.dir).toBe(dir);
      expect(f.records).toBe(factsOf(f.path).records);
      expect(Number.isNaN(Date.parse(f.written_at))).toBe(false);
      expect(f.bytes).toBe(statSync(f.path).size);
    }
    expect(byName["hub.db.bak"].kind).toBe("latest");
    expect(byName["hub.db.bak.1"].kind).toBe("rotated");
    expect(byName["hub.db.bak.1"].records).toBeLessThan(byName["hub.db.bak"].records);
    // .max: the largest snapshot of all (startup and manual ones both compete for it).
    expect(byName["hub.db.bak.max"].records).toBe(Math.max(...files.map((f) => f.records)));
    expect(byName[manual.path.split("/").pop()].kind).toBe("manual");

    const human = await inst.spl(["backup", "list"]);
    expect(human.stdout).toContain("WRITTEN");
    expect(human.stdout).toContain(join(dir, "hub.db.bak"));
    expect(human.stdout).toMatch(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+\d+\s+/);

    // Another home sharing the same backups root (same HOME) sees none of them.
    const otherHome = new Instance({ env: { HOME: inst.home, SYNCROPEL_HOME: join(inst.root, "other-home") } });
    const none = await otherHome.spl(["backup", "list", "-o", "json"]);
    expect(JSON.parse(none.stdout)).toEqual([]);
    expect((await otherHome.spl(["backup", "list"])).stdout).toContain("no backups of");
    await stopOk(inst);
  });
});

// A crash in the middle of a WAL checkpoint leaves hub.db shorter than its header says (page 1
// is copied from the WAL before the pages after it), while the WAL still holds every page. SQLite
// reads that store intact, so startup must too; and `spl restore` must not set its records aside
// without --force.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { closeSync, openSync, readSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import { Instance, processGone } from "./harness";
import { emit, threadIds, factsOf, health, stopOk } from "./backup-helpers";

/** The newest committed copy of page 1 in a WAL (every frame of a cleanly written WAL is valid). */
function lastPageOne(wal: string): Buffer {
  const fd = openSync(wal, "r");
  try {
    const head = Buffer.alloc(32);
    readSync(fd, head, 0, 32, 0);
    const pageSize = head.readUInt32BE(8);
    const frame = Buffer.alloc(24 + pageSize);
    let found: Buffer | null = null;
    for (let off = 32; readSync(fd, frame, 0, frame.length, off) === frame.length; off += frame.length) {
      if (frame.readUInt32BE(0) === 1) found = Buffer.from(frame.subarray(24));
    }
    if (!found) throw new Error("no page 1 in the WAL");
    return found;
  } finally {
    closeSync(fd);
  }
}

describe("a crash during a checkpoint", () => {
  test("hub.db's header counts pages only the WAL holds: the daemon starts and every record is there; restore refuses to set them aside", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    await emit(inst, 20, "th_crash", "early");
    const early = join(inst.root, "early.bak");
    expect((await inst.spl(["backup", "--out", early])).code).toBe(0);

    // A reader holding an old snapshot keeps every later frame in the WAL only.
    const reader = new Database(inst.path("hub.db"), { readonly: true });
    reader.exec("BEGIN");
    reader.query("SELECT COUNT(*) FROM records").get();
    const ids = await emit(inst, 3000, "th_crash", "x".repeat(200));
    const acked = (await health(inst)).records;
    process.kill(pid, "SIGKILL");
    await processGone(pid);
    reader.exec("COMMIT");
    reader.close();

    // The checkpoint's first write: page 1 (with the new page count) into the main file.
    const store = inst.path("hub.db");
    const page1 = lastPageOne(`${store}-wal`);
    const fd = openSync(store, "r+");
    writeSync(fd, page1, 0, page1.length, 0);
    closeSync(fd);
    const pageSize = page1.readUInt16BE(16);
    const headerPages = page1.readUInt32BE(28);
    expect(statSync(store).size).toBeLessThan(headerPages * pageSize);

    const refused = await inst.spl(["restore", early]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`${store} holds ${acked} records but ${early} holds only`);
    expect(refused.stderr).toContain("--force");

    const doctor = JSON.parse((await inst.spl(["doctor", "-o", "json"])).stdout);
    expect(doctor.checks.find((c: any) => c.name === "store integrity").status).toBe("pass");

    await inst.start();
    expect((await health(inst)).records).toBe(acked);
    const stored = await threadIds(inst, "th_crash");
    expect(ids.filter((id) => !stored.has(id))).toEqual([]);
    await stopOk(inst);
    expect(factsOf(store)).toMatchObject({ quick_check: "ok", records: acked });
  }, 120_000);
});

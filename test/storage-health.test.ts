// Storage failures are never silent: a WAL that cannot be checkpointed and a write that fails
// (here a real file-size limit, RLIMIT_FSIZE, which binds root as well) show in
// `spl status -o json` (GET /v1/status `storage`) and `spl doctor`; log lines that cannot reach
// the log file go to stderr; acknowledged records survive.
import { describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { appendFileSync, existsSync, statSync } from "node:fs";
import { Instance, SPL, track, waitFor } from "./harness";
import { emit, threadIds, health, stopOk } from "./backup-helpers";

async function storageOf(inst: Instance): Promise<any> {
  const r = await inst.spl(["status", "-o", "json"]);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).storage;
}

async function doctorRow(inst: Instance, name: string): Promise<any> {
  const d = JSON.parse((await inst.spl(["doctor", "-o", "json"])).stdout);
  return d.checks.find((c: any) => c.name === name);
}

describe("storage status", () => {
  test("a reader holding an old snapshot: checkpoint_ok false and a doctor warning, until it lets go", async () => {
    const inst = new Instance();
    await inst.start();
    await emit(inst, 10, "th_wal");
    await waitFor("a checkpoint to succeed (GET /v1/status storage)", () => storageOf(inst), { until: (s) => s.checkpoint_ok === true });
    expect(await doctorRow(inst, "storage")).toMatchObject({ status: "pass" });

    const reader = new Database(inst.path("hub.db"), { readonly: true });
    reader.exec("BEGIN");
    reader.query("SELECT COUNT(*) FROM records").get();
    await emit(inst, 500, "th_wal");
    const stuck = await waitFor("the open reader to stall the checkpoint (GET /v1/status storage)", () => storageOf(inst), { until: (s) => s.checkpoint_ok === false });
    expect(stuck.wal_bytes).toBeGreaterThan(0);
    const row = await doctorRow(inst, "storage");
    expect(row.status).toBe("warn");
    expect(row.detail).toContain("not being checkpointed");

    reader.exec("COMMIT");
    reader.close();
    const freed = await waitFor("a checkpoint to succeed once the reader is gone (GET /v1/status storage)", () => storageOf(inst), { until: (s) => s.checkpoint_ok === true });
    expect(freed.last_checkpoint_at > stuck.last_checkpoint_at).toBe(true);
    expect(freed.last_error).toBeNull();
    await stopOk(inst);
  });

  test("writes failing (file size limit): 5xx envelopes, the error in status, doctor and on stderr when the log cannot take it; acknowledged records survive", async () => {
    const inst = new Instance();
    await inst.spl(["init"]);
    const limitKiB = 3072;
    // A file-size limit is inherited by the daemon; SIGXFSZ is ignored so writes fail with EFBIG
    // instead of killing it, as on a full disk.
    const proc = Bun.spawn(["bash", "-c", `trap '' XFSZ; ulimit -f ${limitKiB}; exec "$0" serve --port ${inst.port}`, SPL], {
      env: inst.env,
      stdout: "pipe",
      stderr: "pipe",
    });
    track(proc.pid);
    let stderr = "";
    const decoder = new TextDecoder();
    void (async () => {
      for await (const chunk of proc.stderr) stderr += decoder.decode(chunk);
    })();
    await waitFor("GET /health over the socket to answer 200", async () => (await inst.socket("GET", "/health")).status, { until: (s) => s === 200 });

    // The log file is already at the limit: no line can reach it any more.
    const log = inst.path("logs", "spl.log");
    const pad = `{"ts":"2026-01-01T00:00:00.000Z","level":"INFO","target":"test","msg":"padding"}\n`;
    const size = () => (existsSync(log) ? statSync(log).size : 0);
    while (size() + pad.length <= limitKiB * 1024) appendFileSync(log, pad);
    const rest = limitKiB * 1024 - size();
    if (rest >= 9) appendFileSync(log, `{"p":"${"x".repeat(rest - 9)}"}\n`);

    const acked: string[] = [];
    let failure: { status: number; json: any } | null = null;
    for (let b = 0; b < 40 && !failure; b++) {
      const records = Array.from({ length: 200 }, (_, i) => ({ thread: "th_full", actor: "did:sync:user:filler", act: "KNOW", body: { b, i, pad: "f".repeat(1000) } }));
      const r = await inst.socket("POST", "/v1/records/batch", { records });
      if (r.status === 200) acked.push(...r.json.data.map((d: any) => d.id));
      else failure = r;
    }
    expect(failure).not.toBeNull();
    expect(failure!.status).toBeGreaterThanOrEqual(500);
    expect(failure!.json.object).toBe("error");
    // Says why (item: a failed write is not a bare INTERNAL): SQLite's error, the free space, the fix.
    expect(failure!.json.code).toBe("STORE_WRITE_FAILED");
    expect(failure!.json.message).toMatch(/could not be written: disk I\/O error \(SQLITE_IOERR_WRITE; \d+ bytes free on \S+\) — nothing of this request was written; .*file-size limit/);
    expect(acked.length).toBeGreaterThan(0);

    const storage = await storageOf(inst);
    // The newest error: this write, or the checkpoint just after it that cannot grow hub.db either.
    expect(["write", "checkpoint"]).toContain(storage.last_error.during);
    expect(storage.last_error.message.length).toBeGreaterThan(0);
    expect(Date.parse(storage.last_error.at)).not.toBeNaN();
    const row = await doctorRow(inst, "storage");
    expect(row.status).toBe("fail");
    expect(row.detail).toMatch(/^last write error at \S+ \((write|checkpoint)\): .+ — free disk space/);

    await waitFor("'storage error during write' on the daemon's stderr", () => stderr, { until: (e) => e.includes("storage error during write") });
    expect(stderr).toContain(`spl: cannot write log ${log}`);
    const errorLine = stderr.split("\n").find((l) => l.startsWith("{") && l.includes("storage error during write"));
    expect(JSON.parse(errorLine!)).toMatchObject({ level: "ERROR", during: "write" });

    proc.kill("SIGTERM");
    await proc.exited;
    // Without the limit, every acknowledged record is there.
    await inst.start();
    expect((await health(inst)).records).toBeGreaterThanOrEqual(acked.length);
    const stored = await threadIds(inst, "th_full");
    expect(acked.filter((id) => !stored.has(id))).toEqual([]);
    await stopOk(inst);
  }, 120_000);
});

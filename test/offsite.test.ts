// Off-host backups ([backup.offsite], `spl backup push`, `spl backup list --remote`, `spl restore
// <url>`), driven through the compiled binary against a file:/// directory and a real
// S3-protocol server (s3rver) on loopback.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { emit, hashTree, logLines, sha256File, stopOk, threadIds } from "./backup-helpers";
import { freePort, Instance, waitFor } from "./harness";
import { cuttingRelay, S3_KEY, S3_SECRET, startS3, type S3Server } from "./s3-server";

const S3_ENV = { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET };

async function initWith(inst: Instance, toml: string) {
  expect((await inst.spl(["init"])).code).toBe(0);
  appendFileSync(inst.path("config.toml"), `\n${toml}\n`);
}

const fileToml = (dir: string, extra = "") => `[backup.offsite]\nurl = "file://${dir}"\n${extra}`;
const s3Toml = (port: number, bucket = "spl-backups", extra = "") =>
  `[backup.offsite]\nurl = "s3://${bucket}/nightly"\nendpoint = "http://127.0.0.1:${port}"\nregion = "us-east-1"\n${extra}`;

async function pushJson(inst: Instance, env: Record<string, string> = {}): Promise<any> {
  const r = await inst.spl(["backup", "push", "-o", "json"], { env });
  if (r.code !== 0) throw new Error(`push failed (${r.code}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** The snapshots `spl backup list --remote -o json` shows, newest first. */
async function remoteCopies(inst: Instance, env: Record<string, string> = {}): Promise<any[]> {
  const r = await inst.spl(["backup", "list", "--remote", "-o", "json"], { env });
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout).folders.flatMap((f: any) => f.copies).sort((a: any, b: any) => b.time_ms - a.time_ms);
}

/** Every file (relative path) under dir, temporaries included; `segments/` (replication) left out unless asked. */
function filesUnder(dir: string, segments = false): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => !existsSync(join(dir, f)) || !require("node:fs").statSync(join(dir, f)).isDirectory())
    .filter((f) => segments || !f.includes("/segments/"))
    .sort();
}

describe("off-host backups to a file:/// directory", () => {
  test("push: compressed copy under <instance-key>/ with a sha256sum-format .sha256 beside it, no temporaries left; list --remote shows it", async () => {
    const inst = new Instance();
    const off = join(inst.root, "offsite");
    await initWith(inst, fileToml(off));
    await inst.start();
    await emit(inst, 50);
    const p = await pushJson(inst);
    expect(p.records).toBeGreaterThanOrEqual(50);
    expect(p.compressed_bytes).toBeLessThan(p.bytes);
    const h = await inst.socket("GET", "/health");
    const key = `instance-${h.json.instance_did.slice("did:sync:instance:".length)}`;
    // The daemon also pushes once at its start (none had been pushed yet): once it is done, pairs
    // only, no temporaries.
    await waitFor("the daemon's push at its start to finish (spl status offsite)", async () => JSON.parse((await inst.spl(["status", "-o", "json"])).stdout).offsite, { stepMs: 100, until: (o) => o.last_push?.ok && !o.pushing });
    const files = filesUnder(off);
    const copies = files.filter((f) => f.endsWith(".zst"));
    expect(files).toEqual(copies.flatMap((f) => [f, `${f}.sha256`]).sort());
    for (const f of copies) expect(f).toMatch(new RegExp(`^${key}/hub\\.db\\.\\d{8}-\\d{6}(-\\d+)?\\.bak\\.zst$`));
    const mine = p.url.slice(`file://${off}/`.length);
    expect(copies).toContain(mine);
    // sha256sum format, plus a comment line (ignored by sha256sum -c) declaring what it holds.
    const sum = readFileSync(join(off, `${mine}.sha256`), "utf8").split("\n");
    expect(sum[0]).toBe(`${sha256File(join(off, mine))}  ${mine.split("/")[1]}`);
    const meta = JSON.parse(sum[1]!.slice("# spl ".length));
    expect(meta).toMatchObject({ records: p.records, bytes: p.bytes, last_seq: p.last_seq });
    const check = Bun.spawnSync(["sha256sum", "-c", "--strict", `${mine.split("/")[1]}.sha256`], { cwd: join(off, mine.split("/")[0]!) });
    expect(check.stdout.toString()).toContain(": OK");
    expect(check.exitCode).toBe(0);

    const list = await remoteCopies(inst);
    expect(list.map((c) => c.url).sort()).toEqual(copies.map((f) => `file://${join(off, f)}`).sort());
    expect(list.every((c) => c.checksum)).toBe(true);
    const text = await inst.spl(["backup", "list", "--remote"]);
    expect(text.stdout).toContain(p.url);
    await stopOk(inst);
  });

  test("a dangling symlink, a fifo and a symlink loop anywhere under the root are skipped: push, list --remote and retention still work", async () => {
    const inst = new Instance();
    const off = join(inst.root, "offsite");
    mkdirSync(join(off, "someone-else", "deeper"), { recursive: true });
    symlinkSync(join(inst.root, "no-such-target"), join(off, "dangling"));
    symlinkSync(join(inst.root, "gone-too"), join(off, "someone-else", "deeper", "dangling.bak.zst"));
    symlinkSync(join(off, "someone-else"), join(off, "someone-else", "loop"));
    expect(Bun.spawnSync(["mkfifo", join(off, "someone-else", "pipe")]).exitCode).toBe(0);
    await initWith(inst, fileToml(off, "keep_days = 1"));
    const first = await inst.spl(["backup", "push", "-o", "json"]);
    expect({ code: first.code, stderr: first.stderr }).toEqual({ code: 0, stderr: "" });
    const second = await pushJson(inst);
    const list = await remoteCopies(inst);
    expect(list.map((c) => c.url)).toContain(second.url);
    expect(list.every((c) => !c.url.includes("dangling") && !c.url.includes("someone-else"))).toBe(true);
    expect((await inst.spl(["backup", "list", "--remote"])).code).toBe(0);
  });

  test("restore from a file:// URL into a wiped home: every record id back; a corrupted copy is refused and nothing replaced", async () => {
    const inst = new Instance();
    const off = join(inst.root, "offsite");
    await initWith(inst, fileToml(off));
    await inst.start();
    const ids = await emit(inst, 300, "th_offsite_restore");
    const p = await pushJson(inst);
    const live = await inst.spl(["restore", p.url]);
    expect(live.code).toBe(1);
    expect(live.stderr).toStartWith("error: spl serve is running");
    await stopOk(inst);
    // A copy lacking records the store holds is refused (named by its URL), like any backup.
    await inst.start();
    await emit(inst, 5, "th_offsite_restore_later");
    await stopOk(inst);
    const behind = await inst.spl(["restore", p.url]);
    expect(behind.code).toBe(1);
    expect(behind.stderr).toContain(`restoring it would set aside 5 records that ${p.url} lacks`);

    // Damage one byte of the copy: refused, the current store untouched.
    const obj = p.url.slice("file://".length);
    const good = readFileSync(obj);
    const bad = Buffer.from(good);
    bad[bad.length >> 1] = bad[bad.length >> 1]! ^ 0xff;
    writeFileSync(obj, bad);
    const before = hashTree(inst.splHome);
    const refused = await inst.spl(["restore", p.url, "--force"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toStartWith("error: checksum mismatch:");
    expect(refused.stderr).toContain("nothing was replaced");
    expect(refused.stderr.trim().split("\n")).toHaveLength(1);
    expect(hashTree(inst.splHome)).toEqual(before);
    writeFileSync(obj, good);

    // Wipe the home and the local backups; restore from the off-host copy alone.
    rmSync(inst.splHome, { recursive: true, force: true });
    rmSync(join(inst.home, ".local"), { recursive: true, force: true });
    const r = await inst.spl(["restore", p.url]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`Restored ${p.url}`);
    expect(r.stdout).toContain("sha256, every record id, and quick_check ok");
    await inst.start();
    const back = await threadIds(inst, "th_offsite_restore");
    expect([...back].sort()).toEqual([...ids].sort());
    await stopOk(inst);
  });

  test("retention over simulated days: copies older than keep_days go, except the newest of them (a restore to the window's start needs it); younger ones and the newest stay", async () => {
    const inst = new Instance();
    const off = join(inst.root, "offsite");
    await initWith(inst, fileToml(off, "keep_days = 3"));
    const first = await pushJson(inst); // store stopped: the CLI snapshots it under the store lock
    const folder = first.url.slice("file://".length).replace(/\/[^/]+$/, "");
    // Copies "pushed" 1, 2, 5 and 10 days ago (retention reads the time from the name).
    const data = readFileSync(first.url.slice("file://".length));
    const stamp = (daysAgo: number) => {
      const d = new Date(Date.now() - daysAgo * 86400_000);
      const p = (n: number) => String(n).padStart(2, "0");
      return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
    };
    const names: Record<number, string> = {};
    for (const days of [1, 2, 5, 10]) {
      names[days] = `hub.db.${stamp(days)}.bak.zst`;
      writeFileSync(join(folder, names[days]!), data);
      writeFileSync(join(folder, names[days]! + ".sha256"), `${sha256File(first.url.slice("file://".length))}  ${names[days]}\n`);
    }
    rmSync(first.url.slice("file://".length));
    rmSync(first.url.slice("file://".length) + ".sha256");
    const p = await pushJson(inst);
    expect(p.deleted.map((u: string) => u.split("/").pop()).sort()).toEqual([names[10]]);
    const left = readdirSync(folder).filter((n) => n.endsWith(".zst")).sort();
    expect(left).toEqual([names[5], names[2], names[1], p.url.split("/").pop()].sort());

    // keep_days = 0 with only old copies around: the newest (just pushed) always stays.
    writeFileSync(inst.path("config.toml"), readFileSync(inst.path("config.toml"), "utf8").replace("keep_days = 3", "keep_days = 0"));
    // A copy's name holds its second: the next push needs the clock past the last one's.
    const lastSecond = Math.floor(Date.now() / 1000);
    await waitFor("the next wall-clock second", () => Math.floor(Date.now() / 1000) > lastSecond);
    const q = await pushJson(inst);
    expect(readdirSync(folder).filter((n) => n.endsWith(".zst"))).toEqual([q.url.split("/").pop()]);
    expect(readdirSync(folder).filter((n) => n.endsWith(".sha256"))).toEqual([q.url.split("/").pop() + ".sha256"]);
  });

  test("not configured: push names the config to add; doctor says so in a ✓ row; bad values name the key", async () => {
    const inst = new Instance();
    expect((await inst.spl(["init"])).code).toBe(0);
    const r = await inst.spl(["backup", "push"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("error: off-host backups are not configured in ");
    expect(r.stderr).toContain("[backup.offsite] url = ");
    const d = await inst.spl(["doctor", "-o", "json"]);
    const row = JSON.parse(d.stdout).checks.find((c: any) => c.name === "off-host backup");
    expect(row.status).toBe("pass");
    expect(row.detail).toContain("not configured");
    expect(row.detail).toContain("[backup.offsite] url = ");

    appendFileSync(inst.path("config.toml"), `\n[backup.offsite]\nurl = "file:///tmp/x"\nevery = "soon"\n`);
    const b = await inst.spl(["backup", "push"]);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain("[backup.offsite] every must be a duration");
    expect(b.stderr.trim().split("\n")).toHaveLength(1);
  });

  test("the daemon pushes on its schedule; status -o json and doctor show the newest copy and the last push", async () => {
    const inst = new Instance();
    const off = join(inst.root, "offsite");
    await initWith(inst, fileToml(off, 'every = "1h"'));
    await inst.start();
    // No push yet when it started: the first is due at once. offsite.json (the push's own record)
    // can say ok a moment before the daemon has scheduled the next one: wait for both.
    const st = await waitFor("the first scheduled push to succeed and the next to be scheduled (spl status offsite)", async () => JSON.parse((await inst.spl(["status", "-o", "json"])).stdout), { stepMs: 100, show: (j) => j.offsite, until: (j) => j.offsite?.last_push?.ok && j.offsite?.next_push_at != null });
    expect(st.offsite.url).toBe(`file://${off}`);
    expect(st.offsite.every_secs).toBe(3600);
    expect(st.offsite.next_push_at).not.toBeNull();
    expect(filesUnder(off).filter((f) => f.endsWith(".bak.zst"))).toHaveLength(1);
    await waitFor("the log line 'off-host backup pushed'", () => logLines(inst).some((l) => l.msg === "off-host backup pushed")); // the log is flushed in batches
    const d = await inst.spl(["doctor", "-o", "json"]);
    const rows = JSON.parse(d.stdout).checks;
    expect(rows.find((c: any) => c.name === "off-host backup")).toMatchObject({ status: "pass" });
    expect(rows.find((c: any) => c.name === "off-host backup").detail).toContain("every 1h");
    expect(rows.find((c: any) => c.name === "last off-host push")).toMatchObject({ status: "pass" });
    // Right after a push nothing says the backups are on this machine only, and one is "1 snapshot".
    expect(d.stdout).not.toContain("on this machine only");
    expect(rows.find((c: any) => c.name === "off-host backup").detail).toMatch(/\(every 1h[^)]*, 1 snapshot\)$/);
    const text = await inst.spl(["status"]);
    expect(text.stdout).toContain(`Offsite:  file://${off} — last push ok`);
    await stopOk(inst);
  });
});

describe("off-host backups to S3 (s3rver on loopback)", () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3?.stop();
  });

  test("push, list --remote, and restore of a 100k-record store with identical record ids", async () => {
    const inst = new Instance({ env: S3_ENV });
    await initWith(inst, s3Toml(s3.port));
    await inst.start();
    const ids = await emit(inst, 100_000, "th_offsite_100k");
    await stopOk(inst);
    const p = await pushJson(inst);
    expect(p.url).toMatch(/^s3:\/\/spl-backups\/nightly\/instance-[0-9a-f]{16}\/hub\.db\.\d{8}-\d{6}\.bak\.zst$/);
    expect(p.records).toBeGreaterThanOrEqual(100_000);
    // The daemon pushed once at its start (no push yet), then this one: newest first.
    const list = await remoteCopies(inst);
    expect(list[0].url).toBe(p.url);
    expect(list[0].checksum).toBe(true);

    rmSync(inst.splHome, { recursive: true, force: true });
    rmSync(join(inst.home, ".local"), { recursive: true, force: true });
    // No config.toml any more: the endpoint comes from the environment.
    const r = await inst.spl(["restore", p.url], { env: { AWS_ENDPOINT_URL: `http://127.0.0.1:${s3.port}` } });
    expect(r.code).toBe(0);
    await inst.start();
    const back = await threadIds(inst, "th_offsite_100k");
    expect(back.size).toBe(100_000);
    expect([...back].sort()).toEqual([...ids].sort());
    await stopOk(inst);
  }, 300_000);

  test("wrong credentials: one line naming the variables to set, and no secret anywhere", async () => {
    const inst = new Instance({ env: { AWS_ACCESS_KEY_ID: "NOT-A-KEY", AWS_SECRET_ACCESS_KEY: "very-secret-value-123" } });
    await initWith(inst, s3Toml(s3.port));
    const r = await inst.spl(["backup", "push"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("error: S3 refused the credentials");
    expect(r.stderr).toContain("AWS_ACCESS_KEY_ID");
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr + r.stdout).not.toContain("very-secret-value-123");
    // No credentials at all.
    const none = await inst.spl(["backup", "push"], { env: { AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" } });
    expect(none.code).toBe(1);
    expect(none.stderr).toStartWith("error: no S3 credentials for off-host backups — set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
  });

  test("credentials from <home>/secrets/s3.toml: push works and the secret is in no log line, status, record or copy", async () => {
    const inst = new Instance({ env: { AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" } });
    await initWith(inst, s3Toml(s3.port));
    mkdirSync(inst.path("secrets"), { recursive: true, mode: 0o700 });
    // s3rver checks the key id only, so a distinctive secret can be searched for afterwards.
    const secret = `spl-test-secret-${crypto.randomUUID()}`;
    writeFileSync(inst.path("secrets", "s3.toml"), `access_key_id = "${S3_KEY}"\nsecret_access_key = "${secret}"\n`, { mode: 0o600 });
    await inst.start();
    const st = await waitFor("the push at the daemon's start to succeed (spl status offsite)", async () => JSON.parse((await inst.spl(["status", "-o", "json"])).stdout), { stepMs: 100, show: (j) => j.offsite, until: (j) => j.offsite?.last_push?.ok });
    const p = await pushJson(inst);
    await stopOk(inst);
    // s3rver keeps objects as files: the copies hold the store, never the secret.
    const copy = p.url.slice("s3://spl-backups/".length);
    const haystacks = [
      readFileSync(join(s3.dir, "spl-backups", `${copy}._S3rver_object`)).toString("latin1"),
      Bun.zstdDecompressSync(readFileSync(join(s3.dir, "spl-backups", `${copy}._S3rver_object`))).toString("latin1"),
      readFileSync(inst.path("offsite.json"), "utf8"),
      JSON.stringify(st),
      readFileSync(inst.path("logs", "spl.log"), "utf8"),
      readFileSync(inst.path("hub.db")).toString("latin1"),
      readFileSync(inst.path("config.toml"), "utf8"),
      (await inst.spl(["config", "show"])).stdout,
    ];
    for (const h of haystacks) expect(h).not.toContain(secret);
    expect(p.url).toContain("s3://spl-backups/nightly/");
  });

  test("bucket missing: a clear error naming the bucket", async () => {
    const inst = new Instance({ env: S3_ENV });
    await initWith(inst, s3Toml(s3.port, "no-such-bucket"));
    const r = await inst.spl(["backup", "push"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith("error: bucket 'no-such-bucket' does not exist on the S3 endpoint — create it");
  });

  test("upload cut off mid-way: the push fails and no final-named (partial) object exists", async () => {
    const inst = new Instance({ env: S3_ENV });
    await initWith(inst, s3Toml(s3.port, "spl-backups", "continuous = false"));
    await inst.start();
    // Random text, so the compressed copy is far larger than what the relay lets through.
    for (let i = 0; i < 10; i++) {
      const records = Array.from({ length: 500 }, () => ({ thread: "th_cut", actor: "did:sync:user:tester", act: "KNOW", body: { text: Buffer.from(crypto.getRandomValues(new Uint8Array(256))).toString("base64") } }));
      expect((await inst.socket("POST", "/v1/records/batch", { records })).status).toBe(200);
    }
    await stopOk(inst);
    // What the daemon's own push at its start left (through the real port).
    const before = (await remoteCopies(inst)).map((c) => c.name as string);
    const relay = cuttingRelay(s3.port, 64 * 1024);
    try {
      writeFileSync(inst.path("config.toml"), readFileSync(inst.path("config.toml"), "utf8").replace(`127.0.0.1:${s3.port}`, `127.0.0.1:${relay.port}`));
      const r = await inst.spl(["backup", "push"]);
      expect(r.code).toBe(1);
      expect(r.stderr).toStartWith("error: ");
    } finally {
      relay.stop();
    }
    const did = JSON.parse((await inst.spl(["backup", "list", "-o", "json"])).stdout)[0].instance_did as string;
    const key = `instance-${did.slice("did:sync:instance:".length)}`;
    // The cut push left nothing, under its final name or any other.
    const stored = filesUnder(join(s3.dir, "spl-backups")).filter((f) => f.includes(key) && !before.some((n: string) => f.includes(n)));
    expect(stored).toEqual([]);
    // And through the S3 API itself: nothing listed for this instance.
    const direct = new Bun.S3Client({ accessKeyId: S3_KEY, secretAccessKey: S3_SECRET, endpoint: `http://127.0.0.1:${s3.port}`, bucket: "spl-backups" });
    const listed: any = await direct.list({ prefix: `nightly/${key}/` });
    expect((listed.contents ?? []).filter((o: any) => !before.some((n: string) => o.key.includes(n)))).toEqual([]);
  }, 120_000);

  test("server down: ERROR line and retry with backoff, doctor ✗ row, ingest unaffected; pushes once the server is back", async () => {
    const port = freePort();
    const dir = join(s3.dir, "..", `spl-s3-down-${crypto.randomUUID()}`);
    const inst = new Instance({ env: S3_ENV });
    await initWith(inst, s3Toml(port, "spl-backups", 'every = "1h"'));
    await inst.start();
    const failures = () => logLines(inst).filter((l) => l.level === "ERROR" && String(l.msg).startsWith("off-host backup push FAILED"));
    await waitFor("2 'off-host backup push FAILED' ERROR lines", failures, { timeoutMs: 60_000, stepMs: 100, until: (f) => f.length >= 2 });
    expect(failures()[0].msg).toContain("attempt 1, retrying in 2s");
    expect(failures()[1].msg).toContain("attempt 2, retrying in 4s");
    expect(failures()[0].msg).toContain("cannot reach the S3 endpoint");
    // Ingest goes on meanwhile.
    const ids = await emit(inst, 100, "th_down");
    expect(ids).toHaveLength(100);
    const d = await inst.spl(["doctor", "-o", "json"]);
    const rows = JSON.parse(d.stdout).checks;
    expect(rows.find((c: any) => c.name === "last off-host push")).toMatchObject({ status: "fail" });
    expect(rows.find((c: any) => c.name === "off-host backup").status).toBe("warn");
    const st = JSON.parse((await inst.spl(["status", "-o", "json"])).stdout);
    expect(st.offsite.last_push.ok).toBe(false);
    expect(st.offsite.consecutive_failures).toBeGreaterThanOrEqual(2);

    const back = await startS3({ port, dir });
    try {
      const ok = await waitFor("a push to succeed once the server is back (spl status offsite)", async () => JSON.parse((await inst.spl(["status", "-o", "json"])).stdout), {
        timeoutMs: 120_000,
        stepMs: 200,
        show: (j) => j.offsite,
        until: (j) => j.offsite.last_push?.ok,
      });
      expect(ok.offsite.consecutive_failures).toBe(0);
      expect((await remoteCopies(inst)).length).toBe(1);
      await stopOk(inst);
    } finally {
      await back.stop();
    }
  }, 180_000);
});

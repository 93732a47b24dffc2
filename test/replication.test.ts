// Continuous off-host replication ([backup.offsite] continuous, README "Continuous replication"):
// segments shipped by the compiled daemon's replication thread to a file:/// directory and to a
// real S3-protocol server (s3rver) on loopback, restored by `spl restore <url> [--to-seq|--to-time]`
// into fresh homes and compared with the source store.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Database } from "bun:sqlite";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { emit, logLines, stopOk } from "./backup-helpers";
import { Instance, waitFor } from "./harness";
import { killTrial } from "./kill-trial";
import { S3_KEY, S3_SECRET, startS3, type S3Server } from "./s3-server";

const S3_ENV = { AWS_ACCESS_KEY_ID: S3_KEY, AWS_SECRET_ACCESS_KEY: S3_SECRET };
const fileToml = (dir: string, extra = "") => `[backup.offsite]\nurl = "file://${dir}"\n${extra}`;
const s3Toml = (port: number, extra = "", prefix = "replica") =>
  `[backup.offsite]\nurl = "s3://spl-backups/${prefix}"\nendpoint = "http://127.0.0.1:${port}"\nregion = "us-east-1"\n${extra}`;

async function initWith(inst: Instance, toml: string) {
  expect((await inst.spl(["init"])).code).toBe(0);
  appendFileSync(inst.path("config.toml"), `\n${toml}\n`);
}

async function status(inst: Instance): Promise<any> {
  const r = await inst.socket("GET", "/v1/status");
  expect(r.status).toBe(200);
  return r.json;
}

/** Waits until the generation has its snapshot off-host and every committed record is shipped. */
async function caughtUp(inst: Instance, timeoutMs = 60_000): Promise<any> {
  let last: any = null;
  try {
    return await waitFor(async () => {
      last = (await status(inst)).offsite;
      const r = last.replication;
      return last.last_push?.ok && !last.pushing && r?.generation && r.state === "caught up" ? last : null;
    }, timeoutMs, 50);
  } catch {
    throw new Error(`replication did not catch up; last status: ${JSON.stringify(last)}`);
  }
}

/** A daemon started on a new home that replicates to a file:/// directory, once it has caught up. */
async function replicatingToDir(extra: string): Promise<{ inst: Instance; off: string }> {
  const inst = new Instance();
  const off = join(inst.root, "offsite");
  await initWith(inst, fileToml(off, extra));
  await inst.start();
  await caughtUp(inst);
  return { inst, off };
}

const COLS = "seq, id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at";

/** Every record row of a store (read through SQLite, WAL included), in seq order. */
function rows(path: string): any[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.query(`SELECT ${COLS} FROM records ORDER BY seq`).all();
  } finally {
    db.close();
  }
}

/** The thread summary a store keeps, and what its records say it should be. */
function threadsConsistent(path: string): { kept: any[]; derived: any[] } {
  const db = new Database(path, { readonly: true });
  try {
    return {
      kept: db.query("SELECT thread, record_count, first_seq, last_seq, first_seen, last_seen FROM threads ORDER BY thread").all(),
      derived: db.query("SELECT thread, COUNT(*) AS record_count, MIN(seq) AS first_seq, MAX(seq) AS last_seq, MIN(created_at) AS first_seen, MAX(created_at) AS last_seen FROM records GROUP BY thread ORDER BY thread").all(),
    };
  } finally {
    db.close();
  }
}

/** Restores `url` into a fresh home (nothing but the remote) and answers its store's rows. */
async function restoreFresh(url: string, args: string[] = [], env: Record<string, string> = {}, prepare?: (inst: Instance) => void): Promise<{ rows: any[]; out: any; inst: Instance }> {
  const inst = new Instance({ env });
  prepare?.(inst);
  const r = await inst.spl(["restore", url, ...args, "-o", "json"]);
  if (r.code !== 0) throw new Error(`spl restore ${url} ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  const t = threadsConsistent(inst.path("hub.db"));
  expect(t.kept).toEqual(t.derived);
  return { rows: rows(inst.path("hub.db")), out: JSON.parse(r.stdout), inst };
}

/** Every file under dir (relative), hidden temporaries included. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return (readdirSync(dir, { recursive: true }) as string[]).filter((f) => statSync(join(dir, f)).isFile()).sort();
}

const segmentsUnder = (dir: string) => filesUnder(dir).filter((f) => /\/segments\/[^/]+\/\d+-\d+\.jsonl\.zst$/.test(f));

describe("continuous replication to a file:/// directory", () => {
  test("segments follow commits, each checksummed and declaring its range; status and /metrics show the lag; a restore into an empty home equals the source", async () => {
    const { inst, off } = await replicatingToDir('sync_interval = "200ms"');
    for (let i = 0; i < 3; i++) {
      await emit(inst, 300, `th_repl_${i}`);
      await Bun.sleep(250);
    }
    const st = await caughtUp(inst);
    expect(st.continuous).toBe(true);
    expect(st.replication.last_error).toBeNull();
    expect(st.replication.last_ok_at).not.toBeNull();
    expect(st.replication.lag_ms.samples).toBeGreaterThan(0);

    const segs = segmentsUnder(off);
    expect(segs.length).toBeGreaterThanOrEqual(3);
    let covered = 0;
    for (const s of segs) {
      const dir = join(off, s.slice(0, s.lastIndexOf("/")));
      const name = s.slice(s.lastIndexOf("/") + 1);
      const check = Bun.spawnSync(["sha256sum", "-c", "--strict", `${name}.sha256`], { cwd: dir });
      expect(check.exitCode).toBe(0);
      const meta = JSON.parse(readFileSync(join(dir, `${name}.sha256`), "utf8").split("\n")[1]!.slice("# spl ".length));
      const [first, last] = name.replace(".jsonl.zst", "").split("-").map(Number);
      expect(meta).toMatchObject({ first_seq: first, last_seq: last, generation: st.replication.generation });
      expect(Bun.zstdDecompressSync(readFileSync(join(dir, name))).length).toBe(meta.bytes);
      covered += meta.records;
    }
    expect(covered).toBeGreaterThanOrEqual(900);

    const m = await (await fetch("http://localhost/metrics", { unix: inst.path("run", "spl.sock") } as RequestInit)).text();
    expect(m).toContain("spl_replication_up 1");
    expect(m).toMatch(/spl_replication_lag_seconds 0\b/);
    expect(m).toContain(`spl_replication_shipped_seq ${st.replication.shipped_through}`);
    expect(m).toMatch(/spl_replication_ship_lag_seconds_count [1-9]/);
    expect(m).toContain("spl_offsite_push_last_success 1");
    const text2 = await inst.spl(["status"]);
    expect(text2.stdout).toContain("Replica:  caught up — lag 0.0s");
    const doctor = JSON.parse((await inst.spl(["doctor", "-o", "json"])).stdout).checks;
    expect(doctor.find((c: any) => c.name === "off-host replication")).toMatchObject({ status: "pass" });

    await stopOk(inst);
    const source = rows(inst.path("hub.db"));
    const back = await restoreFresh(`file://${off}`);
    expect(back.rows).toEqual(source);
    expect(back.out.pitr.restored_through.seq).toBe(source[source.length - 1].seq);
    expect(back.out.pitr.segments).toBeGreaterThan(0);
    // The restored home starts and serves the same records.
    await back.inst.start();
    expect((await back.inst.socket("GET", "/health")).json.records).toBeGreaterThanOrEqual(source.length); // (+ its own start records)
    await stopOk(back.inst);
  }, 120_000);

  test("point in time: two sequences and one time restore exactly the source store as it was then, across two snapshots", async () => {
    const { inst, off } = await replicatingToDir('sync_interval = "100ms"');
    await emit(inst, 400, "th_pitr_a");
    await caughtUp(inst);
    const afterA = (await status(inst)).offsite.replication.shipped_through as number;
    // A point in time strictly between A and B: past A's last second, before B's first.
    const lastA = rows(inst.path("hub.db")).at(-1).created_at as number;
    await waitFor(() => Date.now() >= (lastA + 1) * 1000 + 300, 5000, 20);
    const timeT = Date.now();
    await waitFor(() => Date.now() >= (Math.floor(timeT / 1000) + 1) * 1000 + 50, 5000, 20);
    await emit(inst, 400, "th_pitr_b");
    // A second snapshot between B and C, so the points use different bases.
    expect((await inst.spl(["backup", "push"])).code).toBe(0);
    await emit(inst, 400, "th_pitr_c");
    await caughtUp(inst);
    await stopOk(inst);
    const source = rows(inst.path("hub.db"));
    const mid = (lo: number, hi: number) => Math.floor((lo + hi) / 2);
    const seqInA = mid(source[0].seq, afterA);
    const seqInC = mid(afterA + 800, source.at(-1).seq);

    const p1 = await restoreFresh(`file://${off}`, ["--to-seq", String(seqInA)]);
    expect(p1.rows).toEqual(source.filter((r) => r.seq <= seqInA));
    const p2 = await restoreFresh(`file://${off}`, ["--to-time", new Date(timeT).toISOString()]);
    expect(p2.rows).toEqual(source.filter((r) => r.created_at <= Math.floor(timeT / 1000)));
    expect(p2.rows.at(-1).seq).toBe(afterA);
    const p3 = await restoreFresh(`file://${off}`, ["--to-seq", String(seqInC)]);
    expect(p3.rows).toEqual(source.filter((r) => r.seq <= seqInC));
    expect(p3.out.pitr.base).not.toBe(p1.out.pitr.base);

    // Outside the replicated range: refused with the range named, nothing written.
    const bad = new Instance();
    const r = await bad.spl(["restore", `file://${off}`, "--to-seq", String(source.at(-1).seq + 10)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toStartWith(`error: seq ${source.at(-1).seq + 10} cannot be restored from file://${off}/instance-`);
    expect(r.stderr).toContain("the replicated ranges are");
    expect(existsSync(bad.path("hub.db"))).toBe(false);
    const one = await bad.spl(["restore", p1.out.pitr.base, "--to-seq", "3"]);
    expect(one.code).toBe(2);
    expect(one.stderr).toStartWith("error: --to-seq and --to-time restore from a folder");
  }, 180_000);

  test("a restore to an earlier point starts a new generation when the daemon starts; the latest restore follows it, and list --remote shows both", async () => {
    const { inst, off } = await replicatingToDir('sync_interval = "100ms"');
    await emit(inst, 200, "th_gen_old");
    const first = (await caughtUp(inst)).replication.generation;
    await stopOk(inst);
    const before = rows(inst.path("hub.db"));
    const point = before[before.length - 100].seq;
    const r = await inst.spl(["restore", `file://${off}`, "--to-seq", String(point), "--force"]);
    expect(r.code).toBe(0);
    await inst.start();
    const second = (await caughtUp(inst)).replication.generation;
    expect(second).not.toBe(first);
    await waitFor(() => logLines(inst).some((l) => l.msg === "replication: new generation" && l.generation === second), 15_000, 50);
    const fresh = await emit(inst, 50, "th_gen_new");
    await caughtUp(inst);
    await stopOk(inst);
    const now = rows(inst.path("hub.db"));
    expect(now.filter((x) => x.seq > point).map((x) => x.id).sort()).toEqual([...fresh].sort());

    const latest = await restoreFresh(`file://${off}`);
    expect(latest.rows).toEqual(now);
    expect(latest.out.pitr.generation).toBe(second);
    const list = JSON.parse((await inst.spl(["backup", "list", "--remote", "-o", "json"])).stdout);
    const gens = list.folders[0].replication.map((g: any) => g.generation);
    expect(gens).toEqual([first, second]);
    expect(list.folders[0].replication[1]).toMatchObject({ current: true, behind_records: 0, through_seq: now.at(-1).seq });
  }, 180_000);

  test("merging: short segments become one per window, segments a merge left behind (a kill before their delete) do not disturb a restore, and it stays exact", async () => {
    // 50 ms segments, so the first merge window is 60 × 50 ms = 3 s.
    const { inst, off } = await replicatingToDir('sync_interval = "50ms"');
    const until = Date.now() + 4000;
    for (let i = 0; Date.now() < until; i++) {
      await emit(inst, 5, "th_merge", `m${i}`);
      await Bun.sleep(60);
    }
    const shipped = (await caughtUp(inst)).replication.segments_shipped as number;
    expect(shipped).toBeGreaterThan(20);
    const st = await waitFor(async () => {
      const s = (await status(inst)).offsite.replication;
      return s.compactions > 0 ? s : null;
    }, 60_000, 100);
    expect(st.compactions).toBeGreaterThan(0);
    // Merged: far fewer segments than were shipped once the windows have passed, and those not
    // inside a larger one (a merge stored, its short segments not yet deleted) tile the range.
    const uncovered = () => {
      const all = segmentsUnder(off).map((f) => f.slice(f.lastIndexOf("/") + 1).replace(".jsonl.zst", "").split("-").map(Number) as [number, number]);
      return all.filter(([a, b]) => !all.some(([c, d]) => c <= a && d >= b && (c < a || d > b))).sort((x, y) => x[0] - y[0]);
    };
    await waitFor(() => uncovered().length < shipped / 3, 60_000, 200);
    await stopOk(inst);
    const segs = uncovered();
    expect(segs.length).toBeLessThan(shipped / 3);
    for (let i = 1; i < segs.length; i++) expect(segs[i]![0]).toBe(segs[i - 1]![1] + 1);
    expect(filesUnder(off).filter((f) => f.includes("/.")).length).toBe(0);
    // A merge stored whose short segments were not deleted yet (a kill in between): the two
    // last segments again as one, beside them. The restore reads the larger one.
    const genDir = join(off, segmentsUnder(off)[0]!.split("/").slice(0, 3).join("/"));
    const [a, b] = [segs.at(-2)!, segs.at(-1)!];
    const read = (t: [number, number]) => ({
      data: Bun.zstdDecompressSync(readFileSync(join(genDir, `${t[0]}-${t[1]}.jsonl.zst`))),
      meta: JSON.parse(readFileSync(join(genDir, `${t[0]}-${t[1]}.jsonl.zst.sha256`), "utf8").split("\n")[1]!.slice(6)),
    });
    const [ra, rb] = [read(a), read(b)];
    const joined = Buffer.concat([ra.data, rb.data]);
    const z = Bun.zstdCompressSync(joined);
    const name = `${a[0]}-${b[1]}.jsonl.zst`;
    writeFileSync(join(genDir, name), z);
    const meta = { ...ra.meta, bytes: joined.length, records: ra.meta.records + rb.meta.records, last_seq: b[1], last_id: rb.meta.last_id, last_at: rb.meta.last_at };
    writeFileSync(join(genDir, `${name}.sha256`), `${createHash("sha256").update(z).digest("hex")}  ${name}\n# spl ${JSON.stringify(meta)}\n`);
    const back = await restoreFresh(`file://${off}`);
    expect(back.rows).toEqual(rows(inst.path("hub.db")));
  }, 180_000);

  test("retention over simulated days keeps what a restore to any point within keep_days needs: the snapshots inside the window, the newest before it, and the segments after that one", async () => {
    const { inst, off } = await replicatingToDir('sync_interval = "100ms"');
    // Day d (6 days ago .. 1 day ago): records, then a snapshot renamed to that day.
    const day = (daysAgo: number) => {
      const d = new Date(Date.now() - daysAgo * 86400_000);
      const p = (n: number) => String(n).padStart(2, "0");
      return `${d.getUTCFullYear()}${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}-${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}`;
    };
    const snaps: { daysAgo: number; name: string; lastSeq: number }[] = [];
    for (const daysAgo of [6, 5, 4, 3, 2, 1]) {
      await emit(inst, 50, `th_day_${daysAgo}`);
      await caughtUp(inst);
      const p = JSON.parse((await inst.spl(["backup", "push", "-o", "json"])).stdout);
      expect(p.generation).not.toBeNull();
      const path = p.url.slice("file://".length);
      const name = `hub.db.${day(daysAgo)}.bak.zst`;
      const dir = path.slice(0, path.lastIndexOf("/"));
      const sum = readFileSync(`${path}.sha256`, "utf8").replace(path.slice(path.lastIndexOf("/") + 1), name);
      renameSync(path, join(dir, name));
      writeFileSync(join(dir, `${name}.sha256`), sum);
      rmSync(`${path}.sha256`);
      snaps.push({ daysAgo, name, lastSeq: p.last_seq });
    }
    await emit(inst, 50, "th_day_0");
    await caughtUp(inst);
    await stopOk(inst);
    const source = rows(inst.path("hub.db"));
    const folder = readdirSync(off).find((n) => n.startsWith("instance-"))!;
    // The snapshots of the daemon's start (written today) would keep everything: drop them.
    for (const n of readdirSync(join(off, folder))) if (n.endsWith(".bak.zst") && !snaps.some((s) => s.name === n)) rmSync(join(off, folder, n)), rmSync(join(off, folder, `${n}.sha256`));

    writeFileSync(inst.path("config.toml"), readFileSync(inst.path("config.toml"), "utf8") + "keep_days = 3.5\n");
    const push = JSON.parse((await inst.spl(["backup", "push", "-o", "json"])).stdout);
    // Inside the window: 3, 2, 1 days ago (and today's); the newest before it: 4 days ago. 6 and 5 go.
    const left = readdirSync(join(off, folder)).filter((n) => n.endsWith(".bak.zst")).sort();
    expect(left).toEqual([...snaps.filter((s) => s.daysAgo <= 4).map((s) => s.name), push.url.slice(push.url.lastIndexOf("/") + 1)].sort());
    expect(push.deleted.filter((u: string) => u.endsWith(".bak.zst")).map((u: string) => u.slice(u.lastIndexOf("/") + 1)).sort()).toEqual(
      snaps.filter((s) => s.daysAgo > 4).map((s) => s.name).sort(),
    );
    // Segments inside the base (4 days ago) are gone; every one after it stays.
    const base = snaps.find((s) => s.daysAgo === 4)!;
    const segs = segmentsUnder(off).map((f) => f.slice(f.lastIndexOf("/") + 1).replace(".jsonl.zst", "").split("-").map(Number) as [number, number]);
    expect(segs.every(([, last]) => last > base.lastSeq)).toBe(true);
    expect(segs.some(([first]) => first <= base.lastSeq + 1)).toBe(true);

    // Any point from the base on restores exactly; before it, a clear refusal.
    const p = await restoreFresh(`file://${off}`, ["--to-seq", String(base.lastSeq + 1)]);
    expect(p.rows).toEqual(source.filter((r) => r.seq <= base.lastSeq + 1));
    const q = await restoreFresh(`file://${off}`, ["--to-seq", String(snaps.find((s) => s.daysAgo === 2)!.lastSeq + 7)]);
    expect(q.rows.length).toBe(source.filter((r) => r.seq <= snaps.find((s) => s.daysAgo === 2)!.lastSeq + 7).length);
    const latest = await restoreFresh(`file://${off}`);
    expect(latest.rows).toEqual(source);
    const gone = await new Instance().spl(["restore", `file://${off}`, "--to-seq", String(base.lastSeq - 10)]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain("cannot be restored");
  }, 240_000);

  test("a segment whose record was altered (checksum recomputed) is refused by record id; a zstd bomb is refused at its declared size; an uncompressed .bak restores", async () => {
    const { inst, off } = await replicatingToDir('sync_interval = "100ms"');
    await emit(inst, 100, "th_tamper");
    await caughtUp(inst);
    await stopOk(inst);
    const seg = segmentsUnder(off).at(-1)!;
    const segPath = join(off, seg);
    const name = seg.slice(seg.lastIndexOf("/") + 1);
    const original = readFileSync(segPath);
    const originalSum = readFileSync(`${segPath}.sha256`, "utf8");
    const text = Bun.zstdDecompressSync(original).toString().replace(/"text":"fact (\d+)"/, '"text":"FORGED $1"');
    const forged = Bun.zstdCompressSync(Buffer.from(text));
    const hex = createHash("sha256").update(forged).digest("hex");
    const meta = JSON.parse(originalSum.split("\n")[1]!.slice(6));
    writeFileSync(segPath, forged);
    writeFileSync(`${segPath}.sha256`, `${hex}  ${name}\n# spl ${JSON.stringify({ ...meta, bytes: Buffer.byteLength(text) })}\n`);
    const home = new Instance();
    const r = await home.spl(["restore", `file://${off}`]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: file:\/\/.*\.jsonl\.zst line \d+: record \d+ has id [0-9a-f]{16}… but its content hashes to [0-9a-f]{16}… — refused, nothing was replaced/);
    expect(existsSync(home.path("hub.db"))).toBe(false);
    writeFileSync(segPath, original);
    writeFileSync(`${segPath}.sha256`, originalSum);

    // A bomb: ~100 KB that expands to 2 GiB of zeros, declaring 1 MiB.
    const folder = join(off, readdirSync(off).find((n) => n.startsWith("instance-"))!);
    const zeros = Buffer.alloc(16 << 20);
    const parts: Buffer[] = [];
    const enc = new (require("node:zlib").ZstdCompress)();
    const bomb = await new Promise<Buffer>((resolve) => {
      enc.on("data", (c: Buffer) => parts.push(c));
      enc.on("end", () => resolve(Buffer.concat(parts)));
      for (let i = 0; i < 128; i++) enc.write(zeros);
      enc.end();
    });
    const bombName = "hub.db.20300101-000000.bak.zst";
    writeFileSync(join(folder, bombName), bomb);
    writeFileSync(join(folder, `${bombName}.sha256`), `${createHash("sha256").update(bomb).digest("hex")}  ${bombName}\n# spl {"bytes":1048576}\n`);
    const b = await new Instance().spl(["restore", `file://${join(folder, bombName)}`]);
    expect(b.code).toBe(1);
    expect(b.stderr).toContain("expands to more than the 1048576 bytes its .sha256 declares — refused");
    rmSync(join(folder, bombName));
    rmSync(join(folder, `${bombName}.sha256`));

    // An uncompressed .bak with its .sha256, by file:// URL and by path.
    const bak = join(inst.root, "plain", "hub.db.20300101-000000.bak");
    mkdirSync(join(inst.root, "plain"));
    const made = await inst.spl(["backup", "--out", bak]);
    expect(made.code).toBe(0);
    writeFileSync(`${bak}.sha256`, `${createHash("sha256").update(readFileSync(bak)).digest("hex")}  hub.db.20300101-000000.bak\n`);
    const u = await restoreFresh(`file://${bak}`);
    expect(u.rows).toEqual(rows(inst.path("hub.db")));
  }, 120_000);

  test("kill -9 under load, then a restore from the remote alone: every record acknowledged more than sync_interval + one flush before the kill is back (2 trials)", async () => {
    for (let trial = 0; trial < 2; trial++) {
      const inst = new Instance();
      const off = join(inst.root, "offsite");
      await initWith(inst, fileToml(off)); // the default sync_interval, 1 s
      const t = await killTrial(inst, `file://${off}`, {}, 1);
      console.log(`kill -9 trial ${trial + 1} (file://): ${t.acked} acknowledged, ${t.missing} not off-host, loss window ${t.lossMs} ms, longest flush ${t.flushMs} ms`);
      expect(t.acked).toBeGreaterThan(100);
    }
  }, 240_000);
});

describe("replication to S3 (s3rver on loopback)", () => {
  let s3: S3Server;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3?.stop();
  });

  test("kill -9 under load, then a restore from the remote alone: every record acknowledged more than sync_interval + one flush before the kill is back", async () => {
    const inst = new Instance({ env: S3_ENV });
    await initWith(inst, s3Toml(s3.port, "", `kill-${crypto.randomUUID().slice(0, 8)}`));
    const url = [...readFileSync(inst.path("config.toml"), "utf8").matchAll(/^url = "(s3:[^"]+)"/gm)].at(-1)![1]!;
    const t = await killTrial(inst, url, { ...S3_ENV, AWS_ENDPOINT_URL: `http://127.0.0.1:${s3.port}` }, 1);
    console.log(`kill -9 trial (S3): ${t.acked} acknowledged, ${t.missing} not off-host, loss window ${t.lossMs} ms, longest flush ${t.flushMs} ms`);
    expect(t.acked).toBeGreaterThan(100);
  }, 240_000);

  test("server down after good shipments: status, doctor and /metrics say FAILING with the last success, a failed push shows as failed, ingest goes on; back up, it catches up and a restore has everything", async () => {
    const port = s3.port;
    const inst = new Instance({ env: S3_ENV });
    const prefix = `down-${crypto.randomUUID().slice(0, 8)}`;
    await initWith(inst, s3Toml(port, 'sync_interval = "100ms"', prefix));
    await inst.start();
    await emit(inst, 100, "th_down_before");
    const good = await caughtUp(inst);
    expect(good.replication.last_ok_at).not.toBeNull();
    await s3.stop();
    const ids = await emit(inst, 200, "th_down_during"); // ingest goes on
    expect(ids).toHaveLength(200);
    const failing = await waitFor(async () => {
      const s = (await status(inst)).offsite;
      return s.replication.state === "failing" && s.replication.consecutive_failures >= 2 ? s : null;
    }, 60_000, 100);
    expect(failing.replication.last_ok_at).toBe(good.replication.last_ok_at);
    expect(failing.replication.last_error.message).toContain("cannot reach the S3 endpoint");
    expect(failing.replication.behind_records).toBeGreaterThanOrEqual(200);
    expect(failing.replication.lag_secs).toBeGreaterThan(0);
    await waitFor(() => logLines(inst).some((l) => l.level === "ERROR" && String(l.msg).startsWith("replication FAILED (attempt 1")), 15_000, 50);
    // A push by hand while the server is down: the daemon's view turns to failed at once.
    const push = await inst.spl(["backup", "push"]);
    expect(push.code).toBe(1);
    const after = (await status(inst)).offsite;
    expect(after.last_push.ok).toBe(false);
    expect(after.last_push_ok_at).toBe(good.last_push_ok_at);
    const text = await inst.spl(["status"]);
    expect(text.stdout).toContain("last push FAILED");
    expect(text.stdout).toContain("Replica:  FAILING");
    const doctor = JSON.parse((await inst.spl(["doctor", "-o", "json"])).stdout).checks;
    expect(doctor.find((c: any) => c.name === "off-host replication")).toMatchObject({ status: "fail" });
    expect(doctor.find((c: any) => c.name === "last off-host push")).toMatchObject({ status: "fail" });
    const m = await (await fetch("http://localhost/metrics", { unix: inst.path("run", "spl.sock") } as RequestInit)).text();
    expect(m).toContain("spl_replication_up 0");
    expect(m).toContain("spl_offsite_push_last_success 0");
    expect(m).toMatch(/spl_replication_last_success_timestamp_seconds \d/);
    expect(m).toMatch(/spl_replication_failures [1-9]/);

    s3 = await startS3({ port, dir: s3.dir });
    await caughtUp(inst, 120_000);
    await stopOk(inst);
    const back = await restoreFresh(`s3://spl-backups/${prefix}`, [], { ...S3_ENV, AWS_ENDPOINT_URL: `http://127.0.0.1:${port}` });
    expect(back.rows).toEqual(rows(inst.path("hub.db")));
  }, 240_000);

  test("credentials from AWS_PROFILE (~/.aws files) and from container credentials; the secret is in no log line, record, status, metrics, state file, snapshot or segment", async () => {
    const secret = `spl-test-secret-${crypto.randomUUID()}`;
    // Container credentials: the endpoint ECS and EKS pod identity provide, served here.
    const creds = Bun.serve({
      port: 0,
      hostname: "127.0.0.1",
      fetch: () => Response.json({ AccessKeyId: S3_KEY, SecretAccessKey: secret, Token: `tok-${secret}`, Expiration: new Date(Date.now() + 3600_000).toISOString() }),
    });
    try {
      for (const via of ["profile", "container"] as const) {
        const env: Record<string, string> =
          via === "profile" ? { AWS_PROFILE: "spl-test" } : { AWS_CONTAINER_CREDENTIALS_FULL_URI: `http://127.0.0.1:${creds.port}/creds` };
        const inst = new Instance({ env: { ...env, AWS_EC2_METADATA_DISABLED: "true" } });
        const awsFiles = (i: Instance) => {
          if (via !== "profile") return;
          mkdirSync(join(i.home, ".aws"), { recursive: true });
          writeFileSync(join(i.home, ".aws", "credentials"), `[spl-test]\naws_access_key_id = ${S3_KEY}\naws_secret_access_key = ${secret}\n`);
          writeFileSync(join(i.home, ".aws", "config"), `[profile spl-test]\nregion = us-east-1\n`);
        };
        awsFiles(inst);
        const prefix = `creds-${via}`;
        await initWith(inst, s3Toml(s3.port, 'sync_interval = "100ms"', prefix));
        await inst.start();
        await emit(inst, 50, "th_creds");
        const st = await caughtUp(inst);
        const metrics = await (await fetch("http://localhost/metrics", { unix: inst.path("run", "spl.sock") } as RequestInit)).text();
        const statusText = (await inst.spl(["status"])).stdout + JSON.stringify(await status(inst));
        const doctor = (await inst.spl(["doctor"])).stdout;
        const list = (await inst.spl(["backup", "list", "--remote"])).stdout;
        await stopOk(inst);
        const stored = filesUnder(join(s3.dir, "spl-backups", prefix)).map((f) => readFileSync(join(s3.dir, "spl-backups", prefix, f)));
        expect(stored.length).toBeGreaterThan(2);
        const haystacks = [
          ...stored.map((b) => b.toString("latin1")),
          ...stored.map((b) => {
            try {
              return Bun.zstdDecompressSync(b).toString("latin1");
            } catch {
              return "";
            }
          }),
          readFileSync(inst.path("logs", "spl.log"), "utf8"),
          readFileSync(inst.path("hub.db")).toString("latin1"),
          readFileSync(inst.path("replication.json"), "utf8"),
          readFileSync(inst.path("offsite.json"), "utf8"),
          metrics,
          statusText,
          doctor,
          list,
          JSON.stringify(st),
        ];
        for (const h of haystacks) expect(h).not.toContain(secret);
        // The restore finds the same credentials the same way.
        const back = await restoreFresh(`s3://spl-backups/${prefix}`, ["--endpoint", `http://127.0.0.1:${s3.port}`], { ...env, AWS_EC2_METADATA_DISABLED: "true" }, awsFiles);
        expect(back.rows).toEqual(rows(inst.path("hub.db")));
      }
    } finally {
      creds.stop(true);
    }
  }, 240_000);

  test("the configured endpoint applies to every s3:// URL on that bucket; --endpoint gives one to a home without a config", async () => {
    const inst = new Instance({ env: S3_ENV });
    await initWith(inst, s3Toml(s3.port, "continuous = false", "configured"));
    await inst.start();
    await emit(inst, 30, "th_endpoint");
    await stopOk(inst);
    const p = JSON.parse((await inst.spl(["backup", "push", "-o", "json"])).stdout);
    // The same copy under another prefix of the same bucket.
    const client = new Bun.S3Client({ accessKeyId: S3_KEY, secretAccessKey: S3_SECRET, endpoint: `http://127.0.0.1:${s3.port}`, bucket: "spl-backups" });
    const key = p.url.slice("s3://spl-backups/".length);
    const other = key.replace(/^configured\//, "elsewhere/");
    for (const k of [key, `${key}.sha256`]) await client.write(k.replace(/^configured\//, "elsewhere/"), await client.file(k).arrayBuffer());
    const r = await inst.spl(["restore", `s3://spl-backups/${other}`, "--force"]);
    expect(r.code).toBe(0);
    const fresh = new Instance({ env: S3_ENV });
    const f = await fresh.spl(["restore", `s3://spl-backups/${other}`, "--endpoint", `http://127.0.0.1:${s3.port}`]);
    expect(f.code).toBe(0);
    expect(rows(fresh.path("hub.db"))).toEqual(rows(inst.path("hub.db")));
    const bad = await fresh.spl(["restore", `s3://spl-backups/${other}`, "--endpoint", "ftp://x"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toStartWith("error: --endpoint ftp://x is not an http(s) URL");
  }, 120_000);
});

// `spl backup push` (and the daemon's schedule, which runs it as a child process so a push never
// stalls ingest): a verified snapshot (the `spl backup` pipeline), compressed with zstd, its
// SHA-256 beside it, uploaded as <instance-key>/hub.db.<UTC stamp>.bak.zst (+ .sha256), then
// retention. The result of the last attempt is kept in <home>/offsite.json for doctor and status.
import { createHash } from "node:crypto";
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, sectionOf } from "../../config";
import { isAlive } from "../../daemonctl/proc";
import { UserError } from "../../errors";
import { homePaths, type HomePaths } from "../../paths";
import { writeFileAtomic } from "../fsutil";
import { backupLocation, homeKey } from "../instance-key";
import { manualBackup, timestamp } from "../manual";
import { OFFSITE_EXAMPLE, offsiteSection, type OffsiteConfig } from "./config";
import { remoteFor, type Remote } from "./remote";
import { quietPhases, type Phases } from "../../progress/phase";

export const COPY = /^hub\.db\.(\d{8}-\d{6})(-\d+)?\.bak\.zst$/;
export const SUM = ".sha256";

export interface PushResult {
  object: "offsite_push";
  url: string;
  records: number;
  threads: number;
  bytes: number;
  compressed_bytes: number;
  sha256: string;
  written_at: string;
  deleted: string[];
  ms: { snapshot: number; compress: number; upload: number };
}

export interface LastPush {
  at: string;
  ok: boolean;
  url?: string;
  records?: number;
  error?: string;
  /** When a push last succeeded (this one's `at` when ok; carried over a failure). */
  last_ok_at?: string;
}

/** The last success a push that failed at `at` carries over from the one before it. */
export const lastOkAt = (prev: LastPush | null): string | undefined => (prev?.ok ? prev.at : prev?.last_ok_at);

export const statusFile = (paths: HomePaths) => join(paths.home, "offsite.json");

export function readLastPush(paths: HomePaths): LastPush | null {
  try {
    return JSON.parse(readFileSync(statusFile(paths), "utf8"));
  } catch {
    return null;
  }
}

function writeLastPush(paths: HomePaths, last: LastPush) {
  try {
    writeFileAtomic(statusFile(paths), JSON.stringify(last) + "\n");
  } catch {}
}

export function offsiteConfig(paths = homePaths()): OffsiteConfig {
  const c = sectionOf(loadConfig(paths.config), offsiteSection);
  if (!c) throw new UserError(`off-host backups are not configured in ${paths.config}`, `add ${OFFSITE_EXAMPLE}`);
  return c;
}

/** "20261127-120000" → ms since the epoch (UTC). */
export function stampTime(stamp: string): number {
  const [d, t] = stamp.split("-") as [string, string];
  return Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +t.slice(0, 2), +t.slice(2, 4), +t.slice(4, 6));
}

export const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** The sidecar's text, in `sha256sum` format so `sha256sum -c` checks a downloaded copy too. */
export const sumText = (hex: string, name: string) => `${hex}  ${name}\n`;

const PUSH_WAIT_MS = 30 * 60_000;

/**
 * One push at a time per home (the daemon's schedule and `spl backup push` may meet): an O_EXCL
 * file naming our pid; a holder that died leaves a file that is simply taken over.
 */
async function pushLock(paths: HomePaths): Promise<() => void> {
  mkdirSync(paths.runDir, { recursive: true, mode: 0o700 });
  const file = join(paths.runDir, "offsite-push.lock");
  const deadline = Date.now() + PUSH_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => rmSync(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    let holder = 0;
    try {
      holder = Number(readFileSync(file, "utf8"));
    } catch {}
    if (!holder || !isAlive(holder)) rmSync(file, { force: true });
    else if (Date.now() > deadline) throw new UserError(`another off-host push (pid ${holder}) is still running`, "wait for it, then try again");
    else await Bun.sleep(200);
  }
}

/** Working directories of pushes that were killed (named by pid), so they do not pile up. */
function removeStaleWorkDirs(home: string) {
  for (const name of readdirSync(home)) {
    const m = /^\.offsite-(\d+)-/.exec(name);
    if (m && Number(m[1]) !== process.pid && !isAlive(Number(m[1]))) rmSync(join(home, name), { recursive: true, force: true });
  }
}

/** `phases`: on a terminal, a live line and a finished line per step (snapshot, compress, upload). */
export async function pushOffsite(opts: { now?: Date; phases?: Phases } = {}): Promise<PushResult> {
  const paths = homePaths();
  const cfg = offsiteConfig(paths);
  const release = await pushLock(paths);
  const at = new Date();
  try {
    const r = await push(paths, cfg, opts.now ?? at, opts.phases ?? quietPhases);
    writeLastPush(paths, { at: at.toISOString(), ok: true, url: r.url, records: r.records, last_ok_at: at.toISOString() });
    return r;
  } catch (err) {
    const msg = err instanceof UserError ? err.oneLine : (err as Error).message;
    writeLastPush(paths, { at: at.toISOString(), ok: false, error: msg, last_ok_at: lastOkAt(readLastPush(paths)) });
    throw err;
  } finally {
    release();
  }
}

async function push(paths: HomePaths, cfg: OffsiteConfig, now: Date, phases: Phases): Promise<PushResult> {
  const remote = remoteFor(cfg.url, paths, cfg);
  removeStaleWorkDirs(paths.home);
  const tmpDir = mkdtempSync(join(paths.home, `.offsite-${process.pid}-`));
  try {
    let t = performance.now();
    const lap = () => {
      const d = Math.round(performance.now() - t);
      t = performance.now();
      return d;
    };
    const snap = await manualBackup({ out: join(tmpDir, "hub.db.bak"), phases });
    const ms = { snapshot: lap(), compress: 0, upload: 0 };
    // One call each (Bun's zstd and the upload take whole buffers): a finished line with the rate.
    const compressing = phases.start("compress", snap.bytes, "bytes");
    const data = Bun.zstdCompressSync(readFileSync(snap.path), { level: 3 });
    compressing.end(snap.bytes);
    rmSync(snap.path, { force: true });
    const hex = sha256(data);
    ms.compress = lap();

    const folder = keyFolder(snap.instance_did, paths);
    // A second push within the same second gets hub.db.<stamp>-2.bak.zst, never the same name.
    const taken = new Set((await remote.list(`${folder}/`)).map((o) => o.key));
    let name = `hub.db.${timestamp(now)}.bak.zst`;
    for (let i = 2; taken.has(`${folder}/${name}`); i++) name = `hub.db.${timestamp(now)}-${i}.bak.zst`;
    const key = `${folder}/${name}`;
    const uploading = phases.start("upload", data.length, "bytes");
    // The data first, the checksum after it: a copy counts only once both exist.
    await remote.put(key, data);
    await remote.put(key + SUM, new TextEncoder().encode(sumText(hex, name)));
    uploading.end(data.length);
    ms.upload = lap();
    const deleted = await applyRetention(remote, folder, cfg.keepDays, now.getTime());
    return {
      object: "offsite_push",
      url: remote.urlOf(key),
      records: snap.records,
      threads: snap.threads,
      bytes: snap.bytes,
      compressed_bytes: data.length,
      sha256: hex,
      written_at: now.toISOString(),
      deleted,
      ms,
    };
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}

/** The remote folder of this home's copies: its backup key (instance-…), else home-…. */
function keyFolder(did: string | null, paths: HomePaths): string {
  return backupLocation({ instanceDid: did, home: paths.home }).key ?? homeKey(paths.home);
}

export interface RemoteCopy {
  url: string;
  key: string;
  folder: string;
  name: string;
  written_at: string;
  time_ms: number;
  bytes: number;
  /** false when the .sha256 beside it is missing (an interrupted push): restore refuses it. */
  checksum: boolean;
}

/** Copies under the remote, newest first (`folder` limits it to one instance's folder). */
export async function listCopies(remote: Remote, folder = ""): Promise<RemoteCopy[]> {
  const objects = await remote.list(folder ? `${folder}/` : "");
  const keys = new Set(objects.map((o) => o.key));
  const copies: RemoteCopy[] = [];
  for (const o of objects) {
    const name = o.key.slice(o.key.lastIndexOf("/") + 1);
    const m = COPY.exec(name);
    if (!m) continue;
    const time = stampTime(m[1]!) + Number(m[2]?.slice(1) ?? 1) - 1; // -2, -3: later within that second
    copies.push({
      url: remote.urlOf(o.key),
      key: o.key,
      folder: o.key.slice(0, Math.max(0, o.key.lastIndexOf("/"))),
      name,
      written_at: new Date(time).toISOString(),
      time_ms: time,
      bytes: o.bytes,
      checksum: keys.has(o.key + SUM),
    });
  }
  return copies.sort((a, b) => b.time_ms - a.time_ms);
}

/**
 * Deletes this folder's copies older than keepDays, never the newest complete copy (the one
 * just pushed), so a clock jump or keep_days = 0 cannot leave the folder empty.
 */
export async function applyRetention(remote: Remote, folder: string, keepDays: number, nowMs: number): Promise<string[]> {
  const copies = await listCopies(remote, folder);
  const newest = copies.find((c) => c.checksum);
  const deleted: string[] = [];
  for (const c of copies) {
    if (c === newest || nowMs - c.time_ms <= keepDays * 86400_000) continue;
    await remote.delete(c.key + SUM);
    await remote.delete(c.key);
    deleted.push(c.url);
  }
  return deleted;
}

/** What `spl backup list --remote` shows: every copy under the configured URL. */
export async function listRemote(): Promise<{ url: string; copies: RemoteCopy[] }> {
  const paths = homePaths();
  const cfg = offsiteConfig(paths);
  return { url: cfg.url, copies: await listCopies(remoteFor(cfg.url, paths, cfg)) };
}

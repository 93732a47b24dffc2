// `spl backup push` (and the daemon's snapshot schedule, which runs it as a child process so a
// push never stalls ingest): a verified snapshot (the `spl backup` pipeline), streamed through
// zstd straight to the remote as <instance-key>/hub.db.<UTC stamp>.bak.zst with its .sha256 beside
// it (declaring size, records, last sequence and, with continuous replication, the generation it
// belongs to), then retention. Memory stays the same whatever the store's size: the snapshot is a
// file, read, compressed, hashed and uploaded chunk by chunk. The result of the last attempt (and
// the last success) is kept in <home>/offsite.json for status, doctor and metrics.
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, sectionOf } from "../../config";
import { isAlive } from "../../daemonctl/proc";
import { lockStoreFile, unlockStoreFile } from "../../daemonctl/store-file-lock";
import { UserError } from "../../errors";
import { homePaths, type HomePaths } from "../../paths";
import { quietPhases, type Phases } from "../../progress/phase";
import { StoreReader } from "../../store/reader";
import { writeFileAtomic } from "../fsutil";
import { remoteFolder } from "../instance-key";
import { manualBackup, timestamp } from "../manual";
import { OFFSITE_EXAMPLE, offsiteSection, type OffsiteConfig } from "./config";
import { readFolders, type RemoteCopy } from "./listing";
import { remoteFor } from "./aws-chain";
import { continuesGeneration, readReplicaState } from "./replica-state";
import { applyRetention } from "./retention";
import { fileChunks, sumText, SUM, Tally, zstdCompress, type ObjectMeta } from "./transfer";

export { SUM };

export interface PushResult {
  object: "offsite_push";
  url: string;
  records: number;
  threads: number;
  bytes: number;
  compressed_bytes: number;
  sha256: string;
  last_seq: number;
  generation: string | null;
  written_at: string;
  deleted: string[];
  ms: { snapshot: number; upload: number };
}

export interface LastPush {
  at: string;
  ok: boolean;
  url?: string;
  records?: number;
  error?: string;
  /** The last push that succeeded (this one, or an earlier one when this one failed). */
  last_ok_at?: string | null;
  last_ok_url?: string | null;
}

export const statusFile = (paths: HomePaths) => join(paths.home, "offsite.json");

export function readLastPush(paths: HomePaths): LastPush | null {
  try {
    const last = JSON.parse(readFileSync(statusFile(paths), "utf8")) as LastPush;
    if (last.ok && last.last_ok_at === undefined) (last.last_ok_at = last.at), (last.last_ok_url = last.url ?? null); // from an older spl
    return last;
  } catch {
    return null;
  }
}

/** Records the outcome of a push, keeping the time of the last success across failures. */
export function writeLastPush(paths: HomePaths, last: LastPush): void {
  const prev = readLastPush(paths);
  const full: LastPush = last.ok
    ? { ...last, last_ok_at: last.at, last_ok_url: last.url ?? null }
    : { ...last, last_ok_at: prev?.last_ok_at ?? null, last_ok_url: prev?.last_ok_url ?? null };
  try {
    writeFileAtomic(statusFile(paths), JSON.stringify(full) + "\n");
  } catch {}
}

export function offsiteConfig(paths = homePaths()): OffsiteConfig {
  const c = sectionOf(loadConfig(paths.config), offsiteSection);
  if (!c) throw new UserError(`off-host backups are not configured in ${paths.config}`, `add ${OFFSITE_EXAMPLE}`);
  return c;
}

const PUSH_WAIT_MS = 30 * 60_000;

/**
 * One push at a time per home (the daemon's schedule and `spl backup push` may meet): flock(2) on
 * run/offsite-push.lock, which the kernel drops when its holder dies (the file stays, naming the
 * last holder's pid). Where flock cannot be called, an O_EXCL file naming our pid, taken over
 * when its holder died.
 */
async function pushLock(paths: HomePaths): Promise<() => void> {
  mkdirSync(paths.runDir, { recursive: true, mode: 0o700 });
  const file = join(paths.runDir, "offsite-push.lock");
  const deadline = Date.now() + PUSH_WAIT_MS;
  for (;;) {
    writeFileSync(file, "", { flag: "a", mode: 0o600 });
    const held = lockStoreFile(file);
    if (held === null) break;
    if (held !== "busy") {
      writeFileSync(file, String(process.pid));
      return () => unlockStoreFile(held);
    }
    if (Date.now() > deadline) throw new UserError(`another off-host push (pid ${readFileSync(file, "utf8").trim() || "unknown"}) is still running`, "wait for it, then try again");
    await Bun.sleep(200);
  }
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

export async function pushOffsite(opts: { now?: Date; phases?: Phases } = {}): Promise<PushResult> {
  const paths = homePaths();
  const cfg = offsiteConfig(paths);
  const release = await pushLock(paths);
  const at = new Date();
  try {
    const r = await push(paths, cfg, opts.now ?? at, opts.phases ?? quietPhases);
    writeLastPush(paths, { at: at.toISOString(), ok: true, url: r.url, records: r.records });
    return r;
  } catch (err) {
    const msg = err instanceof UserError ? err.oneLine : (err as Error).message;
    writeLastPush(paths, { at: at.toISOString(), ok: false, error: msg });
    throw err;
  } finally {
    release();
  }
}

/** What a snapshot file holds beyond its facts: its last record, and the generation it continues. */
function snapshotMeta(file: string, paths: HomePaths, cfg: OffsiteConfig, folder: string): Omit<ObjectMeta, "bytes"> {
  const reader = StoreReader.open(file, "immutable");
  try {
    const last = reader.db.query("SELECT seq, id, created_at FROM records ORDER BY seq DESC LIMIT 1").get() as { seq: number; id: string; created_at: number } | null;
    const st = readReplicaState(paths);
    const generation = st && st.url === cfg.url && st.folder === folder && continuesGeneration(reader.db, st) ? st.generation : undefined;
    return { records: reader.recordCount(), last_seq: last?.seq ?? 0, last_id: last?.id ?? null, last_at: last?.created_at, ...(generation ? { generation } : {}) };
  } finally {
    reader.close();
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
    const ms = { snapshot: lap(), upload: 0 };
    const folder = remoteFolder(snap.instance_did, paths.home);
    const meta: ObjectMeta = { bytes: statSync(snap.path).size, ...snapshotMeta(snap.path, paths, cfg, folder) };

    // A second push within the same second gets hub.db.<stamp>-2.bak.zst, never the same name.
    const taken = new Set((await remote.list(`${folder}/`)).map((o) => o.key));
    let name = `hub.db.${timestamp(now)}.bak.zst`;
    for (let i = 2; taken.has(`${folder}/${name}`); i++) name = `hub.db.${timestamp(now)}-${i}.bak.zst`;
    const key = `${folder}/${name}`;
    // Read, compress, hash and upload in one pass; the data first, the checksum after it: a
    // copy counts only once both exist.
    const read = new Tally();
    const sent = new Tally();
    const bar = phases.start("compress and upload", meta.bytes, "bytes");
    await remote.putStream(key, sent.tap(zstdCompress(read.tap(fileChunks(snap.path), bar.update))));
    bar.end(read.bytes);
    if (read.bytes !== meta.bytes) throw new UserError(`the snapshot changed while it was uploaded (${read.bytes} of ${meta.bytes} bytes read)`, "try again");
    await remote.put(key + SUM, new TextEncoder().encode(sumText(sent.digest(), name, meta)));
    ms.upload = lap();
    const deleted = await applyRetention(remote, folder, cfg.keepDays, now.getTime());
    return {
      object: "offsite_push",
      url: remote.urlOf(key),
      records: snap.records,
      threads: snap.threads,
      bytes: meta.bytes,
      compressed_bytes: sent.bytes,
      sha256: sent.digest(),
      last_seq: meta.last_seq ?? 0,
      generation: meta.generation ?? null,
      written_at: now.toISOString(),
      deleted,
      ms,
    };
  } finally {
    rmSync(tmpDir, { recursive: true, force: true });
  }
}


/** What `spl backup list --remote` shows: every copy and segment under the configured URL. */
export async function listRemote() {
  const paths = homePaths();
  const cfg = offsiteConfig(paths);
  const remote = remoteFor(cfg.url, paths, cfg);
  return { url: cfg.url, remote, folders: await readFolders(remote) };
}

export type { RemoteCopy };

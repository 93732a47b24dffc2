// The rows of `spl doctor`. Each check reads; none starts a daemon or writes a file.
import { existsSync, lstatSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { bestBackup, newestBackup } from "../backup/catalog";
import { currentDirs } from "../backup/list";
import { quietMode } from "../backup/snapshot";
import { formatDuration } from "../cli/output";
import { readPid } from "../daemonctl/pidfile";
import { cmdline, isAlive, isSplServe } from "../daemonctl/proc";
import { socketAnswers } from "../daemonctl/socket";
import { lockFileFor, readLockHolder } from "../daemonctl/store-lock";
import { readInstanceDid } from "../instance";
import { unknownConfigKeys } from "../config";
import { CAPABILITIES, CONFIG_SECTIONS } from "../capabilities";
import { checkStoreFiles, quickCheck, StoreDamagedError } from "../store/integrity";
import { StoreReader } from "../store/reader";
import { SCHEMA_VERSION } from "../store/schema";
import { type Check, type CheckResult, type DoctorContext, fail, pass, warn } from "./types";
import { permissionEnforcement } from "./engine";

/** A startup backup older than this gets a warning: schedule `spl backup` (and copy it off-host). */
export const BACKUP_MAX_AGE_SECS = 48 * 3600;

const mode = (m: number) => "0" + (m & 0o777).toString(8);
const ago = (ms: number) => formatDuration(Math.max(0, Math.floor((Date.now() - ms) / 1000)));

// ---- store facts, read once per run -------------------------------------------------------

interface StoreProbe {
  exists: boolean;
  damaged: StoreDamagedError | null;
  /** quick_check ran (only when no daemon owns the store). */
  checked: boolean;
  records: number | null;
  threads: number | null;
  schemaVersion: number | null;
  instanceDid: string | null;
  error: string | null;
}

const probes = new WeakMap<DoctorContext, StoreProbe>();

export function probeStore(ctx: DoctorContext): StoreProbe {
  const cached = probes.get(ctx);
  if (cached) return cached;
  const store = ctx.paths.store;
  const probe: StoreProbe = { exists: existsSync(store), damaged: null, checked: false, records: null, threads: null, schemaVersion: null, instanceDid: null, error: null };
  probes.set(ctx, probe);
  if (!probe.exists) return probe;
  const live = ctx.daemonIsOurs && ctx.health?.status === 200;
  try {
    if (!live) checkStoreFiles(store);
    const reader = StoreReader.open(store, live ? "shared" : quietMode(store));
    try {
      if (!live) {
        quickCheck(reader.db, store);
        probe.checked = true;
      }
      probe.schemaVersion = reader.schemaVersion();
      if (reader.hasRecords()) {
        probe.records = reader.recordCount();
        probe.threads = reader.threadCount();
        probe.instanceDid = readInstanceDid(reader);
      }
    } finally {
      reader.close();
    }
  } catch (err) {
    if (err instanceof StoreDamagedError) probe.damaged = err;
    else if (/malformed|not a database|disk image/i.test((err as Error).message)) {
      probe.damaged = new StoreDamagedError(store, "SQLite cannot read it", (err as Error).message);
    } else probe.error = (err as Error).message;
  }
  return probe;
}

// ---- checks ---------------------------------------------------------------------------------

export const daemonReachable: Check = (ctx) => {
  const name = "daemon reachable";
  const h = ctx.health;
  if (!h) return fail(name, `nothing answers on ${ctx.target.describe} — start it with 'spl serve --daemon' (log: ${ctx.paths.log})`);
  if (h.status === 503) return warn(name, `pid ${h.body?.pid ?? "?"} is starting (rebuilding state from the store) — check again in a moment`);
  if (h.status !== 200) return fail(name, `${ctx.target.describe} answered HTTP ${h.status} to GET /health`);
  const b = h.body;
  const detail = `spl ${b.version} on ${b.store} (pid ${b.pid}, up ${formatDuration(b.uptime_secs ?? 0)})`;
  if (!ctx.daemonIsOurs) return warn(name, `${detail} serves home ${b.home}, not ${ctx.paths.home} (SPL_SERVE_URL points at another instance?)`);
  if (ctx.reachedByPort) return pass(name, `${detail}, reached on ${ctx.target.describe} (its socket does not answer)`);
  return pass(name, detail);
};

export const pidFile: Check = (ctx) => {
  const name = "pid file";
  const path = ctx.paths.pidFile;
  const answering: number | null = ctx.daemonIsOurs && ctx.health?.body?.pid ? Number(ctx.health.body.pid) : null;
  const pid = readPid(path);
  if (pid === null) {
    if (existsSync(path)) return warn(name, `${path} does not hold a pid — 'spl serve' replaces it at start, or remove it: rm -f ${path}`);
    if (answering) {
      const via = ctx.reachedByPort ? "its port" : "the socket";
      return warn(name, `missing, but spl serve (pid ${answering}) answers — 'spl serve --stop' still finds it via ${via}; 'spl restart' rewrites the file`);
    }
    return pass(name, "none (daemon not running)");
  }
  if (!isAlive(pid)) {
    const also = answering ? `; the daemon answering is pid ${answering}` : "";
    return warn(name, `pid ${pid} does not exist (stale pid file${also}) — 'spl serve' replaces it at start, or remove it: rm -f ${path}`);
  }
  if (!isSplServe(pid)) {
    return warn(name, `pid ${pid} exists but its command line is not 'spl serve' (${(cmdline(pid) ?? "?").slice(0, 60)}): stale pid file? — rm -f ${path}`);
  }
  if (answering && answering !== pid) {
    return fail(name, `${path} names pid ${pid} (a live spl serve), but the daemon answering here is pid ${answering}: two daemons? 'spl serve --stop' would stop pid ${pid}`);
  }
  return pass(name, `${path} → live spl serve (pid ${pid})`);
};

export const socketFile: Check = async (ctx) => {
  const name = "socket";
  const path = ctx.paths.socket;
  let st;
  try {
    st = lstatSync(path);
  } catch {
    if (ctx.daemonIsOurs && ctx.health) return warn(name, `${path} is missing while the daemon runs: local CLI commands cannot reach it — 'spl restart'`);
    return pass(name, "none (daemon not running)");
  }
  if (!st.isSocket()) return fail(name, `${path} exists and is not a socket — move it aside, then start spl again`);
  const viaSocket = ctx.target.socket === path && ctx.health !== null;
  if (!viaSocket && !(await socketAnswers(path))) {
    return warn(name, `${path}: nothing answers (stale socket file) — 'spl serve' removes it at start`);
  }
  if (st.mode & 0o077) return warn(name, `${path} has mode ${mode(st.mode)}: recommended 0600 — restart spl to recreate it`);
  return pass(name, `${path} (${mode(st.mode)})`);
};

export const storeIntegrity: Check = (ctx) => {
  const name = "store integrity";
  const p = probeStore(ctx);
  if (!p.exists) return warn(name, `no store at ${ctx.paths.store} (fresh install? 'spl init' or 'spl serve --daemon' creates it)`);
  if (p.damaged) return fail(name, p.damaged.oneLine);
  if (p.error) return fail(name, `cannot read ${ctx.paths.store}: ${p.error}`);
  if (!p.checked) return pass(name, `checked by the running daemon at startup; 'spl backup' takes a verified snapshot`);
  return pass(name, `quick_check ok (${ctx.paths.store}, ${Math.round(statSync(ctx.paths.store).size / 1024)} KiB)`);
};

export const storeRecords: Check = (ctx) => {
  const name = "store has records";
  const h = ctx.daemonIsOurs && ctx.health?.status === 200 ? ctx.health.body : null;
  const p = h ? null : probeStore(ctx);
  const records = h ? h.records : p?.records;
  const threads = h ? h.threads : p?.threads;
  if (records === null || records === undefined) return null; // no readable store: the integrity row says why
  if (records === 0) return warn(name, "store is empty (fresh install?)");
  return pass(name, `${records} records across ${threads} threads`);
};

export const schemaVersion: Check = (ctx) => {
  const name = "schema version";
  const p = probeStore(ctx);
  if (p.schemaVersion === null) return null;
  const v = p.schemaVersion;
  if (v > SCHEMA_VERSION) {
    return fail(name, `store at version ${v}, this spl understands up to ${SCHEMA_VERSION}: install the newer spl that wrote it, or restore the snapshot taken before the upgrade`);
  }
  if (v < SCHEMA_VERSION) return warn(name, `store at version ${v}, this spl expects ${SCHEMA_VERSION}: restart spl serve to upgrade it (additive; nothing is rewritten)`);
  return pass(name, `version ${v} (current)`);
};

export const latestBackup: Check = (ctx) => {
  const name = "backup";
  const p = probeStore(ctx);
  const outcome: string | undefined = ctx.daemonIsOurs ? ctx.status?.backup?.outcome : undefined;
  if (outcome?.startsWith("FAILED")) return fail(name, `the daemon's startup backup ${outcome} — fix the cause, then 'spl backup' (or restart spl)`);
  if (outcome?.startsWith("in progress")) return pass(name, `the daemon is writing its startup backup to ${ctx.status.backup.path} (${outcome}); 'spl status' shows when it is done`);
  const did = (ctx.daemonIsOurs ? ctx.health?.body?.instance_did : null) ?? p.instanceDid;
  const dirs = currentDirs(ctx.paths.home, did ?? null);
  const latest = newestBackup(ctx.paths.home, dirs);
  if (!latest) {
    // The running daemon created this store at its start (its startup backup is null): the first
    // startup backup is written at its next start, so none yet is expected, not a problem.
    if (ctx.daemonIsOurs && ctx.status && ctx.status.backup === null) {
      return pass(name, "no backup yet, as expected: this store was created at the daemon's last start and the first startup backup is written at the next one — 'spl backup' takes one now; copy it off this machine");
    }
    return warn(name, "no backup yet — the daemon writes one at every start of an existing store; take one now with 'spl backup', then copy it off this machine");
  }
  const current: number | null = ctx.daemonIsOurs && ctx.health?.status === 200 ? ctx.health.body.records : p.records;
  const best = bestBackup(ctx.paths.home, dirs);
  if (best && current !== null && best.records! > current) {
    return warn(name, `the store holds ${current} records but ${best.path} holds ${best.records}: the store shrank — stop spl and 'spl restore ${best.path}'`);
  }
  const age = ago(latest.mtime_ms);
  const what = `${latest.path} (${age} ago, ${latest.records ?? "?"} records)`;
  if (Date.now() - latest.mtime_ms > BACKUP_MAX_AGE_SECS * 1000) {
    return warn(name, `latest is ${what} — take a fresh one with 'spl backup' and copy it off this machine`);
  }
  // Where copies off this machine are (or that there are none) is the off-host row's to say.
  return pass(name, what);
};

function fileModeRow(name: string, path: string, want: number, missing: string): CheckResult {
  let st;
  try {
    st = statSync(path);
  } catch {
    return pass(name, missing);
  }
  if (st.mode & 0o077) {
    return warn(name, `${path} has mode ${mode(st.mode)}: recommended ${mode(want)}. Run chmod ${(want & 0o777).toString(8)} ${path}.`);
  }
  return pass(name, `${path} ${mode(st.mode)}`);
}

export const fileModes: Check = (ctx) => {
  const rows = [
    fileModeRow("config file mode", ctx.paths.config, 0o600, `none (${ctx.paths.config} not created yet)`),
    fileModeRow("token file mode", ctx.paths.token, 0o600, "none (no token file)"),
    fileModeRow("secrets dir mode", ctx.paths.secretsDir, 0o700, "none (no secrets dir)"),
  ];
  if (existsSync(ctx.paths.secretsDir)) {
    const loose: string[] = [];
    try {
      for (const f of readdirSync(ctx.paths.secretsDir)) {
        const st = statSync(join(ctx.paths.secretsDir, f));
        if (st.isFile() && st.mode & 0o077) loose.push(`${f} (${mode(st.mode)})`);
      }
    } catch {}
    if (loose.length) {
      rows.push(warn("secret file modes", `readable by others in ${ctx.paths.secretsDir}: ${loose.join(", ")}. Run chmod 600 ${ctx.paths.secretsDir}/*.`));
    }
  }
  return rows;
};

/** The running daemon must hold spl.lock: without it a second daemon could open the same store. */
export const storeLock: Check = (ctx) => {
  const name = "store lock";
  const pid = ctx.daemonIsOurs && ctx.health?.status === 200 ? Number(ctx.health.body.pid) : null;
  if (pid === null) return null;
  const file = lockFileFor(ctx.paths.store);
  const holder = readLockHolder(ctx.paths.store);
  if (!existsSync(file) || holder?.pid !== pid) {
    return fail(name, `${file} ${existsSync(file) ? `names ${holder ? `pid ${holder.pid}` : "no holder"}` : "is missing"} while spl serve (pid ${pid}) runs: spl names the store's holder from it (a second daemon is still kept out by the lock on hub.db itself) — 'spl serve --restart' takes the lock again`);
  }
  return pass(name, `${file} held by spl serve (pid ${pid})`);
};

const kib = (n: number) => `${Math.round(n / 1024)} KiB`;

/** The running daemon's storage status: the last write error, and a WAL that is not checkpointed. */
export const storageHealth: Check = (ctx) => {
  const name = "storage";
  const st = ctx.daemonIsOurs ? ctx.status?.storage : null;
  if (!st) return null; // not running (the store rows cover it), or a daemon that does not report it
  if (st.last_error) {
    return fail(
      name,
      `last write error at ${st.last_error.at} (${st.last_error.during}): ${st.last_error.message} — free disk space and check that ${ctx.paths.store} and its directory are writable; acknowledged records are safe`,
    );
  }
  if (st.log && !st.log.ok) {
    return fail(name, `the log cannot be written since ${st.log.since}: ${st.log.last_error?.message} (${st.log.dropped_lines} lines dropped) — free disk space under ${ctx.paths.home}; the daemon retries on its own`);
  }
  const since = st.last_checkpoint_at ? `since ${st.last_checkpoint_at}` : "since start";
  if (st.checkpoint_ok === false && ctx.status?.backup?.outcome?.startsWith("in progress")) {
    // Its pinned snapshot holds checkpoints off on purpose; they resume when it is written.
    return pass(name, `WAL ${kib(st.wal_bytes)}: checkpoints wait for the startup backup being written (it reads a snapshot of the store as found)`);
  }
  if (st.checkpoint_ok === false) {
    return warn(
      name,
      `WAL ${kib(st.wal_bytes)} is not being checkpointed ${since}: a long-lived reader (a running 'spl backup'?) holds an old snapshot, or ${ctx.paths.store} cannot be written`,
    );
  }
  return pass(name, `WAL ${kib(st.wal_bytes)}, ${st.last_checkpoint_at ? `last checkpoint ${ago(Date.parse(st.last_checkpoint_at))} ago` : "no checkpoint needed yet"}`);
};

export const configFile: Check = (ctx) => {
  if (ctx.configError) return fail("config", ctx.configError);
  const unknown = unknownConfigKeys(ctx.paths.config, CONFIG_SECTIONS);
  return unknown.length ? warn("config", unknown.join("; ")) : null;
};

/**
 * The rows, in order, each under a literal name: the name labels a check that throws (a
 * function's own name does not survive minification). The daemon's own rows come first, then
 * each capability's (its `doctor` list), in the order of lib/capabilities.ts.
 */
export const CHECKS: Record<string, Check> = {
  "daemon reachable": daemonReachable,
  "pid file": pidFile,
  socket: socketFile,
  config: configFile,
  "store integrity": storeIntegrity,
  storage: storageHealth,
  "store lock": storeLock,
  "store has records": storeRecords,
  "schema version": schemaVersion,
  backup: latestBackup,
  "file modes": fileModes,
  "permission enforcement": permissionEnforcement,
  ...Object.fromEntries(CAPABILITIES.flatMap((c) => (c.doctor ?? []).map((check, i) => [i ? `${c.name} (${i + 1})` : c.name, check]))),
};

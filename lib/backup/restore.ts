// `spl restore <FILE> [--force]`: the runbook's manual recovery procedure, made safe.
//   refuse while a daemon runs → verify FILE is an intact spl store (quick_check, schema) →
//   take the store lock (a daemon starting meanwhile waits or refuses) → refuse, unless forced,
//   when the current store holds records FILE lacks or cannot be read to tell →
//   copy FILE to a temporary beside hub.db, fsync, re-count → move hub.db-wal, hub.db-shm, hub.db
//   aside as <name>.replaced.<unix> (never deleted) → rename the copy to hub.db → fsync the dir.
// The sidecars move first: a stale -wal left beside a restored hub.db would be replayed into it.
import { quietPhases, type Phases } from "../progress/phase";
import { chmodSync, existsSync, mkdirSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { findDaemon } from "../daemonctl/control";
import { acquireStoreLock } from "../daemonctl/store-lock";
import { UserError } from "../errors";
import { ensureHome } from "../home";
import { ENGINE_ACTOR } from "../instance";
import { createFileLogger } from "../log";
import { homePaths } from "../paths";
import { checkStoreFiles } from "../store/integrity";
import { copyToTemp, freeName, fsyncDir, renameNoClobber } from "./fsutil";
import { inspectStoreFile, quietMode, type StoreFacts } from "./snapshot";
import { StoreReader } from "../store/reader";

export interface RestoreResult extends StoreFacts {
  restored_from: string;
  store: string;
  moved_aside: string[];
  /** What the replaced store held, when it could be read. */
  replaced: { records: number; threads: number; instance_did: string | null } | null;
  notes: string[];
}

function real(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

type Current = { facts: StoreFacts; missing: number } | { unreadable: string } | null;

/**
 * What the current store holds and how many of its client records `src` lacks (records are
 * content-addressed, so the ids say it); { unreadable } when it cannot be read as SQLite sees it
 * (main file plus WAL); null when there is no store at all.
 */
function currentStore(store: string, src: string): Current {
  const walBytes = existsSync(`${store}-wal`) ? statSync(`${store}-wal`).size : 0;
  if (!existsSync(store)) return walBytes > 0 ? { unreadable: `${store} is missing but its write-ahead log holds ${walBytes} bytes` } : null;
  if (statSync(store).size === 0 && walBytes === 0) return null;
  try {
    checkStoreFiles(store);
    const facts = inspectStoreFile(store, { quick: true, mode: quietMode(store) });
    // The engine's own records (instance genesis, operator token) are written afresh by any
    // start on an empty store; only what clients wrote is at stake. The backup's own -wal, if
    // any, is not restored, so it must not count either (attached immutable).
    const reader = StoreReader.open(store, quietMode(store));
    try {
      return { facts, missing: reader.recordsMissingFrom(src, ENGINE_ACTOR) };
    } finally {
      reader.close();
    }
  } catch (err) {
    return { unreadable: (err as Error).message.replace(/\s*\n\s*/g, "; ") };
  }
}

/** `from`: what the operator named (an off-host URL whose download `file` is), for the answer and the log. */
export async function restoreStore(file: string, opts: { force?: boolean; phases?: Phases; from?: string } = {}): Promise<RestoreResult> {
  const phases = opts.phases ?? quietPhases;
  const paths = homePaths();
  const src = resolve(file);
  const running = await findDaemon(paths);
  if (running) {
    throw new UserError(
      `spl serve is running (pid ${running.pid}); restore never replaces the store under a live daemon`,
      "stop it first with 'spl serve --stop', then run 'spl restore' again",
    );
  }
  if (real(src) === real(paths.store)) throw new UserError(`${src} is the store itself`, "restore from a backup file ('spl backup list')");

  const facts = phases.run("check backup", fileSize(src), () => inspectStoreFile(src, { quick: true }));
  const notes: string[] = [];
  if (existsSync(`${src}-wal`) && statSync(`${src}-wal`).size > 0) {
    notes.push(`${src}-wal exists and was not used: records only in that WAL are not restored`);
  }

  // From here to the rename nobody else may open the store: a daemon started meanwhile would
  // write into the file that is about to be moved aside.
  mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  const lock = acquireStoreLock(paths.store, { command: "restore" }, { fix: "stop it first with 'spl serve --stop', then run 'spl restore' again" });
  try {
    return finishRestore(src, facts, notes, { ...opts, phases });
  } finally {
    lock.release();
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function finishRestore(src: string, facts: StoreFacts, notes: string[], opts: { force?: boolean; phases: Phases; from?: string }): RestoreResult {
  const paths = homePaths();
  const current = currentStore(paths.store, src);
  const forceFix = "pass --force to restore anyway (the current files are moved aside, never deleted), or pick a larger backup ('spl backup list')";
  if (current && "unreadable" in current && !opts.force) {
    throw new UserError(
      `cannot tell whether ${paths.store} holds records that ${src} lacks: the current store cannot be read (${current.unreadable})`,
      "if it is damaged, pass --force to restore anyway (the current files are moved aside, never deleted)",
    );
  }
  if (current && "facts" in current && current.missing > 0 && !opts.force) {
    const counts = current.facts.records > facts.records ? ` but ${src} holds only ${facts.records}` : "";
    throw new UserError(
      `${paths.store} holds ${current.facts.records} records${counts}; ` +
        `restoring it would set aside ${current.missing} records that ${src} lacks`,
      forceFix,
    );
  }
  const replaced = current && "facts" in current ? current.facts : null;

  ensureHome(paths);
  const tmp = opts.phases.run("copy", facts.bytes, () => copyToTemp(src, paths.store));
  const moved: string[] = [];
  try {
    chmodSync(tmp, 0o600);
    const copy = inspectStoreFile(tmp, { quick: false });
    if (copy.records !== facts.records || statSync(tmp).size !== facts.bytes) {
      throw new UserError(`the copy of ${src} does not match it (${copy.records} vs ${facts.records} records)`, "check free disk space and try again");
    }
    const stamp = Math.floor(Date.now() / 1000);
    const undo: [string, string][] = [];
    try {
      for (const f of [`${paths.store}-wal`, `${paths.store}-shm`, paths.store]) {
        if (!existsSync(f)) continue;
        const aside = freeName(dirname(f), `${basename(f)}.replaced.${stamp}`);
        renameNoClobber(f, aside);
        moved.push(aside);
        undo.push([aside, f]);
      }
      renameSync(tmp, paths.store);
    } catch (err) {
      // Put the original files back where they were; nothing is lost either way.
      for (const [aside, f] of undo.reverse()) if (!existsSync(f)) renameSync(aside, f);
      throw err;
    }
    fsyncDir(paths.home);
  } finally {
    rmSync(tmp, { force: true });
  }

  try {
    const log = createFileLogger(paths.log, { mirrorToStderr: false });
    log.child("spl::restore").info("store restored from backup", {
      from: opts.from ?? src,
      store: paths.store,
      records: facts.records,
      threads: facts.threads,
      moved_aside: moved,
    });
    log.flush();
  } catch {}

  return {
    ...facts,
    restored_from: opts.from ?? src,
    store: paths.store,
    moved_aside: moved,
    replaced: replaced ? { records: replaced.records, threads: replaced.threads, instance_did: replaced.instance_did } : null,
    notes,
  };
}

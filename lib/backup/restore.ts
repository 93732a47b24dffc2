// `spl restore <FILE> [--force]`: the runbook's manual recovery procedure, made safe.
//   refuse while a daemon runs → verify FILE is an intact spl store (quick_check, schema) →
//   copy it to a temporary beside hub.db, fsync, re-count → move hub.db-wal, hub.db-shm, hub.db
//   aside as <name>.replaced.<unix> (never deleted) → rename the copy to hub.db → fsync the dir.
// The sidecars move first: a stale -wal left beside a restored hub.db would be replayed into it.
import { chmodSync, existsSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { findDaemon } from "../daemonctl/control";
import { UserError } from "../errors";
import { ensureHome } from "../home";
import { createFileLogger } from "../log";
import { homePaths } from "../paths";
import { checkStoreFiles } from "../store/integrity";
import { copyToTemp, freeName, fsyncDir, renameNoClobber } from "./fsutil";
import { inspectStoreFile, quietMode, type StoreFacts } from "./snapshot";

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

/** What the current store holds, or null when it is missing or damaged (nothing to protect). */
function currentFacts(store: string): StoreFacts | null {
  if (!existsSync(store) || statSync(store).size === 0) return null;
  try {
    checkStoreFiles(store);
    return inspectStoreFile(store, { quick: false, mode: quietMode(store) });
  } catch {
    return null;
  }
}

export async function restoreStore(file: string, opts: { force?: boolean } = {}): Promise<RestoreResult> {
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

  const facts = inspectStoreFile(src, { quick: true });
  const notes: string[] = [];
  if (existsSync(`${src}-wal`) && statSync(`${src}-wal`).size > 0) {
    notes.push(`${src}-wal exists and was not used: records only in that WAL are not restored`);
  }

  const current = currentFacts(paths.store);
  if (current && current.records > facts.records && !opts.force) {
    throw new UserError(
      `${paths.store} holds ${current.records} records but ${src} holds only ${facts.records}; ` +
        `restoring it would set ${current.records - facts.records} records aside`,
      "pass --force to restore anyway (the current files are moved aside, never deleted), or pick a larger backup ('spl backup list')",
    );
  }

  ensureHome(paths);
  const tmp = copyToTemp(src, paths.store);
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
      from: src,
      store: paths.store,
      records: facts.records,
      threads: facts.threads,
      moved_aside: moved,
    });
    log.flush();
  } catch {}

  return {
    ...facts,
    restored_from: src,
    store: paths.store,
    moved_aside: moved,
    replaced: current ? { records: current.records, threads: current.threads, instance_did: current.instance_did } : null,
    notes,
  };
}

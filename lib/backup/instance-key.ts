// Where an instance's backups live: <backups>/<instance-key>/hub.db.bak, keyed by
//   1. instance-<16 hex>  when the store carries an instance DID (a recreated store keeps using
//                         the folder of the DID its home had before),
//   2. home-<12 hex>      (sha256 of the home's realpath) when SYNCROPEL_HOME is set,
//   3. the flat <backups>/hub.db.bak for the default home of a store without a DID.
// Each directory carries owner.json naming the home it belongs to, so a home finds all of its
// backups again even after its store (and with it the DID) was lost or replaced.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { join, resolve } from "node:path";
import { didTail } from "../instance";
import { backupsRoot } from "../paths";
import { writeFileAtomic } from "./fsutil";

export const LATEST = "hub.db.bak";
export const MAX = "hub.db.bak.max";
export const OWNER = "owner.json";

export type KeyRule = "instance" | "home" | "default";

export interface BackupLocation {
  /** Directory name under the backups root, or null for the flat default. */
  key: string | null;
  rule: KeyRule;
  dir: string;
  /** <dir>/hub.db.bak: the path the runbook documents. */
  latest: string;
}

export function realHome(home: string): string {
  try {
    return realpathSync(home);
  } catch {
    return resolve(home);
  }
}

export function homeKey(home: string): string {
  return "home-" + createHash("sha256").update(realHome(home)).digest("hex").slice(0, 12);
}

/** The off-host folder of a home's copies: its backup key (instance-…), else home-…. */
export function remoteFolder(instanceDid: string | null, home: string): string {
  return backupLocation({ instanceDid, home }).key ?? homeKey(home);
}

export function backupLocation(opts: { instanceDid: string | null; home: string; root?: string; homeFromEnv?: boolean }): BackupLocation {
  const root = opts.root ?? backupsRoot();
  const fromEnv = opts.homeFromEnv ?? Boolean(process.env.SYNCROPEL_HOME);
  let key: string | null = null;
  let rule: KeyRule = "default";
  if (opts.instanceDid) {
    key = `instance-${didTail(opts.instanceDid)}`;
    rule = "instance";
    // A recreated store has a new DID: its snapshots join the folder this home already has
    // (they rotate in, .max keeps the good copy), so a host keeps one folder per home and the
    // runbook's `backups/*/hub.db.bak` names one file.
    if (!existsSync(join(root, key))) key = ownedInstanceKey(opts.home, root) ?? key;
  } else if (fromEnv) {
    key = homeKey(opts.home);
    rule = "home";
  }
  const dir = key ? join(root, key) : root;
  return { key, rule, dir, latest: join(dir, LATEST) };
}

export interface Owner {
  object: "backup_owner";
  home: string;
  store: string;
  instance_did: string | null;
  key: string | null;
  updated_at: string;
}

export function ensureBackupDir(loc: BackupLocation): void {
  mkdirSync(loc.dir, { recursive: true, mode: 0o700 });
}

/** Records which home a backup directory belongs to (rewritten atomically on every backup). */
export function writeOwner(loc: BackupLocation, home: string, store: string, instanceDid: string | null): void {
  const owner: Owner = {
    object: "backup_owner",
    home: realHome(home),
    store,
    instance_did: instanceDid,
    key: loc.key,
    updated_at: new Date().toISOString(),
  };
  writeFileAtomic(join(loc.dir, OWNER), JSON.stringify(owner, null, 2) + "\n");
}

export function readOwner(dir: string): Owner | null {
  try {
    const o = JSON.parse(readFileSync(join(dir, OWNER), "utf8"));
    return o && typeof o.home === "string" ? o : null;
  } catch {
    return null;
  }
}

/** The instance-* folder `home` last wrote to, if it has one. */
function ownedInstanceKey(home: string, root: string): string | null {
  const me = realHome(home);
  let best: { name: string; at: string } | null = null;
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {}
  for (const name of names) {
    if (!name.startsWith("instance-")) continue;
    const owner = readOwner(join(root, name));
    if (owner?.home === me && (!best || owner.updated_at > best.at)) best = { name, at: owner.updated_at };
  }
  return best?.name ?? null;
}

/**
 * Every backup directory that belongs to `home`: those whose owner.json names it, plus the
 * directories its current store would use. The flat root counts only when it names the home.
 */
export function homeBackupDirs(home: string, extra: string[] = [], root = backupsRoot()): string[] {
  const me = realHome(home);
  const dirs = new Set<string>(extra.filter((d) => existsSync(d)));
  if (readOwner(root)?.home === me) dirs.add(root);
  let names: string[] = [];
  try {
    names = readdirSync(root);
  } catch {}
  for (const name of names) {
    if (!name.startsWith("instance-") && !name.startsWith("home-")) continue;
    const dir = join(root, name);
    if (readOwner(dir)?.home === me) dirs.add(dir);
  }
  return [...dirs];
}

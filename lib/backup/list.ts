// `spl backup list`: the backups that belong to this home, newest first.
import { existsSync } from "node:fs";
import { readInstanceDid } from "../instance";
import { homePaths } from "../paths";
import { homeBackups, type BackupFile } from "./catalog";
import { backupLocation, homeBackupDirs } from "./instance-key";
import { openReadOnly, quietMode } from "./snapshot";

/** The instance DID of a home's store, read without writing anything (null if none or unreadable). */
export function storeDid(storePath: string): string | null {
  if (!existsSync(storePath)) return null;
  try {
    const db = openReadOnly(storePath, quietMode(storePath));
    try {
      return readInstanceDid(db);
    } finally {
      db.close();
    }
  } catch {
    return null;
  }
}

/** Directories the current store maps to (its instance key, and the home key when SYNCROPEL_HOME is set). */
export function currentDirs(home: string, did: string | null): string[] {
  const dirs = [backupLocation({ instanceDid: did, home }).dir];
  if (did && process.env.SYNCROPEL_HOME) dirs.push(backupLocation({ instanceDid: null, home }).dir);
  return dirs;
}

export function listHomeBackups(): { home: string; did: string | null; dirs: string[]; files: BackupFile[] } {
  const p = homePaths();
  const did = storeDid(p.store);
  const extra = currentDirs(p.home, did);
  return { home: p.home, did, dirs: homeBackupDirs(p.home, extra), files: homeBackups(p.home, extra) };
}

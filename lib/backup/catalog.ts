// What backups a home has: the files in its backup directories (startup backup, its rotations,
// the largest-ever snapshot, and manual `spl backup` files), with time and record count.
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { backupsRoot } from "../paths";
import { homeBackupDirs, LATEST } from "./instance-key";
import { peekStoreFile } from "./snapshot";

export type BackupKind = "latest" | "rotated" | "max" | "manual";

export interface BackupFile {
  path: string;
  name: string;
  dir: string;
  kind: BackupKind;
  written_at: string;
  mtime_ms: number;
  bytes: number;
  records: number | null;
  threads: number | null;
  instance_did: string | null;
  schema_version: number | null;
  /** Why the file could not be read as a store, if it could not. */
  error?: string;
}

const KINDS: [RegExp, BackupKind][] = [
  [/^hub\.db\.bak$/, "latest"],
  [/^hub\.db\.bak\.\d+$/, "rotated"],
  [/^hub\.db\.bak\.max$/, "max"],
  [/^hub\.db\.\d{8}-\d{6}(-\d+)?\.bak$/, "manual"],
];

export function kindOf(name: string): BackupKind | null {
  for (const [re, kind] of KINDS) if (re.test(name)) return kind;
  return null;
}

/** Rotation index of hub.db.bak.N (0 for hub.db.bak). */
export function rotationIndex(name: string): number {
  return name === LATEST ? 0 : Number(name.slice(LATEST.length + 1));
}

/** A backup file as found on disk, before it is opened. */
export type FoundFile = Omit<BackupFile, "records" | "threads" | "instance_did" | "schema_version" | "error"> & { inode: string };

/** Backup files in `dir` (not descending into sub-directories), without opening them. */
export function filesIn(dir: string): FoundFile[] {
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: FoundFile[] = [];
  for (const name of names) {
    const kind = kindOf(name);
    if (!kind) continue;
    const path = join(dir, name);
    let st;
    try {
      st = statSync(path);
    } catch {
      continue;
    }
    if (!st.isFile()) continue;
    out.push({ path, name, dir, kind, written_at: st.mtime.toISOString(), mtime_ms: st.mtimeMs, bytes: st.size, inode: `${st.dev}:${st.ino}` });
  }
  return out;
}

/** Opens each file (once per inode: rotations and .max are often hard links) and counts its records. */
function withFacts(files: FoundFile[]): BackupFile[] {
  const cache = new Map<string, ReturnType<typeof peekStoreFile>>();
  return files.map(({ inode, ...file }) => {
    let facts = cache.get(inode);
    if (!facts) cache.set(inode, (facts = peekStoreFile(file.path)));
    if ("error" in facts) return { ...file, records: null, threads: null, instance_did: null, schema_version: null, error: facts.error };
    return { ...file, records: facts.records, threads: facts.threads, instance_did: facts.instance_did, schema_version: facts.schema_version };
  });
}

/** Every backup of `home`, newest first. `extraDirs` adds directories its current store maps to. */
export function homeBackups(home: string, extraDirs: string[] = [], root = backupsRoot()): BackupFile[] {
  const files = homeBackupDirs(home, extraDirs, root).flatMap(filesIn);
  return withFacts(files).sort((a, b) => b.mtime_ms - a.mtime_ms || rankOf(a) - rankOf(b));
}

function rankOf(f: Pick<BackupFile, "kind" | "name">): number {
  return f.kind === "latest" ? 0 : f.kind === "manual" ? 1 : f.kind === "max" ? 2 : 3 + rotationIndex(f.name);
}

/**
 * The backup with the most records among a home's backups, opening as few files as possible:
 * per directory its hub.db.bak.max (startup and `spl backup` snapshots both offer themselves to
 * it, so it holds at least as many records as any of them), or every backup where there is no
 * .max yet.
 */
export function bestBackup(home: string, extraDirs: string[] = [], root = backupsRoot()): BackupFile | null {
  const candidates: FoundFile[] = [];
  for (const dir of homeBackupDirs(home, extraDirs, root)) {
    const files = filesIn(dir);
    const max = files.filter((f) => f.kind === "max");
    candidates.push(...(max.length ? max : files));
  }
  return pickBest(withFacts(candidates));
}

/** The most recently written backup of a home, or null (opens only that one file). */
export function newestBackup(home: string, extraDirs: string[] = [], root = backupsRoot()): BackupFile | null {
  const files = homeBackupDirs(home, extraDirs, root).flatMap(filesIn);
  if (!files.length) return null;
  files.sort((a, b) => b.mtime_ms - a.mtime_ms || rankOf(a) - rankOf(b));
  return withFacts([files[0]!])[0]!;
}

export function pickBest(files: BackupFile[]): BackupFile | null {
  let best: BackupFile | null = null;
  for (const f of files) {
    if (f.records === null) continue;
    if (!best || f.records > best.records!) best = f;
    else if (f.records === best.records) {
      // Equal counts: the .max file is the stable name (never rotated away), else the newer file.
      if ((f.kind === "max") !== (best.kind === "max")) best = f.kind === "max" ? f : best;
      else if (f.mtime_ms > best.mtime_ms) best = f;
    }
  }
  return best;
}

// Small file-system steps the backup code composes: durable writes, atomic replace, and a
// hard link (or a copy where links are not possible) that never leaves a half-written file
// under a real name.
import { randomBytes } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  fsyncSync,
  linkSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

export function fsyncFile(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes renames inside `dir` durable. Some file systems refuse to fsync a directory; that is not fatal. */
export function fsyncDir(dir: string): void {
  try {
    fsyncFile(dir);
  } catch {}
}

/** A name for a temporary file beside `target`: hidden, and tagged with our pid so leftovers can be recognised. */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

const TEMP = /^\..+\.tmp-(\d+)-[0-9a-f]{8}$/;

/** Removes temporaries a crashed earlier run left in `dir` (never a file that was renamed into place). */
export function removeStaleTemps(dir: string, isAlive: (pid: number) => boolean): string[] {
  const removed: string[] = [];
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TEMP.exec(name);
    if (!m || Number(m[1]) === process.pid || isAlive(Number(m[1]))) continue;
    rmSync(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = tempPathFor(path);
  const bytes = typeof data === "string" ? Buffer.from(data) : data;
  try {
    const fd = openSync(tmp, "w", 0o600);
    try {
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off, Math.min(bytes.length - off, 8 << 20));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDir(dirname(path));
}

/** Copies src to a fresh temporary beside dst and fsyncs it; returns the temporary's path. */
export function copyToTemp(src: string, dst: string): string {
  const tmp = tempPathFor(dst);
  try {
    copyFileSync(src, tmp);
    fsyncFile(tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return tmp;
}

/**
 * Makes `dst` name the same content as `src`, replacing dst atomically. A hard link costs
 * nothing (snapshot files are never modified after they are written); where the file system
 * has no links, a durable copy is used instead.
 */
export function replaceWithLink(src: string, dst: string): void {
  const tmp = tempPathFor(dst);
  try {
    try {
      linkSync(src, tmp);
    } catch {
      copyFileSync(src, tmp);
      fsyncFile(tmp);
    }
    renameSync(tmp, dst);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

/** Renames src to dst only if dst does not exist (atomic where hard links work). */
export function renameNoClobber(src: string, dst: string): void {
  try {
    linkSync(src, dst);
    rmSync(src, { force: true });
    return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw err;
  }
  if (existsSync(dst)) {
    const e = new Error(`${dst} already exists`) as NodeJS.ErrnoException;
    e.code = "EEXIST";
    throw e;
  }
  renameSync(src, dst);
}

/** `base`, or `base-2`, `base-3`... (inserted before `suffix`) — the first name not taken. */
export function freeName(dir: string, base: string, suffix = ""): string {
  for (let i = 1; ; i++) {
    const name = i === 1 ? `${base}${suffix}` : `${base}-${i}${suffix}`;
    if (!existsSync(join(dir, name))) return join(dir, name);
  }
}

// A lock on hub.db itself, held beside spl.lock (README "One process at a time on the store").
// spl.lock can be deleted by hand while its holder runs; the next daemon would then create a new
// one, lock it and open the same hub.db. So every holder of spl.lock also takes flock(2) on the
// store file: a lock on the file every writer must open anyway, which deleting spl.lock does not
// touch. Why flock and not fcntl: an fcntl lock belongs to the process and is dropped when any of
// its descriptors of that file closes (the startup backup reads hub.db with its own descriptor),
// while flock belongs to this one open descriptor and lives until it closes. On Linux, flock and
// SQLite's fcntl byte-range locks never conflict. The kernel drops it when the process dies,
// kill -9 included, and the descriptor is close-on-exec, so no child keeps it.
// bun:ffi calls libc's flock; where it cannot (no glibc), spl.lock alone guards, as before.
import { closeSync, openSync } from "node:fs";

const LOCK_EX = 2;
const LOCK_NB = 4;
const LOCK_UN = 8;
const EWOULDBLOCK = 11;

interface Libc {
  flock(fd: number, op: number): number;
  errno(): number;
}

let libc: Libc | null | undefined;

function loadLibc(): Libc | null {
  if (libc !== undefined) return libc;
  try {
    const ffi = require("bun:ffi") as typeof import("bun:ffi");
    const lib = ffi.dlopen("libc.so.6", {
      flock: { args: [ffi.FFIType.i32, ffi.FFIType.i32], returns: ffi.FFIType.i32 },
      __errno_location: { args: [], returns: ffi.FFIType.ptr },
    });
    libc = {
      flock: (fd, op) => lib.symbols.flock(fd, op) as number,
      errno: () => {
        const at = lib.symbols.__errno_location();
        return at ? ffi.read.i32(at, 0) : 0;
      },
    };
  } catch {
    libc = null;
  }
  return libc;
}

export type StoreFileLock = { fd: number };

/**
 * Takes an exclusive flock on `storePath`: the lock, "busy" when another open descriptor holds
 * it (another process), or null when there is nothing to lock (no store file yet, no flock here).
 */
export function lockStoreFile(storePath: string): StoreFileLock | "busy" | null {
  const c = loadLibc();
  if (!c) return null;
  let fd: number;
  try {
    fd = openSync(storePath, "r");
  } catch {
    return null; // not created yet: serve locks it once openStore has created it
  }
  if (c.flock(fd, LOCK_EX | LOCK_NB) === 0) return { fd };
  const errno = c.errno();
  closeSync(fd);
  return errno === EWOULDBLOCK ? "busy" : null;
}

export function unlockStoreFile(lock: StoreFileLock): void {
  try {
    loadLibc()?.flock(lock.fd, LOCK_UN);
    closeSync(lock.fd);
  } catch {}
}

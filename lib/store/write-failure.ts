// What a client is told when the store cannot be written (README "HTTP API", errors): a full
// disk is 507 STORAGE_FULL naming the filesystem that is full and how to fix it; any other write
// failure says what SQLite said. Either way nothing of the request was written, and the daemon
// keeps serving: the next write is tried afresh, so writes resume once the cause is gone.
import { readFileSync, realpathSync, statfsSync } from "node:fs";
import { dirname } from "node:path";
import { ApiError } from "../api/http";

/** Errors that mean "no room": SQLite's own, and the errno of a write that hit a full disk or quota. */
const FULL = /^(SQLITE_FULL|ENOSPC|EDQUOT)$/;

export function isStorageFull(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return typeof code === "string" && FULL.test(code);
}

/** The mount holding `path`: its mount point and filesystem type, from /proc/self/mountinfo. */
export function mountOf(path: string): { mount: string; fstype: string } | null {
  let target: string;
  try {
    target = realpathSync(path);
    const best = { mount: "", fstype: "" };
    for (const line of readFileSync("/proc/self/mountinfo", "utf8").split("\n")) {
      const f = line.split(" ");
      const dash = f.indexOf("-");
      if (f.length < 5 || dash < 0) continue;
      const mount = f[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
      const inside = mount === "/" || target === mount || target.startsWith(`${mount}/`);
      // The last of equal mount points is the one on top.
      if (inside && mount.length >= best.mount.length) Object.assign(best, { mount, fstype: f[dash + 1] ?? "" });
    }
    return best.mount ? best : null;
  } catch {
    return null; // not Linux, or the path is gone
  }
}

function freeBytes(dir: string): number | null {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return null;
  }
}

/** The answer for a write transaction that failed (ingest.ts rejects every submitter in it with it). */
export function writeFailure(err: unknown, storePath: string): ApiError {
  const cause = err instanceof Error ? err.message : String(err);
  const dir = dirname(storePath);
  const m = mountOf(dir);
  const free = freeBytes(dir);
  const where = m?.mount ?? dir;
  if (isStorageFull(err)) {
    const fs = m ? `the filesystem mounted at ${m.mount} (${m.fstype})` : `the filesystem holding ${dir}`;
    return new ApiError(
      507,
      "STORAGE_FULL",
      `${fs} is full (${free === null ? "free space unknown" : `${free} bytes free`}); ${storePath} cannot grow: ${cause} — free space on ${where} or move SYNCROPEL_HOME to a larger disk; writes resume by themselves, no restart needed. Nothing of this request was written`,
      { filesystem: where },
    );
  }
  const code = (err as { code?: unknown })?.code;
  const facts = [typeof code === "string" ? code : null, free === null ? null : `${free} bytes free on ${where}`].filter(Boolean).join("; ");
  return new ApiError(
    503,
    "STORE_WRITE_FAILED",
    `the store ${storePath} could not be written: ${cause}${facts ? ` (${facts})` : ""} — nothing of this request was written; the system refused the write (a read-only or failing disk, a file-size limit, permissions on ${dir}): see 'spl doctor' and the system log, then retry`,
  );
}

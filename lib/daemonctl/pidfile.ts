// The single-instance lock: <home>/run/spl.pid created with O_EXCL. A pid file whose process is
// gone (or is not an `spl serve`) is stale and replaced with a warning.
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync, constants } from "node:fs";
import { dirname } from "node:path";
import { UserError } from "../errors";
import type { Logger } from "../log";
import { isSplServe } from "./proc";

export function readPid(pidFile: string): number | null {
  try {
    const pid = Number(readFileSync(pidFile, "utf8").trim());
    return Number.isInteger(pid) && pid > 0 ? pid : null;
  } catch {
    return null;
  }
}

export function acquirePidFile(pidFile: string, log: Logger): void {
  mkdirSync(dirname(pidFile), { recursive: true, mode: 0o700 });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fd = openSync(pidFile, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const pid = readPid(pidFile);
    if (pid !== null && pid !== process.pid && isSplServe(pid)) {
      throw new UserError(`spl serve is already running (pid ${pid})`, "stop it with 'spl serve --stop', or check it with 'spl status'");
    }
    log.warn("removing stale pid file", { path: pidFile, pid: pid ?? undefined });
    rmSync(pidFile, { force: true });
  }
  throw new UserError(`could not create ${pidFile}`, "another spl serve may be starting; try again");
}

/** Removes the pid file only if it still names this process. */
export function releasePidFile(pidFile: string): void {
  if (readPid(pidFile) === process.pid) rmSync(pidFile, { force: true });
}

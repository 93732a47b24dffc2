// Process facts from /proc: is a pid alive, and is it an `spl serve`?
import { readFileSync } from "node:fs";

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // A zombie (killed, not yet reaped by whoever adopted it) answers signals but holds nothing.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat[stat.lastIndexOf(")") + 2] !== "Z";
  } catch {
    return true; // no /proc: the signal's answer stands
  }
}

export function cmdline(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).join(" ");
  } catch {
    return null;
  }
}

/** True when pid is a live process whose command line contains "spl serve". */
export function isSplServe(pid: number): boolean {
  if (!isAlive(pid)) return false;
  const cmd = cmdline(pid);
  // Zombies have an empty cmdline; they are not a running daemon.
  return cmd !== null && /spl serve/.test(cmd);
}

export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isSplServe(pid) && !isAliveNonZombie(pid)) return true;
    await Bun.sleep(25);
  }
  return false;
}

function isAliveNonZombie(pid: number): boolean {
  if (!isAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

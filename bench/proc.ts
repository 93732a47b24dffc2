// What a process (the daemon, the minimal server) has used, read from /proc: CPU time and RSS.
// CPU per request is the steadier figure on a shared machine: rate depends on who else runs.
import { readFileSync } from "node:fs";

const TICKS_PER_SEC = 100; // USER_HZ on Linux

/** User + system CPU seconds in a /proc stat file. */
function statCpu(path: string): number {
  const stat = readFileSync(path, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SEC;
}

/** User + system CPU seconds the process has used so far. */
export const cpuSeconds = (pid: number) => statCpu(`/proc/${pid}/stat`);

/** User + system CPU seconds one thread of the process has used (the main thread's id is the pid). */
export const threadCpuSeconds = (pid: number, tid: number) => statCpu(`/proc/${pid}/task/${tid}/stat`);

/** Resident set size in bytes. */
export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}

/** Peak resident set size so far (VmHWM) in bytes; NaN once the process is gone. */
export function peakRssBytes(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

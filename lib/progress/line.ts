// The live progress line of long work on a terminal: "snapshot  43%  512 MiB of 1.2 GiB  96 MiB/s".
// Shared by the main thread (rebuild_from_store, which yields) and the watcher worker (one long
// SQLite statement, which does not).

export function formatBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) (v /= 1024), i++;
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}

export type Unit = "bytes" | "records";

/** A count a person reads: bytes in binary units, records in whole numbers with separators. */
export const amount = (n: number, unit: Unit) => (unit === "bytes" ? formatBytes(n) : `${Math.round(n).toLocaleString("en")} records`);

export function progressLine(label: string, done: number, total: number, ms: number, unit: Unit): string {
  const pct = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
  const rate = ms > 0 ? (done / ms) * 1000 : 0;
  return `${label}  ${String(pct).padStart(3)}%  ${amount(done, unit)} of ${amount(total, unit)}  ${amount(rate, unit)}/s`;
}

/** Rewrites the current terminal line (carriage return, clear to end of line). */
export const redraw = (text: string) => `\r\x1b[K${text}`;

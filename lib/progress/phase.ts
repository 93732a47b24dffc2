// Long work in phases (integrity check, snapshot, restore copy, rebuild_from_store): on a
// terminal a live line with percent and rate, and for everyone one report per phase with its
// duration. Piped output gets no live line, so it stays plain.
import { writeSync } from "node:fs";
import { bytesReadSoFar } from "./read-bytes";
import { amount as amountOf, progressLine, redraw, type Unit } from "./line";
import { workerEntry } from "../worker-entry";

export interface PhaseReport {
  phase: string;
  ms: number;
  /** What the phase went through: bytes read, or records replayed. */
  bytes?: number;
  records?: number;
}

export interface Phases {
  /**
   * Runs blocking work over `totalBytes` of store (one SQLite statement, or a few). `passes`: how
   * many times it reads them (a snapshot reads the store, then checks the copy: 2).
   */
  run<T>(label: string, totalBytes: number, work: () => T, passes?: number): T;
  /**
   * A phase that yields (rebuild_from_store, downloads): call update as work progresses, then
   * end with the amount done.
   */
  start(label: string, total: number, unit?: Unit): { update(done: number): void; end(done: number): void };
}

/** The one line a finished phase leaves on a terminal. */
export function finishedLine(r: PhaseReport): string {
  const n = r.bytes ?? r.records ?? 0;
  const amount = (v: number) => amountOf(v, r.bytes !== undefined ? "bytes" : "records");
  const rate = r.ms > 0 ? ` (${amount((n / r.ms) * 1000)}/s)` : "";
  return `${r.phase}  100%  ${amount(n)} in ${(r.ms / 1000).toFixed(2)} s${rate}`;
}

/**
 * `live`: draw on stderr (a terminal). `report`: where the per-phase line goes (the daemon's log;
 * the CLI prints it on a terminal only).
 */
export function phases(opts: { live: boolean; report: (r: PhaseReport) => void }): Phases {
  const clear = () => opts.live && writeSync(2, redraw(""));
  return {
    run(label, totalBytes, work, passes = 1) {
      const t0 = performance.now();
      let watcher: Worker | null = null;
      if (opts.live) {
        watcher = new Worker(workerEntry("lib/progress/watch-worker.ts"));
        watcher.postMessage({ label, total: totalBytes, passes, baseline: bytesReadSoFar(), startedAt: Date.now() });
      }
      try {
        return work();
      } finally {
        watcher?.terminate();
        clear();
        opts.report({ phase: label, ms: Math.round(performance.now() - t0), bytes: totalBytes });
      }
    },
    start(label, total, unit = "records") {
      const t0 = performance.now();
      // The first update draws at once (a short phase still shows its line), later ones at most every 100 ms.
      let drawn = -Infinity;
      return {
        update(done) {
          const now = performance.now();
          if (!opts.live || now - drawn < 100) return;
          drawn = now;
          writeSync(2, redraw(progressLine(label, done, total, now - t0, unit)));
        },
        end(done) {
          clear();
          opts.report({ phase: label, ms: Math.round(performance.now() - t0), ...(unit === "bytes" ? { bytes: done } : { records: done }) });
        },
      };
    },
  };
}

/** The CLI's: on a terminal the live line and then one finished line per phase; piped, nothing. */
export function cliPhases(): Phases {
  const tty = process.stderr.isTTY === true;
  return phases({ live: tty, report: (r) => tty && writeSync(2, finishedLine(r) + "\n") });
}

/** For callers with nothing to show. */
export const quietPhases: Phases = {
  run: (_label, _total, work) => work(),
  start: () => ({ update() {}, end() {} }),
};

// Worker: while the main thread is blocked in one long SQLite statement (VACUUM INTO,
// quick_check), redraws the progress line from the bytes this process has read so far.
import { writeSync } from "node:fs";
import { bytesReadSoFar } from "./read-bytes";
import { progressLine, redraw } from "./line";

declare const self: Worker;

self.onmessage = (event: MessageEvent<{ label: string; total: number; passes: number; baseline: number; startedAt: number }>) => {
  const { label, total, passes, baseline, startedAt } = event.data;
  setInterval(() => {
    const done = Math.min(total, (bytesReadSoFar() - baseline) / passes);
    writeSync(2, redraw(progressLine(label, done, total, Date.now() - startedAt, "bytes")));
  }, 200);
};

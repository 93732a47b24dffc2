// Whether stderr is the systemd journal: systemd sets JOURNAL_STREAM to the device and inode of
// the stream it gave the service, which stderr still is unless it was redirected (sd-daemon(3)).
// Lines written there may then start with a `<N>` syslog priority, which journald strips and
// files the line under (`journalctl -p warning`). lib/log.ts and the CLI's error line use it.
import { fstatSync } from "node:fs";

let cached: boolean | undefined;

export function stderrIsJournal(env = process.env): boolean {
  if (cached !== undefined && env === process.env) return cached;
  let yes = false;
  const want = env.JOURNAL_STREAM;
  if (want) {
    try {
      const st = fstatSync(2);
      yes = want === `${st.dev}:${st.ino}`;
    } catch {}
  }
  if (env === process.env) cached = yes;
  return yes;
}

/** `<3>` for an error line on stderr when it is the journal, else nothing. */
export const errorPrefix = (): string => (stderrIsJournal() ? "<3>" : "");

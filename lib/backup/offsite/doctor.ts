// The doctor's off-host rows: configured or not (with the line to add), the newest copy's age
// against `every`, and the last push's result (the running daemon's, else <home>/offsite.json).
import { sectionOf } from "../../config";
import { OFFSITE_EXAMPLE, offsiteSection } from "./config";
import { formatDuration, plural } from "../../cli/output";
import { type Check, type CheckResult, fail, pass, warn } from "../../doctor/types";

const LIST_TIMEOUT_MS = 5000;

export const offsiteBackup: Check = async (ctx) => {
  const name = "off-host backup";
  if (!ctx.config) return null; // the config row says why
  const cfg = sectionOf(ctx.config, offsiteSection);
  if (!cfg) return pass(name, `not configured: every backup lives on this machine only — add to ${ctx.paths.config}: ${OFFSITE_EXAMPLE}`);
  const { listCopies, readLastPush } = await import("./push");
  const { remoteFor } = await import("./remote");
  const rows: CheckResult[] = [];
  const every = formatDuration(cfg.everySecs);
  try {
    const copies = await Promise.race([
      listCopies(remoteFor(cfg.url, ctx.paths, cfg)),
      Bun.sleep(LIST_TIMEOUT_MS).then(() => {
        throw new Error(`no answer within ${LIST_TIMEOUT_MS / 1000}s`);
      }),
    ]);
    const newest = copies.find((c) => c.checksum);
    if (!newest) rows.push(warn(name, `${cfg.url} holds no copy yet — 'spl backup push' pushes one now (the daemon pushes every ${every})`));
    else {
      const ageSecs = Math.max(0, Math.floor((Date.now() - newest.time_ms) / 1000));
      const what = `newest copy ${newest.url} is ${formatDuration(ageSecs)} old (every ${every}, ${plural(copies.length, "copy", "copies")})`;
      rows.push(ageSecs > 2 * cfg.everySecs ? warn(name, `${what}: older than twice 'every' — check 'spl doctor' last push, or 'spl backup push'`) : pass(name, what));
    }
  } catch (err) {
    const msg = (err as { oneLine?: string }).oneLine ?? (err as Error).message;
    rows.push(warn(name, `cannot list ${cfg.url}: ${msg}`));
  }
  const last = (ctx.daemonIsOurs ? ctx.status?.offsite?.last_push : undefined) ?? readLastPush(ctx.paths);
  if (!last) rows.push(warn("last off-host push", "none yet — 'spl backup push' pushes now; the running daemon pushes on its schedule"));
  else if (!last.ok) rows.push(fail("last off-host push", `FAILED at ${last.at}: ${last.error} (the daemon retries with backoff)`));
  else rows.push(pass("last off-host push", `ok at ${last.at}: ${last.url} (${last.records} records)`));
  return rows;
};

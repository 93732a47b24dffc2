// Restore from an off-host copy: refuse early while a daemon runs (before a long download),
// fetch and verify the copy, then the usual safe restore of the downloaded file.
import { rmSync } from "node:fs";
import { findDaemon } from "../../daemonctl/control";
import { UserError } from "../../errors";
import { homePaths } from "../../paths";
import { restoreStore, type RestoreResult } from "../restore";
import { fetchCopy } from "./fetch";
import type { Phases } from "../../progress/phase";

export async function restoreOffsite(source: string, opts: { force?: boolean; phases?: Phases } = {}): Promise<RestoreResult> {
  const paths = homePaths();
  const running = await findDaemon(paths);
  if (running) {
    throw new UserError(
      `spl serve is running (pid ${running.pid}); restore never replaces the store under a live daemon`,
      "stop it first with 'spl serve --stop', then run 'spl restore' again",
    );
  }
  const tmp = await fetchCopy(source, paths, opts.phases);
  try {
    // The restore names (and logs) the copy the operator asked for, not the temporary download.
    return await restoreStore(tmp, { ...opts, from: source });
  } catch (err) {
    // The safe restore names the file it checked: name the copy the operator asked for instead.
    if (err instanceof UserError) throw new UserError(err.message.replaceAll(tmp, source), err.fix?.replaceAll(tmp, source), err.exitCode);
    throw err;
  } finally {
    rmSync(tmp, { force: true });
  }
}

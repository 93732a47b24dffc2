// `spl restore <url-or-path> [--to-seq N | --to-time T] [--endpoint URL]`: refuse early while a
// daemon runs (before a long download), then either
//   one copy (…/hub.db.<stamp>.bak.zst, a .bak, or a local .zst): fetched, verified, decompressed;
//   a folder (the configured URL, or its instance folder): a point in time (pitr.ts);
// and in both cases every record id checked against its content, then the usual safe restore of
// the resulting file (integrity check, record-id comparison, current store moved aside).
import { mkdirSync, rmSync } from "node:fs";
import { Database } from "bun:sqlite";
import { findDaemon } from "../../daemonctl/control";
import { UsageError, UserError } from "../../errors";
import { homePaths } from "../../paths";
import { quietPhases, type Phases } from "../../progress/phase";
import { restoreStore, type RestoreResult } from "../restore";
import { fetchCopy, isCopyName } from "./fetch";
import { readFolders } from "./listing";
import { buildFromPlan, planRestore, type PitrResult, type Target } from "./pitr";
import { remoteFor } from "./aws-chain";
import type { S3Options } from "./remote";
import { verifyRecordIds } from "./verify";

export interface OffsiteRestoreOptions extends Target, S3Options {
  force?: boolean;
  phases?: Phases;
}

export type OffsiteRestoreResult = RestoreResult & { pitr: PitrResult | null };

export async function restoreOffsite(source: string, opts: OffsiteRestoreOptions = {}): Promise<OffsiteRestoreResult> {
  const paths = homePaths();
  const phases = opts.phases ?? quietPhases;
  const running = await findDaemon(paths);
  if (running) {
    throw new UserError(
      `spl serve is running (pid ${running.pid}); restore never replaces the store under a live daemon`,
      "stop it first with 'spl serve --stop', then run 'spl restore' again",
    );
  }
  mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  const s3: S3Options = { endpoint: opts.endpoint, region: opts.region };
  const target: Target = { seq: opts.seq, timeMs: opts.timeMs };
  let file: { path: string; temporary: boolean };
  let pitr: PitrResult | null = null;
  if (isCopyName(source)) {
    if (target.seq !== undefined || target.timeMs !== undefined) {
      throw new UsageError(`--to-seq and --to-time restore from a folder, and ${source} is one copy`, `name its folder instead: spl restore ${source.slice(0, source.lastIndexOf("/"))}`);
    }
    file = await fetchCopy(source, paths, { s3, phases });
    try {
      const db = new Database(file.path, { readonly: true });
      try {
        const n = (db.query("SELECT COUNT(*) AS n FROM records").get() as { n: number }).n;
        await verifyRecordIds(db, source, n, phases);
      } finally {
        db.close();
      }
    } catch (err) {
      if (file.temporary) rmSync(file.path, { force: true });
      if (err instanceof UserError) throw err;
      throw new UserError(`${source} is not an intact spl store: ${(err as Error).message}`, "restore another copy ('spl backup list --remote')");
    }
  } else {
    const remote = remoteFor(source.replace(/\/+$/, ""), paths, s3);
    const folders = (await readFolders(remote)).filter((f) => f.copies.length || f.tiles.length);
    if (!folders.length) throw new UserError(`${source} holds no off-host copies`, "check the URL (and --endpoint for S3); 'spl backup list --remote' shows the copies");
    if (folders.length > 1) {
      throw new UserError(
        `${source} holds copies of ${folders.length} instances (${folders.map((f) => f.folder).join(", ")})`,
        `name one: spl restore ${source.replace(/\/+$/, "")}/${folders[0]!.folder}`,
      );
    }
    const plan = await planRestore(remote, folders[0]!, target);
    const built = await buildFromPlan(remote, plan, target, paths, phases);
    file = { path: built.path, temporary: true };
    pitr = built.result;
  }
  try {
    // The answer and the log line name the copy the operator asked for, not the download.
    const r = await restoreStore(file.path, { force: opts.force, phases, from: source });
    return { ...r, pitr };
  } catch (err) {
    // The safe restore names the file it checked: name the copy the operator asked for instead.
    if (err instanceof UserError) throw new UserError(err.message.replaceAll(file.path, source), err.fix?.replaceAll(file.path, source), err.exitCode);
    throw err;
  } finally {
    if (file.temporary) rmSync(file.path, { force: true });
  }
}

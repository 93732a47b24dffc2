// <home>/replication.json: where continuous replication stands, a few hundred bytes rewritten
// (atomically) after each segment. The remote listing is the authority on what was shipped; this
// file says which generation this store continues and the last sequence known to be shipped, so a
// restart resumes without re-shipping, and `spl backup push` can tag its snapshot with the
// generation. A store that is not the one the file describes (restored, replaced) starts a new
// generation (README "Continuous replication").
import { randomBytes } from "node:crypto";
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Database } from "bun:sqlite";
import type { HomePaths } from "../../paths";
import { tempPathFor } from "../fsutil";
import { timestamp } from "../manual";

export interface ReplicaState {
  url: string;
  /** The instance folder on the remote (instance-… or home-…). */
  folder: string;
  generation: string;
  /** The store's last record when the generation started (0 / null: empty store). */
  start_seq: number;
  start_id: string | null;
  /** Every record up to this seq is shipped; its id, and when it was committed (unix s). */
  through: number;
  through_id: string | null;
  through_at: number | null;
  /** The last segment that was stored, and the last attempt's failure (null once one succeeds). */
  shipped_at: string | null;
  last_error: { at: string; message: string } | null;
}

export const replicaStateFile = (paths: HomePaths) => join(paths.home, "replication.json");

export function readReplicaState(paths: HomePaths): ReplicaState | null {
  try {
    const s = JSON.parse(readFileSync(replicaStateFile(paths), "utf8"));
    return s && typeof s.generation === "string" && Number.isSafeInteger(s.through) ? s : null;
  } catch {
    return null;
  }
}

/**
 * Replaced whole (temporary + rename) but not fsynced: it is rewritten after every segment, and a
 * state lost to a power cut only makes the next start reconcile with the remote listing (or start
 * a generation), never lose or repeat a record.
 */
export function writeReplicaState(paths: HomePaths, s: ReplicaState): void {
  const file = replicaStateFile(paths);
  const tmp = tempPathFor(file);
  try {
    writeFileSync(tmp, JSON.stringify(s) + "\n", { mode: 0o600 });
    renameSync(tmp, file);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export const newGenerationName = (now = new Date()) => `${timestamp(now)}-${randomBytes(2).toString("hex")}`;

/** The id of the record with `seq` (null for seq 0 or a missing record). */
export function idAt(db: Database, seq: number): string | null {
  if (seq <= 0) return null;
  return (db.query("SELECT id FROM records WHERE seq = ?").get(seq) as { id: string } | null)?.id ?? null;
}

/** Whether the store `db` holds the generation's start record: its snapshots belong to it. */
export function continuesGeneration(db: Database, s: Pick<ReplicaState, "start_seq" | "start_id">): boolean {
  return s.start_seq === 0 || idAt(db, s.start_seq) === s.start_id;
}

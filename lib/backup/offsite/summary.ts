// `spl backup list --remote`: per instance folder, the snapshots (with what their .sha256
// declares) and the replicated range of each generation: the points a restore can reach, how
// many segments hold them, and how far the newest lags behind this home's store.
import { existsSync } from "node:fs";
import type { HomePaths } from "../../paths";
import { StoreReader } from "../../store/reader";
import { chainFrom, generationsOf, readFolders, withMeta, type RemoteCopy } from "./listing";
import type { Remote } from "./remote";
import { readReplicaState } from "./replica-state";

export interface ReplicatedRange {
  generation: string;
  started_at: string;
  /** The earliest and latest record sequence a restore can reach (null: no snapshot yet). */
  from_seq: number | null;
  through_seq: number | null;
  from_at: string | null;
  through_at: string | null;
  segments: number;
  segment_bytes: number;
  /** When the newest segment was stored. */
  newest_segment_at: string | null;
  /** This home's store, when it is the one replicated: records not yet off-host and their age. */
  behind_records: number | null;
  lag_secs: number | null;
  current: boolean;
}

export interface FolderSummary {
  folder: string;
  url: string;
  copies: RemoteCopy[];
  replication: ReplicatedRange[];
}

const iso = (secs: number | undefined | null) => (secs === undefined || secs === null ? null : new Date(secs * 1000).toISOString());

/** What the local store holds after `seq`: how many, and when the first of them was accepted. */
function localTail(paths: HomePaths, seq: number): { behind: number; firstAt: number | null } | null {
  if (!existsSync(paths.store)) return null;
  try {
    const r = StoreReader.open(paths.store, "shared");
    try {
      const row = r.db.query("SELECT COUNT(*) AS n, MIN(created_at) AS t FROM records WHERE seq > ?").get(seq) as { n: number; t: number | null };
      return { behind: row.n, firstAt: row.t };
    } finally {
      r.close();
    }
  } catch {
    return null;
  }
}

export async function summarize(remote: Remote, paths: HomePaths, nowMs = Date.now()): Promise<FolderSummary[]> {
  const folders = await readFolders(remote);
  const mine = readReplicaState(paths);
  const out: FolderSummary[] = [];
  for (const f of folders) {
    await withMeta(remote, f.copies);
    const gens = generationsOf(f).map((g) => {
      const bases = f.copies.filter((c) => c.checksum && c.meta?.generation === g.generation && Number.isSafeInteger(c.meta.last_seq)).sort((a, b) => a.meta!.last_seq! - b.meta!.last_seq!);
      const newestBase = bases[bases.length - 1];
      const reach = newestBase ? chainFrom(g.tiles, newestBase.meta!.last_seq! + 1) : null;
      return { ...g, bases, newestBase, reach, lastTile: reach?.chain[reach.chain.length - 1] };
    });
    await withMeta(remote, gens.flatMap((g) => (g.lastTile ? [g.lastTile] : [])));
    const replication: ReplicatedRange[] = gens.map((g, i) => {
      const { bases, newestBase, reach, lastTile } = g;
      const newestMs = g.tiles.reduce((m, t) => Math.max(m, t.modifiedMs), 0);
      const current = i === gens.length - 1 && mine?.generation === g.generation && mine.folder === f.folder;
      let behind: number | null = null;
      let lag: number | null = null;
      if (current && reach) {
        const tail = localTail(paths, reach.reaches);
        if (tail) (behind = tail.behind), (lag = tail.behind && tail.firstAt !== null ? Math.max(0, nowMs / 1000 - tail.firstAt) : 0);
      }
      return {
        generation: g.generation,
        started_at: new Date(g.startMs).toISOString(),
        from_seq: bases[0]?.meta?.last_seq ?? null,
        through_seq: reach?.reaches ?? null,
        from_at: iso(bases[0]?.meta?.last_at),
        through_at: iso(lastTile ? (lastTile.meta?.last_at ?? null) : (newestBase?.meta?.last_at ?? null)),
        segments: g.tiles.length,
        segment_bytes: g.tiles.reduce((n, t) => n + t.bytes, 0),
        newest_segment_at: newestMs ? new Date(newestMs).toISOString() : null,
        behind_records: behind,
        lag_secs: lag,
        current,
      };
    });
    out.push({ folder: f.folder, url: remote.urlOf(f.folder), copies: f.copies, replication });
  }
  return out;
}

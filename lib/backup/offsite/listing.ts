// What a remote holds, per instance folder: snapshots (`hub.db.<UTC stamp>.bak.zst`) and
// segments (`segments/<generation>/<first>-<last>.jsonl.zst`), each complete only with its
// .sha256 beside it. Listing reads names only; what an object declares (records, sequence range,
// generation) is in its .sha256, read by `withMeta` for the few objects that need it.
import { parseSum, SUM, type ObjectMeta } from "./transfer";
import type { Remote, RemoteObject } from "./remote";
import { parseTileKey, type TileName } from "./segments";

export const COPY = /^hub\.db\.(\d{8}-\d{6})(-\d+)?\.bak(\.zst)?$/;

export interface RemoteCopy {
  url: string;
  key: string;
  folder: string;
  name: string;
  written_at: string;
  time_ms: number;
  bytes: number;
  /** false when the .sha256 beside it is missing (an interrupted push): restore refuses it. */
  checksum: boolean;
  /** What its .sha256 declares (filled in by withMeta; null for a copy from an older spl). */
  meta?: ObjectMeta | null;
}

export interface Tile extends TileName {
  url: string;
  key: string;
  folder: string;
  bytes: number;
  modifiedMs: number;
  checksum: boolean;
  meta?: ObjectMeta | null;
}

export interface Folder {
  folder: string;
  /** Newest first. */
  copies: RemoteCopy[];
  /** By generation, then first seq. */
  tiles: Tile[];
}

/** "20261127-120000" → ms since the epoch (UTC). */
export function stampTime(stamp: string): number {
  const [d, t] = stamp.split("-") as [string, string];
  return Date.UTC(+d.slice(0, 4), +d.slice(4, 6) - 1, +d.slice(6, 8), +t.slice(0, 2), +t.slice(2, 4), +t.slice(4, 6));
}

const folderOf = (key: string, below: string) => key.slice(0, Math.max(0, key.length - below.length - 1));

/** Everything under the remote (or one folder of it), grouped by instance folder. */
export async function readFolders(remote: Remote, folder = ""): Promise<Folder[]> {
  const objects = await remote.list(folder ? `${folder}/` : "");
  return groupObjects(remote, objects);
}

export function groupObjects(remote: Remote, objects: RemoteObject[]): Folder[] {
  const keys = new Set(objects.map((o) => o.key));
  const folders = new Map<string, Folder>();
  const at = (f: string) => folders.get(f) ?? folders.set(f, { folder: f, copies: [], tiles: [] }).get(f)!;
  for (const o of objects) {
    const name = o.key.slice(o.key.lastIndexOf("/") + 1);
    const m = COPY.exec(name);
    if (m) {
      const time = stampTime(m[1]!) + Number(m[2]?.slice(1) ?? 1) - 1; // -2, -3: later within that second
      const folder = folderOf(o.key, name);
      at(folder).copies.push({
        url: remote.urlOf(o.key),
        key: o.key,
        folder,
        name,
        written_at: new Date(time).toISOString(),
        time_ms: time,
        bytes: o.bytes,
        checksum: keys.has(o.key + SUM),
      });
      continue;
    }
    const i = o.key.lastIndexOf("segments/");
    if (i < 0 || (i > 0 && o.key[i - 1] !== "/")) continue;
    const t = parseTileKey(o.key.slice(i));
    if (!t) continue;
    const folder = o.key.slice(0, Math.max(0, i - 1));
    at(folder).tiles.push({ ...t, url: remote.urlOf(o.key), key: o.key, folder, bytes: o.bytes, modifiedMs: o.modifiedMs, checksum: keys.has(o.key + SUM) });
  }
  for (const f of folders.values()) {
    f.copies.sort((a, b) => b.time_ms - a.time_ms);
    f.tiles.sort((a, b) => (a.generation < b.generation ? -1 : a.generation > b.generation ? 1 : a.first - b.first || a.last - b.last));
  }
  return [...folders.values()].sort((a, b) => (a.folder < b.folder ? -1 : 1));
}

/** Reads the .sha256 of each object (in parallel, a few at a time) and keeps what it declares. */
export async function withMeta<T extends { key: string; checksum: boolean; meta?: ObjectMeta | null }>(remote: Remote, items: T[]): Promise<T[]> {
  const todo = items.filter((i) => i.checksum && i.meta === undefined);
  for (let i = 0; i < todo.length; i += 8) {
    await Promise.all(
      todo.slice(i, i + 8).map(async (item) => {
        try {
          item.meta = parseSum(new TextDecoder().decode(await remote.get(item.key + SUM, 64 * 1024))).meta;
        } catch {
          item.meta = null;
        }
      }),
    );
  }
  return items;
}

/** Generations with their segments (complete ones only), oldest first. */
export function generationsOf(f: Folder): { generation: string; startMs: number; tiles: Tile[] }[] {
  const gens = new Map<string, Tile[]>();
  for (const t of f.tiles) if (t.checksum) (gens.get(t.generation) ?? gens.set(t.generation, []).get(t.generation)!).push(t);
  for (const c of f.copies) if (c.meta?.generation && !gens.has(c.meta.generation)) gens.set(c.meta.generation, []);
  return [...gens.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([generation, tiles]) => ({ generation, startMs: stampTime(generation.slice(0, 15)), tiles }));
}

/**
 * The fewest segments that chain from seq `from` onwards without a gap (largest first at each
 * step, so compacted segments are preferred), stopping at `to` or where the chain breaks.
 * Answers the chain and the last seq it reaches (from - 1 when nothing continues it).
 */
export function chainFrom(tiles: Tile[], from: number, to = Infinity): { chain: Tile[]; reaches: number } {
  const chain: Tile[] = [];
  let next = from;
  while (next <= to) {
    let best: Tile | null = null;
    for (const t of tiles) if (t.first <= next && t.last >= next && (!best || t.last > best.last)) best = t;
    if (!best) break;
    chain.push(best);
    next = best.last + 1;
  }
  return { chain, reaches: next - 1 };
}

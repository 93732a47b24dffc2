// Retention of one instance folder (README "Continuous replication"): keep exactly what a restore
// to any point of the last keep_days needs, and never the newest complete snapshot.
// - Snapshots, per generation (and the untagged ones of snapshot-only pushes): every snapshot
//   written inside the window, plus the newest one before it (the base a restore to the window's
//   first moment starts from). Older ones go.
// - A generation replaced by a newer one before the window began is no restore's choice any more
//   (a restore to a time uses the generation that was live then): its snapshots and segments go.
// - Segments that end at or before the oldest kept snapshot of their generation are inside that
//   snapshot: they go. This is how segments are compacted into snapshots over time; the daemon
//   also merges short segments into longer ones (Shipper.compact in shipper.ts).
// - An upload that never got its .sha256 is removed once it is older than the window.
// Each object's .sha256 is deleted before the object, so a half-finished deletion leaves an
// incomplete object (ignored, removed next time), never a checksum without its data.
import { generationsOf, readFolders, withMeta, type RemoteCopy, type Tile } from "./listing";
import type { Remote } from "./remote";
import { SUM } from "./transfer";

export async function applyRetention(remote: Remote, folder: string, keepDays: number, nowMs: number): Promise<string[]> {
  const f = (await readFolders(remote, folder)).find((x) => x.folder === folder);
  if (!f) return [];
  const windowStart = nowMs - keepDays * 86400_000;
  await withMeta(remote, f.copies);
  const complete = f.copies.filter((c) => c.checksum);
  const gens = generationsOf(f);
  const endOf = new Map(gens.map((g, i) => [g.generation, gens[i + 1]?.startMs ?? Infinity]));
  const replaced = (gen: string) => (endOf.get(gen) ?? Infinity) <= windowStart;

  const keep = new Set<RemoteCopy>(complete.slice(0, 1)); // the newest, always
  const byTag = new Map<string, RemoteCopy[]>();
  for (const c of complete) {
    const tag = c.meta?.generation ?? "";
    (byTag.get(tag) ?? byTag.set(tag, []).get(tag)!).push(c);
  }
  for (const [tag, list] of byTag) {
    if (tag && replaced(tag)) continue;
    let base = false;
    for (const c of list) {
      if (c.time_ms > windowStart) keep.add(c);
      else if (!base) keep.add(c), (base = true);
    }
  }

  const deleted: string[] = [];
  const drop = async (o: { key: string; url: string }) => {
    await remote.delete(o.key + SUM);
    await remote.delete(o.key);
    deleted.push(o.url);
  };
  for (const c of f.copies) {
    if (keep.has(c)) continue;
    if (c.checksum || c.time_ms < windowStart) await drop(c);
  }

  for (const g of gens) {
    const tiles = f.tiles.filter((t) => t.generation === g.generation);
    let doomed: Tile[];
    if (replaced(g.generation)) doomed = tiles;
    else {
      const bases = complete.filter((c) => keep.has(c) && c.meta?.generation === g.generation && Number.isSafeInteger(c.meta?.last_seq));
      if (!bases.length) continue;
      const oldest = Math.min(...bases.map((c) => c.meta!.last_seq!));
      doomed = tiles.filter((t) => t.last <= oldest);
    }
    for (const t of doomed) await drop(t);
  }
  return deleted;
}

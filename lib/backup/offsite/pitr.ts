// Point-in-time restore from an instance folder (README "Continuous replication"): the latest
// snapshot at or before the point, then the segments after it, record by record, each id checked
// against its content, up to the point:
//   latest          the newest generation with a snapshot, to the end of its unbroken segments;
//   --to-seq N      exactly the records with seq <= N of the newest generation that can give them;
//   --to-time T     the generation that was live at T, every record accepted up to T's second
//                   (records carry their acceptance time in seconds).
// The result is a store file the usual safe restore then installs (lib/backup/restore.ts).
import { Database } from "bun:sqlite";
import { copyFileSync, rmSync } from "node:fs";
import { UserError } from "../../errors";
import type { HomePaths } from "../../paths";
import { quietPhases, type Phases } from "../../progress/phase";
import { fsyncFile, tempPathFor } from "../fsutil";
import { decompressFile, fetchVerified, isCompressed } from "./fetch";
import { chainFrom, generationsOf, withMeta, type Folder, type RemoteCopy, type Tile } from "./listing";
import type { Remote } from "./remote";
import { Appender, lines, parseLine } from "./segments";
import { fileChunks, zstdDecompress } from "./transfer";
import { verifyRecordIds } from "./verify";

export interface Target {
  seq?: number;
  /** ms since the epoch. */
  timeMs?: number;
}

export interface Plan {
  generation: string | null;
  base: RemoteCopy;
  chain: Tile[];
  /** The last seq the plan reaches (target or end of the chain). */
  reaches: number;
  notes: string[];
}

export interface PitrResult {
  generation: string | null;
  base: string;
  segments: number;
  segment_records: number;
  restored_through: { seq: number; id: string | null; at: string | null };
  target: string;
  notes: string[];
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.000Z$/, "Z");

export const describeTarget = (t: Target) => (t.seq !== undefined ? `seq ${t.seq}` : t.timeMs !== undefined ? `time ${iso(t.timeMs)}` : "latest");

/** Chooses the snapshot and segments for `target` (reads the .sha256 of every snapshot). */
export async function planRestore(remote: Remote, f: Folder, target: Target): Promise<Plan> {
  await withMeta(remote, f.copies);
  const gens = generationsOf(f).reverse(); // newest first
  const complete = f.copies.filter((c) => c.checksum);
  const based = (g: string) => complete.filter((c) => c.meta?.generation === g && isInt(c.meta.last_seq)).sort((a, b) => b.meta!.last_seq! - a.meta!.last_seq!);
  const untagged = complete.filter((c) => !c.meta?.generation);
  const notes: string[] = [];
  const ranges: string[] = [];

  if (target.seq === undefined && target.timeMs === undefined) {
    for (const g of gens) {
      const base = based(g.generation)[0];
      if (!base) {
        notes.push(`generation ${g.generation} has no snapshot off-host yet: restored from an older one`);
        continue;
      }
      const { chain, reaches } = chainFrom(g.tiles, base.meta!.last_seq! + 1);
      return { generation: g.generation, base, chain, reaches, notes };
    }
    const base = untagged[0] ?? complete[0];
    if (!base) throw new UserError(`${remote.urlOf(f.folder)} holds no complete copy`, "check the URL ('spl backup list --remote' shows the copies)");
    return { generation: null, base, chain: [], reaches: base.meta?.last_seq ?? 0, notes };
  }

  if (target.seq !== undefined) {
    const n = target.seq;
    for (const g of gens) {
      const bases = based(g.generation);
      const base = bases.find((b) => b.meta!.last_seq! <= n);
      const top = bases.length ? chainFrom(g.tiles, bases[0]!.meta!.last_seq! + 1).reaches : 0;
      if (bases.length) ranges.push(`${g.generation}: ${bases[bases.length - 1]!.meta!.last_seq}..${top}`);
      if (!base) continue;
      const { chain, reaches } = chainFrom(g.tiles, base.meta!.last_seq! + 1, n);
      if (reaches >= n) return { generation: g.generation, base, chain, reaches: n, notes };
    }
    const exact = untagged.find((c) => c.meta?.last_seq === n);
    if (exact) return { generation: null, base: exact, chain: [], reaches: n, notes };
    throw new UserError(
      `seq ${n} cannot be restored from ${remote.urlOf(f.folder)}: ${ranges.length ? `the replicated ranges are ${ranges.join(", ")}` : "it holds no replicated range"}`,
      "pick a seq inside a range ('spl backup list --remote' shows them), or leave --to-seq out for the latest",
    );
  }

  const t = target.timeMs!;
  const secs = Math.floor(t / 1000);
  for (const g of gens) {
    if (g.startMs > t) continue; // started after T: T's store is in an older generation
    const base = based(g.generation).find((b) => (b.meta!.last_at ?? Infinity) <= secs);
    if (!base) continue;
    const { chain, reaches } = chainFrom(g.tiles, base.meta!.last_seq! + 1);
    return { generation: g.generation, base, chain, reaches, notes };
  }
  const snap = untagged.find((c) => c.time_ms <= t && (c.meta?.last_at ?? 0) <= secs);
  if (snap) {
    notes.push(`no replicated segments cover ${iso(t)}: restored the snapshot of ${snap.written_at}, the newest before it`);
    return { generation: null, base: snap, chain: [], reaches: snap.meta?.last_seq ?? 0, notes };
  }
  const oldest = gens.length ? iso(gens[gens.length - 1]!.startMs) : null;
  throw new UserError(
    `${iso(t)} cannot be restored from ${remote.urlOf(f.folder)}: ${oldest ? `it is before the oldest replicated point (${oldest})` : "it holds no snapshot that old"}`,
    "pick a later time ('spl backup list --remote' shows the range), or leave --to-time out for the latest",
  );
}

/** Builds the store file the plan describes, in `workDir`; answers its path and what it holds. */
export async function buildFromPlan(remote: Remote, plan: Plan, target: Target, paths: HomePaths, phases: Phases): Promise<{ path: string; result: PitrResult }> {
  const base = await fetchVerified(remote, plan.base.key, paths.home, phases);
  const out = tempPathFor(`${paths.store}.restore`);
  try {
    if (isCompressed(plan.base.key)) await decompressFile(base.path, out, base.meta, plan.base.url, phases);
    else {
      copyFileSync(base.path, out);
      fsyncFile(out);
    }
  } catch (err) {
    rmSync(out, { force: true });
    throw err;
  } finally {
    if (base.temporary) rmSync(base.path, { force: true });
  }
  try {
    const result = await applySegments(out, remote, plan, target, paths, phases);
    return { path: out, result };
  } catch (err) {
    rmSync(out, { force: true });
    throw err;
  }
}

async function applySegments(file: string, remote: Remote, plan: Plan, target: Target, paths: HomePaths, phases: Phases): Promise<PitrResult> {
  const db = new Database(file, { readwrite: true, create: false, strict: true });
  const fix = "restore to an earlier point (--to-seq), or another copy ('spl backup list --remote')";
  try {
    db.exec("PRAGMA synchronous = OFF");
    const last = db.query("SELECT seq, id, created_at FROM records ORDER BY seq DESC LIMIT 1").get() as { seq: number; id: string; created_at: number } | null;
    const meta = plan.base.meta;
    if (meta && isInt(meta.last_seq) && ((last?.seq ?? 0) !== meta.last_seq || (last?.id ?? null) !== (meta.last_id ?? null))) {
      throw new UserError(`${plan.base.url} does not hold what its .sha256 declares (last seq ${last?.seq ?? 0}, declared ${meta.last_seq})`, fix);
    }
    const total = (db.query("SELECT COUNT(*) AS n FROM records").get() as { n: number }).n;
    await verifyRecordIds(db, plan.base.url, total, phases);
    const app = new Appender(db, last?.seq ?? 0, last?.id ?? null);
    let lastAt = last?.created_at ?? null;
    const seqCap = target.seq ?? Infinity;
    const timeCap = target.timeMs !== undefined ? Math.floor(target.timeMs / 1000) : Infinity;
    let applied = 0;
    let used = 0;
    let done = app.lastSeq >= seqCap;
    // Sequences have no gaps (records are never deleted), so the count to apply is their distance.
    const bar = phases.start("apply segments", Number.isFinite(plan.reaches) ? Math.max(0, plan.reaches - app.lastSeq) : 0);
    try {
      for (const tile of plan.chain) {
        if (done) break;
        if (tile.first > app.lastSeq + 1) throw new UserError(`segments are missing between seq ${app.lastSeq} and ${tile.first} in ${remote.urlOf(tile.folder)}`, fix);
        const got = await fetchVerified(remote, tile.key, paths.home, quietPhases); // one line for all: "apply segments"
        used++;
        try {
          const m = got.meta;
          if (!m) throw new UserError(`${tile.url}${".sha256"} declares no size: not a segment spl wrote`, fix);
          if (tile.first === app.lastSeq + 1 && m.prev_id !== undefined && m.prev_id !== app.lastId) {
            throw new UserError(`${tile.url} does not continue the records before it (it follows ${String(m.prev_id).slice(0, 16)}…, the store ends with ${String(app.lastId).slice(0, 16)}…)`, fix);
          }
          db.exec("BEGIN");
          let lineNo = 0;
          for await (const line of lines(zstdDecompress(fileChunks(got.path), m.bytes, tile.url), tile.url)) {
            lineNo++;
            if (!line) continue;
            const r = parseLine(line, `${tile.url} line ${lineNo}`);
            if (r.seq <= app.lastSeq) {
              if (r.seq === app.lastSeq && r.id !== app.lastId) throw new UserError(`${tile.url} line ${lineNo}: record ${r.seq} differs from the one already restored`, fix);
              continue;
            }
            if (r.seq > seqCap || r.created_at > timeCap) {
              done = true;
              break;
            }
            app.add(r);
            lastAt = r.created_at;
            applied++;
            if (applied % 1000 === 0) bar.update(applied);
          }
          db.exec("COMMIT");
        } catch (err) {
          if (db.inTransaction) db.exec("ROLLBACK");
          throw err;
        } finally {
          if (got.temporary) rmSync(got.path, { force: true });
        }
      }
    } finally {
      bar.end(applied);
      app.close();
    }
    if (target.seq !== undefined && app.lastSeq !== target.seq) {
      throw new UserError(`the segments end at seq ${app.lastSeq}, before the requested seq ${target.seq}`, "pick a seq inside the replicated range ('spl backup list --remote')");
    }
    const notes = [...plan.notes];
    if (target.timeMs !== undefined && !done && lastAt !== null && lastAt < timeCap) {
      notes.push(`the replicated records end at ${iso(lastAt * 1000)}, before ${iso(target.timeMs)}: restored everything there is`);
    }
    return {
      generation: plan.generation,
      base: plan.base.url,
      segments: used,
      segment_records: applied,
      restored_through: { seq: app.lastSeq, id: app.lastId, at: lastAt === null ? null : iso(lastAt * 1000) },
      target: describeTarget(target),
      notes,
    };
  } finally {
    db.close();
  }
}

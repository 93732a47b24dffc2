// Continuous replication's worker side (runs on its own thread, ship-worker.ts): reads committed
// records through its own read-only connection and ships them as segments (segments.ts), merges
// short segments into longer ones and applies retention (README "Continuous replication").
//
// - Only committed records are ever read (a separate connection sees only committed
//   transactions), so nothing is shipped before it is in hub.db (or its WAL) for good; the
//   daemon's commit path only writes two numbers into shared memory (commit-ring.ts).
// - A segment leaves at most sync_interval after the previous one started; when records are
//   waiting after a quiet spell it leaves at once. A backlog (after the remote was down) goes
//   out back to back, at most MAX_ROWS records or MAX_BYTES per segment.
// - A failed upload is retried after 1 s, 2 s, 4 s … (at most 30 s), each with ±25 % jitter.
// - Merging: once a window of 60 × sync_interval (1 min) has passed, the segments whose last
//   record falls in it become one segment; once a window of 3600 × sync_interval (1 h) has, its
//   segments become one. A merged segment is rebuilt from the local store (records are
//   append-only and content-addressed: it holds exactly what the short ones held), stored with
//   its .sha256, and only then are the short ones deleted. So a restore reads at most about
//   snapshot_every / 1 h + 60 + 60 segments.
import type { Database, Statement } from "bun:sqlite";
import type { HomePaths } from "../../paths";
import { readInstanceDid } from "../../instance";
import type { RecordRow } from "../../store/rows";
import { StoreReader } from "../../store/reader";
import { UserError } from "../../errors";
import { backoffMs } from "../../peer";
import { CommitRing } from "./commit-ring";
import type { OffsiteConfig } from "./config";
import { groupObjects, withMeta, type Tile } from "./listing";
import { remoteFolder } from "../instance-key";
import { openRemote, type Remote } from "./remote";
import type { ChainLookup } from "./credentials";
import { continuesGeneration, idAt, newGenerationName, readReplicaState, writeReplicaState, type ReplicaState } from "./replica-state";
import { applyRetention } from "./retention";
import { lineOf, recordLines, SEGMENT_SELECT, tileKey } from "./segments";
import { parseSum, sha256, SUM, sumText, Tally, zstdCompress, type ObjectMeta } from "./transfer";

export const MAX_ROWS = 20_000;
export const MAX_BYTES = 8 << 20;
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 30_000;
/** How often the newest seq is read from the store (writes by another connection, a backlog). */
const POLL_MS = 500;
/** Retention runs at every this many maintenance passes. */
const RETENTION_EVERY = 10;

export type ShipReport =
  | { type: "generation"; generation: string; folder: string; fresh: boolean; reason: string; through: number; waiting_since: number | null }
  | { type: "needs_snapshot"; generation: string }
  | { type: "shipping"; first: number; at: string }
  | { type: "shipped"; url: string; first: number; last: number; records: number; bytes: number; compressed_bytes: number; ms: number; lag_ms: number; at: string; waiting_since: number | null }
  | { type: "failed"; error: string; attempt: number; retry_in_ms: number; at: string; waiting_since: number | null }
  | { type: "compacted"; url: string; merged: number }
  | { type: "maintenance_failed"; error: string }
  | { type: "retention"; deleted: string[] };

const message = (err: unknown) => (err instanceof UserError ? err.oneLine : (err as Error)?.message ?? String(err));

export class Shipper {
  readonly db: Database;
  readonly remote: Remote;
  readonly folder: string;
  st!: ReplicaState;
  private readonly s: Record<"range" | "max" | "createdAt" | "count", Statement>;
  private reconciled = false;
  private failures = 0;
  private nextAt = 0;
  private polledMax = 0;
  private polledAt = 0;
  private maintaining = false;
  private passes = 0;
  readonly tierSecs: [number, number];

  constructor(
    private readonly paths: HomePaths,
    private readonly cfg: OffsiteConfig,
    private readonly ring: CommitRing,
    private readonly report: (r: ShipReport) => void,
    /** S3 credentials beyond the environment and s3.toml: the daemon's AWS chain, asked by message. */
    chain: ChainLookup,
  ) {
    this.db = StoreReader.open(paths.store, "shared").db;
    this.s = {
      range: this.db.prepare(`${SEGMENT_SELECT} WHERE seq > ? ORDER BY seq LIMIT ${MAX_ROWS}`),
      max: this.db.prepare("SELECT MAX(seq) AS m FROM records"),
      createdAt: this.db.prepare("SELECT created_at AS t FROM records WHERE seq = ?"),
      count: this.db.prepare("SELECT COUNT(*) AS n, MIN(created_at) AS a, MAX(created_at) AS b FROM records WHERE seq > ? AND seq <= ?"),
    };
    this.folder = remoteFolder(readInstanceDid(this.db), paths.home);
    this.remote = openRemote(cfg.url, paths, cfg, chain);
    this.tierSecs = [60 * cfg.syncIntervalSecs, 3600 * cfg.syncIntervalSecs];
  }

  close(): void {
    for (const s of Object.values(this.s)) s.finalize();
    this.db.close();
  }

  private maxSeq(): number {
    return (this.s.max.get() as { m: number | null }).m ?? 0;
  }

  /** Continues the generation replication.json describes when this store is the one it describes, else starts one. */
  start(): void {
    const st = readReplicaState(this.paths);
    const max = this.maxSeq();
    let reason = "";
    if (!st) reason = "no replication state in this home";
    else if (st.url !== this.cfg.url || st.folder !== this.folder) reason = `the state names ${st.url}/${st.folder}`;
    else if (st.through > max || idAt(this.db, st.through) !== st.through_id || !continuesGeneration(this.db, st)) reason = "this store is not the one the generation replicated (restored or replaced)";
    if (!reason) {
      this.st = st!;
      this.report({ type: "generation", generation: st!.generation, folder: this.folder, fresh: false, reason: "continued", through: st!.through, waiting_since: this.waitingSince() });
      return;
    }
    this.newGeneration(reason, max);
  }

  private newGeneration(reason: string, max = this.maxSeq()): void {
    const id = idAt(this.db, max);
    this.st = {
      url: this.cfg.url,
      folder: this.folder,
      generation: newGenerationName(),
      start_seq: max,
      start_id: id,
      through: max,
      through_id: id,
      through_at: max ? ((this.s.createdAt.get(max) as { t: number } | null)?.t ?? null) : null,
      shipped_at: null,
      last_error: null,
    };
    writeReplicaState(this.paths, this.st);
    this.reconciled = true; // nothing of a new generation is on the remote yet
    this.report({ type: "generation", generation: this.st.generation, folder: this.folder, fresh: true, reason, through: max, waiting_since: null });
    this.report({ type: "needs_snapshot", generation: this.st.generation });
  }

  /**
   * Once per start, against the remote: segments shipped after replication.json was last written
   * (a kill between the upload and the state write) move the watermark up when this store holds
   * the same records; a generation without any snapshot gets one.
   */
  private async reconcile(): Promise<void> {
    if (this.reconciled) return;
    const gen = this.st.generation;
    const [f] = groupObjects(this.remote, await this.remote.list(`${this.folder}/`)).filter((x) => x.folder === this.folder);
    const tiles = (f?.tiles ?? []).filter((t) => t.generation === gen && t.checksum);
    const top = tiles.reduce<Tile | null>((a, t) => (!a || t.last > a.last ? t : a), null);
    if (top && top.last > this.st.through) {
      const meta = parseSum(new TextDecoder().decode(await this.remote.get(top.key + SUM))).meta;
      if (meta?.last_id && idAt(this.db, top.last) === meta.last_id) this.advance(top.last, meta.last_id, meta.last_at ?? null);
      else return this.newGeneration(`the remote's segment ${top.first}-${top.last} does not match this store`);
    }
    const copies = await withMeta(this.remote, (f?.copies ?? []).filter((c) => c.checksum).slice(0, 20));
    if (!copies.some((c) => c.meta?.generation === gen)) this.report({ type: "needs_snapshot", generation: gen });
    this.reconciled = true;
  }

  private advance(through: number, id: string | null, at: number | null): void {
    this.st = { ...this.st, through, through_id: id, through_at: at, shipped_at: new Date().toISOString(), last_error: null };
    writeReplicaState(this.paths, this.st);
  }

  /** When the oldest record not yet shipped was accepted (ms, to the second), or null when none waits. */
  private waitingSince(): number | null {
    const r = this.s.createdAt.get(this.st.through + 1) as { t: number } | null;
    return r ? r.t * 1000 : null;
  }

  /** Whether records wait to be shipped and the next attempt is due. */
  due(now = Date.now()): boolean {
    if (now < this.nextAt) return false;
    if (this.ring.latest > this.st.through) return true;
    if (now - this.polledAt >= POLL_MS) (this.polledAt = now), (this.polledMax = this.maxSeq());
    return this.polledMax > this.st.through;
  }

  /** Ships one segment; answers whether records are left. Failures are reported and scheduled. */
  async shipOnce(): Promise<boolean> {
    const started = Date.now();
    const t0 = performance.now();
    try {
      await this.reconcile();
      const rows = this.s.range.all(this.st.through) as RecordRow[];
      if (!rows.length) {
        this.polledMax = this.st.through;
        return false;
      }
      let text = "";
      let n = 0;
      for (const r of rows) {
        const line = lineOf(r);
        if (n && text.length + line.length > MAX_BYTES) break;
        text += line;
        n++;
      }
      const first = this.st.through + 1;
      const lastRow = rows[n - 1]!;
      this.report({ type: "shipping", first, at: new Date(started).toISOString() });
      const raw = new TextEncoder().encode(text);
      const data = await Bun.zstdCompress(raw, { level: 3 });
      const name = { generation: this.st.generation, first, last: lastRow.seq };
      const key = `${this.folder}/${tileKey(name)}`;
      const meta: ObjectMeta = {
        bytes: raw.length,
        records: n,
        first_seq: first,
        last_seq: lastRow.seq,
        prev_id: this.st.through_id,
        last_id: lastRow.id,
        first_at: rows[0]!.created_at,
        last_at: lastRow.created_at,
        generation: this.st.generation,
      };
      try {
        await this.remote.put(key, data);
        await this.remote.put(key + SUM, new TextEncoder().encode(sumText(sha256(data), key.slice(key.lastIndexOf("/") + 1), meta)));
      } catch (err) {
        await this.remote.delete(key).catch(() => {});
        throw err;
      }
      this.advance(lastRow.seq, lastRow.id, lastRow.created_at);
      this.failures = 0;
      const done = Date.now();
      const committedAt = this.ring.commitTime(first) ?? rows[0]!.created_at * 1000;
      this.report({
        type: "shipped",
        url: this.remote.urlOf(key),
        first,
        last: lastRow.seq,
        records: n,
        bytes: raw.length,
        compressed_bytes: data.length,
        ms: Math.round(performance.now() - t0),
        lag_ms: Math.max(0, done - committedAt),
        at: new Date(done).toISOString(),
        waiting_since: this.waitingSince(),
      });
      const more = n < rows.length || rows.length === MAX_ROWS;
      this.nextAt = more ? 0 : started + this.cfg.syncIntervalSecs * 1000;
      return more;
    } catch (err) {
      this.failures++;
      const wait = backoffMs(this.failures, MAX_RETRY_MS, FIRST_RETRY_MS);
      this.nextAt = Date.now() + wait;
      const at = new Date().toISOString();
      const error = message(err);
      this.st = { ...this.st, last_error: { at, message: error } };
      try {
        writeReplicaState(this.paths, this.st);
      } catch {}
      this.report({ type: "failed", error, attempt: this.failures, retry_in_ms: wait, at, waiting_since: this.waitingSince() });
      return false;
    }
  }

  /** Merges short segments and applies retention (one pass at a time; failures are reported). */
  async maintain(nowMs = Date.now()): Promise<void> {
    if (this.maintaining || !this.reconciled) return;
    this.maintaining = true;
    try {
      await this.compact(nowMs);
      if (this.passes++ % RETENTION_EVERY === 0) {
        const deleted = await applyRetention(this.remote, this.folder, this.cfg.keepDays, nowMs);
        if (deleted.length) this.report({ type: "retention", deleted });
      }
    } catch (err) {
      this.report({ type: "maintenance_failed", error: message(err) });
    } finally {
      this.maintaining = false;
    }
  }

  private async compact(nowMs: number): Promise<void> {
    const gen = this.st.generation;
    const [f] = groupObjects(this.remote, await this.remote.list(`${this.folder}/${"segments"}/${gen}/`)).filter((x) => x.folder === this.folder);
    if (!f) return;
    const staleMs = 2 * this.tierSecs[0] * 1000;
    const complete = f.tiles.filter((t) => t.checksum);
    for (const t of f.tiles) {
      const covered = complete.some((o) => o !== t && o.first <= t.first && o.last >= t.last && (o.first < t.first || o.last > t.last));
      // An upload that never got its checksum, or segments a merge replaced (a kill before the delete).
      if (covered || (!t.checksum && nowMs - t.modifiedMs > staleMs)) await this.drop(t);
    }
    let tiles = complete.filter((t) => !complete.some((o) => o !== t && o.first <= t.first && o.last >= t.last && (o.first < t.first || o.last > t.last)));
    tiles = tiles.filter((t) => t.last <= this.st.through).sort((a, b) => a.first - b.first);
    for (const w of [this.tierSecs[1], this.tierSecs[0]]) {
      const current = Math.floor(nowMs / 1000 / w);
      const groups = new Map<number, Tile[]>();
      for (const t of tiles) {
        const at = (this.s.createdAt.get(t.last) as { t: number } | null)?.t;
        if (at === undefined) continue;
        const k = Math.floor(at / w);
        if (k < current) (groups.get(k) ?? groups.set(k, []).get(k)!).push(t);
      }
      const merged = new Set<Tile>();
      for (const group of groups.values()) {
        // Contiguous runs of two or more.
        let run: Tile[] = [];
        const flush = async () => {
          if (run.length >= 2) {
            await this.merge(run);
            for (const t of run) merged.add(t);
          }
          run = [];
        };
        for (const t of group) {
          if (run.length && run[run.length - 1]!.last + 1 !== t.first) await flush();
          run.push(t);
        }
        await flush();
      }
      if (merged.size) {
        const [g] = groupObjects(this.remote, await this.remote.list(`${this.folder}/segments/${gen}/`)).filter((x) => x.folder === this.folder);
        tiles = (g?.tiles ?? []).filter((t) => t.checksum && t.last <= this.st.through).sort((a, b) => a.first - b.first);
      }
    }
  }

  /** One segment for the records of `run` (rebuilt from the store), then the short ones go. */
  private async merge(run: Tile[]): Promise<void> {
    const first = run[0]!.first;
    const last = run[run.length - 1]!.last;
    const name = { generation: this.st.generation, first, last };
    const key = `${this.folder}/${tileKey(name)}`;
    const c = this.s.count.get(first - 1, last) as { n: number; a: number | null; b: number | null };
    const raw = new Tally();
    const sent = new Tally();
    await this.remote.putStream(key, sent.tap(zstdCompress(raw.tap(recordLines(this.db, first - 1, last)))));
    const meta: ObjectMeta = {
      bytes: raw.bytes,
      records: c.n,
      first_seq: first,
      last_seq: last,
      prev_id: idAt(this.db, first - 1),
      last_id: idAt(this.db, last),
      first_at: c.a ?? undefined,
      last_at: c.b ?? undefined,
      generation: this.st.generation,
    };
    await this.remote.put(key + SUM, new TextEncoder().encode(sumText(sent.digest(), key.slice(key.lastIndexOf("/") + 1), meta)));
    for (const t of run) await this.drop(t);
    this.report({ type: "compacted", url: this.remote.urlOf(key), merged: run.length });
  }

  private async drop(t: Tile): Promise<void> {
    await this.remote.delete(t.key + SUM);
    await this.remote.delete(t.key);
  }
}

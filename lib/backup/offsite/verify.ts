// Every record of a store file restored from off-host checked against its content: the id is
// recomputed from the canonical envelope (lib/records/id.ts), so a copy whose checksum file was
// replaced along with it still cannot bring back an altered record.
import type { Database } from "bun:sqlite";
import { UserError } from "../../errors";
import { canonicalJson } from "../../records/canonical";
import { hashedJson, sha256Hex } from "../../records/id";
import type { Phases } from "../../progress/phase";

const PAGE = 5000;

/** Checks every record with seq in (after, ∞); answers how many were checked. */
export async function verifyRecordIds(db: Database, name: string, total: number, phases: Phases, after = 0): Promise<number> {
  const stmt = db.prepare("SELECT seq, id, thread, actor, act, clock, data_type, parents, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?");
  const bar = phases.start("verify record ids", total);
  let n = 0;
  try {
    for (let from = after; ; ) {
      const rows = stmt.all(from, PAGE) as { seq: number; id: string; thread: string; actor: string; act: string; clock: number; data_type: string; parents: string; body: string }[];
      for (const r of rows) {
        let id = "";
        try {
          id = sha256Hex(hashedJson({ act: r.act as any, actor: r.actor, clock: r.clock, data_type: r.data_type as any, parents: JSON.parse(r.parents), thread: r.thread }, canonicalJson(JSON.parse(r.body), 1)));
        } catch {}
        if (id !== r.id) {
          throw new UserError(
            `${name}: record ${r.seq} has id ${r.id.slice(0, 16)}… but its content ${id ? `hashes to ${id.slice(0, 16)}…` : "is not a valid record"} — refused, nothing was replaced`,
            "the copy was altered or damaged: restore another one ('spl backup list --remote')",
          );
        }
      }
      n += rows.length;
      bar.update(n);
      if (rows.length < PAGE) break;
      from = rows[rows.length - 1]!.seq;
      if (n % (PAGE * 20) === 0) await Promise.resolve();
    }
  } finally {
    bar.end(n);
    stmt.finalize();
  }
  return n;
}

// Which records a consumer (an engine fold) wants, said once and usable two ways: as a predicate
// on a record just committed or inserted (the fold index), and as SQL over the records table
// (the fold index's catch-up scans, RecordStore.scanMatching).
import type { Envelope } from "./types";

export interface RecordFilter {
  act?: string;
  /** The record is on one of these threads. */
  threads?: readonly string[];
  /** The body has this top-level field, and it is not null. */
  bodyField?: string;
}

const FIELD_NAME = /^[A-Za-z0-9_]+$/;

/** Whether `f` matches a record (stored, or an envelope about to be inserted: the fold index). */
export function matchesFilter(rec: Pick<Envelope, "act" | "thread" | "body">, f: RecordFilter): boolean {
  if (f.act !== undefined && rec.act !== f.act) return false;
  if (f.threads !== undefined && !f.threads.includes(rec.thread)) return false;
  if (f.bodyField !== undefined && (rec.body?.[f.bodyField] ?? null) === null) return false;
  return true;
}

/**
 * One predicate for "any of `filters` matches", for a check on every insert (the fold index):
 * filters are grouped by act, so a record meets only those of its own act and the act-less ones.
 */
export function matchesAny(filters: readonly RecordFilter[]): (rec: Pick<Envelope, "act" | "thread" | "body">) => boolean {
  const byAct = new Map<string, RecordFilter[]>();
  const anyAct: RecordFilter[] = [];
  for (const f of filters) {
    if (f.act === undefined) anyAct.push(f);
    else byAct.set(f.act, [...(byAct.get(f.act) ?? []), f]);
  }
  return (rec) => {
    const own = byAct.get(rec.act);
    if (own) for (const f of own) if (matchesFilter(rec, f)) return true;
    for (const f of anyAct) if (matchesFilter(rec, f)) return true;
    return false;
  };
}

/** The filter as a SQL condition over the records table, with its parameters. */
export function filterSql(f: RecordFilter): { sql: string; params: string[] } {
  const sql: string[] = [];
  const params: string[] = [];
  if (f.act !== undefined) sql.push("act = ?"), params.push(f.act);
  if (f.threads !== undefined) {
    sql.push(f.threads.length ? `thread IN (${f.threads.map(() => "?").join(", ")})` : "0");
    params.push(...f.threads);
  }
  if (f.bodyField !== undefined) {
    if (!FIELD_NAME.test(f.bodyField)) throw new Error(`bodyField must be a plain field name, got ${JSON.stringify(f.bodyField)}`);
    // instr() skips most bodies without parsing them; json_extract() makes it exact.
    sql.push("instr(body, ?) > 0 AND json_extract(body, ?) IS NOT NULL");
    params.push(`"${f.bodyField}"`, `$.${f.bodyField}`);
  }
  return { sql: sql.length ? `(${sql.join(" AND ")})` : "1", params };
}

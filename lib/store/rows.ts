// The records table's row shape and its decoding into a StoredRecord.
import type { StoredRecord } from "../records/types";

export interface RecordRow {
  seq: number;
  id: string;
  thread: string;
  actor: string;
  act: string;
  clock: number;
  data_type: string;
  judged_by: string | null;
  parents: string;
  body: string;
  created_at: number;
}

export const COLUMNS = "seq, id, thread, actor, act, clock, data_type, judged_by, parents, body, created_at";

export function rowToRecord(r: RecordRow): StoredRecord {
  return {
    id: r.id,
    parents: JSON.parse(r.parents),
    thread: r.thread,
    actor: r.actor,
    act: r.act as StoredRecord["act"],
    body: JSON.parse(r.body),
    clock: r.clock,
    data_type: r.data_type as StoredRecord["data_type"],
    judged_by: r.judged_by,
    sequence: r.seq,
    created_at: r.created_at,
  };
}

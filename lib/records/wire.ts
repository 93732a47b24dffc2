// The JSON shape of a record on the API: {"object":"record","id",...envelope,sequence,created_at}.
import type { StoredRecord } from "./types";

export function toWire(r: StoredRecord) {
  return {
    object: "record" as const,
    id: r.id,
    parents: r.parents,
    thread: r.thread,
    actor: r.actor,
    act: r.act,
    body: r.body,
    clock: r.clock,
    data_type: r.data_type,
    judged_by: r.judged_by,
    sequence: r.sequence,
    created_at: r.created_at,
  };
}

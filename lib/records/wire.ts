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

/**
 * toWire(r) as JSON text, built directly: the ingest answer reuses the body's canonical JSON
 * (already computed for the id) instead of serialising the body a second time.
 */
export function wireJson(r: StoredRecord, bodyJson: string = JSON.stringify(r.body)): string {
  // id is hex, act and data_type are from closed sets: nothing in them needs escaping.
  return (
    `{"object":"record","id":"${r.id}","parents":${JSON.stringify(r.parents)},"thread":${JSON.stringify(r.thread)}` +
    `,"actor":${JSON.stringify(r.actor)},"act":"${r.act}","body":${bodyJson},"clock":${r.clock},"data_type":"${r.data_type}"` +
    `,"judged_by":${JSON.stringify(r.judged_by)},"sequence":${r.sequence},"created_at":${r.created_at}}`
  );
}

// Record ids: lowercase hex SHA-256 of the canonical JSON of the seven hashed fields
// {act, actor, body, clock, data_type, parents, thread}. judged_by is deliberately not hashed.
import type { Envelope } from "./types";
import { canonicalJson } from "./canonical";

/**
 * The canonical JSON of the hashed fields. The body is passed already canonicalised so the
 * ingest path canonicalises it once; the keys below are written in their sorted order.
 */
export function hashedJson(env: Omit<Envelope, "body" | "judged_by">, bodyJson: string): string {
  let parents = "[";
  for (let i = 0; i < env.parents.length; i++) parents += (i ? "," : "") + JSON.stringify(env.parents[i]);
  parents += "]";
  return (
    `{"act":${JSON.stringify(env.act)},"actor":${JSON.stringify(env.actor)},"body":${bodyJson}` +
    `,"clock":${env.clock},"data_type":${JSON.stringify(env.data_type)},"parents":${parents}` +
    `,"thread":${JSON.stringify(env.thread)}}`
  );
}

export function sha256Hex(text: string): string {
  // The one-shot form: half the cost of a CryptoHasher per record.
  return Bun.SHA256.hash(text, "hex") as string;
}

export function recordId(env: Envelope): string {
  return sha256Hex(hashedJson(env, canonicalJson(env.body)));
}

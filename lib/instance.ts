// Instance identity: a genesis LEARN on th_instance; the DID is content-addressed from
// that record's id, so it travels with hub.db and a restored copy keeps its identity.
import { randomBytes } from "node:crypto";
import type { Database } from "bun:sqlite";
import { prepareRecord } from "./records/envelope";
import type { RecordStore } from "./store/records";
import { StoreReader } from "./store/reader";

import { INSTANCE_THREAD } from "./records/reserved-threads";
export { INSTANCE_THREAD };
export const ENGINE_ACTOR = "did:sync:system:engine";
const DID_PREFIX = "did:sync:instance:";

export function didFromGenesisId(id: string): string {
  return DID_PREFIX + id.slice(0, 16);
}

/** The 16-hex tail used in backup directory names (instance-<tail>). */
export function didTail(did: string): string {
  return did.slice(DID_PREFIX.length);
}

/** The instance DID recorded in an open store, or null when it was never bootstrapped. */
export function readInstanceDid(db: Database | StoreReader): string | null {
  const reader = db instanceof StoreReader ? db : new StoreReader(db);
  if (!reader.hasRecords()) return null;
  const genesis = reader.firstLearnWithTopic(INSTANCE_THREAD, ENGINE_ACTOR, "instance_bootstrap");
  return genesis ? didFromGenesisId(genesis) : null;
}

/** Returns the instance DID, writing the genesis record first if the store has none. */
export function ensureInstanceDid(store: RecordStore): { did: string; created: boolean } {
  const existing = readInstanceDid(store);
  if (existing) return { did: existing, created: false };
  const now = Math.floor(Date.now() / 1000);
  const p = prepareRecord({
    thread: INSTANCE_THREAD,
    actor: ENGINE_ACTOR,
    act: "LEARN",
    body: { topic: "instance_bootstrap", nonce: randomBytes(16).toString("hex"), created_at: new Date().toISOString() },
  });
  const { record } = store.transaction(() => store.insert(p, now));
  return { did: didFromGenesisId(record.id), created: true };
}

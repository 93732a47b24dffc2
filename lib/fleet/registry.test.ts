// The registry's classification and fold, on records as the store gives them.
import { expect, test } from "bun:test";
import { classify, FleetRegistry } from "./registry";
import type { StoredRecord } from "../records/types";

test("age since the last beat: ≤ 2N live, ≤ 3N stale, beyond archived; a draining member skips stale", () => {
  expect([0, 2000, 2001, 3000, 3001].map((ms) => classify(ms, 1))).toEqual(["live", "live", "stale", "stale", "archived"]);
  expect([2000, 2500, 3001].map((ms) => classify(ms, 1, true))).toEqual(["live", "archived", "archived"]);
  expect(classify(29_000, 15)).toBe("live");
  expect(classify(31_000, 15)).toBe("stale");
});

const beat = (did: string, name: string, sent: number, health = "healthy"): StoredRecord =>
  ({ id: `${did}-${sent}`, thread: "th_instance_registry", actor: did, act: "DO", clock: sent, parents: [], data_type: null, judged_by: null, created_at: sent, sequence: sent, body: { topic: "heartbeat", instance_did: did, name, endpoint: "http://x", health, sent_at_unix: sent } }) as unknown as StoredRecord;

test("the latest beat per DID wins, an older one never rolls it back, and a shared name is flagged on both", () => {
  const r = new FleetRegistry();
  expect(r.apply(beat("did:a", "worker-a", 10), 10_000)).toBe(true);
  expect(r.apply(beat("did:a", "worker-a", 12, "draining"), 12_000)).toBe(true);
  expect(r.apply(beat("did:a", "worker-a", 11), 13_000)).toBe(false);
  expect(r.apply(beat("did:b", "worker-a", 12), 12_000)).toBe(true);
  const v = r.view(1, 12_500);
  expect(v.map((m) => [m.did, m.health, m.status, m.name_clash])).toEqual([
    ["did:a", "draining", "live", true],
    ["did:b", "healthy", "live", true],
  ]);
  expect(r.apply({ ...beat("did:c", "c", 1), act: "KNOW" } as StoredRecord, 0)).toBe(false);
});

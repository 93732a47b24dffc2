// The registry of membership events, liveness in memory, and epochs, on records as the store gives them.
import { expect, test } from "bun:test";
import { configEpochs, EpochBook } from "./epoch";
import { Liveness, type Beat } from "./liveness";
import { classify, FleetRegistry } from "./registry";
import type { StoredRecord } from "../records/types";

const SHA = "a".repeat(64);
let seq = 0;
const event = (body: Record<string, unknown>, at = 100, act = "LEARN"): StoredRecord =>
  ({ id: `e${++seq}`, thread: "th_instance_registry", actor: "did:sync:instance:c", act, clock: seq, parents: [], data_type: null, judged_by: null, created_at: at, sequence: seq, body }) as unknown as StoredRecord;
const joined = (did: string, name: string, cred = `c-${did}`) => event({ topic: "joined", did, name, endpoint: `http://${name}:9100`, version: "0.1.0", credential_id: cred, secret_sha256: SHA });
const beat = (did: string, health = "healthy"): Beat => ({ did, name: "", endpoint: "", role: "worker", version: "0.1.0", uptime_secs: 1, active_dispatches: 0, store_records: 1, health, sent_at_unix: 1 });

test("age since the last beat: ≤ 2N live, ≤ 3N stale, beyond archived; a draining member skips stale", () => {
  expect([0, 2000, 2001, 3000, 3001].map((ms) => classify(ms, 1))).toEqual(["live", "live", "stale", "stale", "archived"]);
  expect([2000, 2500, 3001].map((ms) => classify(ms, 1, true))).toEqual(["live", "archived", "archived"]);
  expect(classify(29_000, 15)).toBe("live");
  expect(classify(31_000, 15)).toBe("stale");
});

test("joined, changed, stale, back and forgotten fold into members; the credential follows the latest join; beats of earlier versions are not events", () => {
  const r = new FleetRegistry();
  expect(r.apply(joined("did:a", "worker-a"))).toBe(true);
  expect(r.apply(joined("did:b", "worker-b"))).toBe(true);
  expect(r.byCredentialId("c-did:a")?.name).toBe("worker-a");
  expect(r.apply(event({ topic: "changed", did: "did:a", endpoint: "https://a:9100" }))).toBe(true);
  expect(r.get("did:a")?.endpoint).toBe("https://a:9100");
  expect(r.apply(event({ topic: "stale", did: "did:b" }, 200))).toBe(true);
  expect(r.get("did:b")).toMatchObject({ status: "stale", since: 200 });
  r.apply(event({ topic: "back", did: "did:b" }, 300));
  expect(r.get("did:b")?.status).toBe("live");
  // A rejoin replaces the credential: the old one is no longer in force.
  r.apply(joined("did:a", "worker-a", "c-new"));
  expect(r.byCredentialId("c-did:a")).toBeUndefined();
  expect(r.byCredentialId("c-new")?.did).toBe("did:a");
  // Forgotten: gone from the members, its credential revoked, its name free.
  r.apply(event({ topic: "forgotten", did: "did:b" }));
  expect(r.members().map((m) => m.did)).toEqual(["did:a"]);
  expect(r.byCredentialId("c-did:b")).toBeUndefined();
  expect(r.holderOf("worker-b")).toBeUndefined();
  expect(r.apply(event({ topic: "heartbeat", instance_did: "did:z" }, 100, "DO"))).toBe(false);
});

test("elected: the highest epoch wins; join tokens expire, and a retired one at the end of its grace", () => {
  const r = new FleetRegistry();
  r.apply(event({ topic: "elected", did: "did:c1", endpoint: "http://c1", epoch: 1 }));
  r.apply(event({ topic: "elected", did: "did:a", endpoint: "http://a", epoch: 2 }));
  expect(r.apply(event({ topic: "elected", did: "did:c1", endpoint: "http://c1", epoch: 1 }))).toBe(false);
  expect(r.top).toEqual({ epoch: 2, did: "did:a", endpoint: "http://a" });
  r.apply(event({ topic: "join_token", token_id: "t1", secret_sha256: SHA, expires_at: 5000 }));
  r.apply(event({ topic: "join_token_retired", token_id: "t1", valid_until: 1200 }));
  expect(r.joinToken("t1")?.expiresAt).toBe(1200);
});

test("liveness: a beat is memory only; events are written for class changes and moved endpoints, never per beat", () => {
  const r = new FleetRegistry();
  r.apply(joined("did:c", "coordinator"));
  r.apply(joined("did:a", "worker-a"));
  const l = new Liveness(r, 1);
  l.assumeAll(0);
  expect(l.events(1000, "did:c")).toEqual([]);
  for (let t = 0; t < 100; t++) l.beat(beat("did:a"), t * 1000);
  expect(l.events(100_000, "did:c")).toEqual([]);
  expect(l.events(101_500, "did:c")).toEqual([{ topic: "stale", did: "did:a" }]);
  r.apply(event({ topic: "stale", did: "did:a" }));
  expect(l.events(102_500, "did:c")).toEqual([{ topic: "archived", did: "did:a" }]);
  r.apply(event({ topic: "archived", did: "did:a" }));
  l.beat({ ...beat("did:a"), endpoint: "https://new:9100" }, 200_000);
  expect(l.events(200_000, "did:c")).toEqual([{ topic: "back", did: "did:a" }, { topic: "changed", did: "did:a", fields: { endpoint: "https://new:9100" } }]);
  // A draining member goes straight to archived; the coordinator itself is always live.
  r.apply(event({ topic: "back", did: "did:a" }));
  r.apply(event({ topic: "changed", did: "did:a", endpoint: "https://new:9100" }));
  l.beat({ ...beat("did:a", "draining"), endpoint: "https://new:9100" }, 300_000);
  expect(l.events(302_500, "did:c")).toEqual([{ topic: "archived", did: "did:a" }]);
  const v = l.view(302_500, { did: "did:c", beat: () => beat("did:c") });
  expect(v.map((m) => [m.did, m.role, m.status])).toEqual([
    ["did:a", "worker", "archived"],
    ["did:c", "coordinator", "live"],
  ]);
});

test("epochs: promotion by config takes max + 1, a restart keeps its own; a higher epoch deposes a coordinator, a worker follows it", async () => {
  expect(await configEpochs.elect({ self: { did: "did:a", endpoint: "http://a" }, top: null })).toEqual({ epoch: 1, did: "did:a", endpoint: "http://a" });
  expect(await configEpochs.elect({ self: { did: "did:a", endpoint: "http://a2" }, top: { epoch: 3, did: "did:a", endpoint: "http://a" } })).toEqual({ epoch: 3, did: "did:a", endpoint: "http://a2" });
  expect((await configEpochs.elect({ self: { did: "did:b", endpoint: "http://b" }, top: { epoch: 3, did: "did:a", endpoint: "http://a" } })).epoch).toBe(4);
  const deposed: number[] = [];
  const c = new EpochBook({ deposed: (k) => deposed.push(k.epoch) });
  c.hold({ epoch: 1, did: "did:c1", endpoint: "http://c1" });
  expect([c.coordinating(), deposed]).toEqual([true, []]);
  c.observe({ epoch: 2, url: "http://a" });
  expect([c.coordinating(), deposed, c.deposedBy()]).toEqual([false, [2], { epoch: 2, did: null, url: "http://a" }]);
  c.observe({ epoch: 2, did: "did:a" });
  expect(deposed).toEqual([2]);
  const w = new EpochBook({ deposed: () => {} });
  expect(w.observe({ epoch: 1, did: "did:c1", url: "http://c1" })).toBe(true);
  expect(w.observe({ epoch: 2, did: "did:a", url: "http://a" })).toBe(true);
  expect(w.observe({ epoch: 1, did: "did:c1", url: "http://c1" })).toBe(false);
  expect(w.current).toEqual({ epoch: 2, did: "did:a", url: "http://a" });
  expect([w.isCoordinator("did:a", 2), w.isCoordinator("did:c1", 1), w.isCoordinator("did:a", 1)]).toEqual([true, false, false]);
});

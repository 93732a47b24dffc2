// lib/etcd/client.ts against a real three-member etcd cluster (test/etcd.ts): leases, the
// create-if-absent election transaction, watches, and a member going away. Skips, saying why,
// where etcd is not installed.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { EtcdClient, EtcdError, type WatchEvent } from "../lib/etcd/client";
import { EtcdCluster } from "./etcd";
import { waitFor } from "./harness";

const why = EtcdCluster.unavailable();
let etcd: EtcdCluster;
beforeAll(async () => {
  if (!why) etcd = await EtcdCluster.start(3);
}, 120_000);
afterAll(() => etcd?.destroy());

describe.skipIf(why !== null)(`etcd client${why ? ` (skipped: ${why})` : ""}`, () => {
  test("one campaigner wins a key with a lease; the winning revision orders elections; the key goes with its lease", async () => {
    const a = new EtcdClient({ endpoints: etcd.endpoints });
    const b = new EtcdClient({ endpoints: [...etcd.endpoints].reverse() });
    // 3 s leases renewed every 0.7 s: a renewal late by 2 s on a busy machine still holds the key.
    const la = await a.grant(3);
    const lb = await b.grant(3);
    const campaign = (c: EtcdClient, lease: string, who: string) => c.txn([{ key: "/t/coordinator", target: "CREATE", createRevision: 0 }], [{ put: { key: "/t/coordinator", value: who, lease } }]);
    const [ra, rb] = await Promise.all([campaign(a, la.id, "a"), campaign(b, lb.id, "b")]);
    expect([ra.succeeded, rb.succeeded].filter(Boolean).length).toBe(1);
    const won = (await a.get("/t/coordinator"))!;
    expect(won.createRevision).toBe((ra.succeeded ? ra : rb).revision);
    // The winner keeps its lease alive a while; the key stays.
    const winner = ra.succeeded ? { c: a, lease: la.id } : { c: b, lease: lb.id };
    for (let i = 0; i < 5; i++) {
      expect(await winner.c.keepAlive(winner.lease)).toBeGreaterThan(0);
      await Bun.sleep(700); // the renewal pace (past the lease's 3 s), not a wait for an event
    }
    expect((await a.get("/t/coordinator"))?.value).toBe(ra.succeeded ? "a" : "b");
    // It stops renewing: the key goes, and the next campaign wins at a higher revision.
    await waitFor("the unrenewed lease's key to go", () => a.get("/t/coordinator"), { stepMs: 200, until: (kv) => kv === null });
    const again = await campaign(b, (await b.grant(5)).id, "b2");
    expect(again.succeeded).toBe(true);
    expect(again.revision).toBeGreaterThan(won.createRevision);
  }, 60_000);

  test("a watch sees puts and deletes under a prefix, from a given revision", async () => {
    const c = new EtcdClient({ endpoints: etcd.endpoints });
    const from = (await c.put("/w/x", "1")) + 1;
    const seen: WatchEvent[] = [];
    const stop = new AbortController();
    const watching = c.watch("/w/", { prefix: true, fromRevision: from, signal: stop.signal }, (evs) => seen.push(...evs));
    await c.put("/w/y", "2");
    await c.delete("/w/x");
    await waitFor("the watch to see the put and the delete", () => seen.map((e) => `${e.type} ${e.kv.key}`), { until: (s) => s.length >= 2 });
    stop.abort();
    await watching;
    expect(seen.map((e) => [e.type, e.kv.key])).toEqual([
      ["PUT", "/w/y"],
      ["DELETE", "/w/x"],
    ]);
  });

  test("a member that is down is skipped; with every endpoint down the error says unreachable", async () => {
    etcd.kill(0);
    // If m0 led, the others elect a leader first (2.5 s election timeout): wait for it, so the
    // client's 1.5 s per endpoint is not raced against the election.
    await etcd.healthy();
    const c = new EtcdClient({ endpoints: etcd.endpoints, timeoutMs: 1500 });
    expect(await c.put("/m/k", "v")).toBeGreaterThan(0);
    await etcd.restart(0);
    const dead = new EtcdClient({ endpoints: ["http://127.0.0.1:1"], timeoutMs: 500 });
    const err = await dead.get("/m/k").catch((e) => e);
    expect(err).toBeInstanceOf(EtcdError);
    expect(err.unreachable).toBe(true);
    expect(err.message).toContain("etcd is unreachable");
  }, 90_000);
});

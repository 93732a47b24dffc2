// Membership keys (README "Automatic failover with etcd"): each member keeps P/members/<did> on its
// lease (election.ts puts it). While this member coordinates it watches them: a key that goes
// (the member stopped renewing: dead, or cut off from etcd) makes the member stale at once and
// archived an interval later unless it beats again, the runbook's thresholds counted from the lapse.
// When it takes office, every member it knows without a key (the coordinator it replaces, above
// all) is lapsed at once (present()), rather than given the window a restarted coordinator gives
// everyone: no child is sent to a dead member in the first intervals of a term.
import type { EtcdClient } from "../etcd/client";
import type { Keys } from "./keys";

/** The members holding a key now, and the revision to watch from. */
export async function present(etcd: EtcdClient, k: Keys): Promise<{ dids: Set<string>; revision: number }> {
  const { kvs, revision } = await etcd.list(k.members);
  return { dids: new Set(kvs.map((kv) => kv.key.slice(k.members.length))), revision };
}

/** Watches the membership keys from `from` until the returned controller aborts; `lapsed` gets each DID whose key went. */
export function watchMembers(etcd: EtcdClient, k: Keys, from: number, lapsed: (did: string) => void): AbortController {
  const abort = new AbortController();
  void (async () => {
    while (!abort.signal.aborted) {
      try {
        if (!from) from = (await etcd.list(k.members)).revision + 1;
        const last = await etcd.watch(k.members, { prefix: true, fromRevision: from, signal: abort.signal }, (events) => {
          for (const e of events) if (e.type === "DELETE") lapsed(e.kv.key.slice(k.members.length));
        });
        from = Math.max(from, last + 1);
      } catch {
        from = 0; // compacted, or etcd does not answer: list again
      }
      if (!abort.signal.aborted) await Bun.sleep(500);
    }
  })();
  return abort;
}

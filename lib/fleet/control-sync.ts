// How the fleet's own records reach every member (ARCHITECTURE.md "The fleet protocol"):
//   th_fleet_control  the coordinator forwards each new record to the live members at once; a
//                     worker forwards the ones written on it (spl kill there: applied locally at
//                     once, as the member's DID) to the coordinator, now and after each
//                     acknowledged beat until it holds them
//   th_instance_registry  members copy the coordinator's events
// and after a beat, a member whose copy of either thread differs from the coordinator's (each
// answer carries an order-independent digest of both) pulls what it lacks. Records travel as they
// are (content-addressed: a copy already held is a duplicate), and a pulled record passes the same
// write path and checks as a pushed one, written as the coordinator's caller.
import type { Caller } from "../api/caller";
import type { Host, Service } from "../capability";
import { prepareRecord } from "../records/envelope";
import { FLEET_CONTROL_THREAD, INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import type { StoredRecord } from "../records/types";
import { toWire } from "../records/wire";
import { MEMBER_SCOPES, REGISTRY_SCOPE } from "./credentials";
import type { FleetView } from "./contract";
import type { EpochBook } from "./epoch";

const PAGE = 1000;
export const SYNCED_THREADS = [FLEET_CONTROL_THREAD, INSTANCE_REGISTRY_THREAD] as const;
export type Digests = Record<(typeof SYNCED_THREADS)[number], string>;

/** The set of LEARN ids on each synced thread, as one XOR of the ids: the same set, the same digest, in any order. */
export class ThreadDigests {
  private readonly sums = new Map<string, Buffer>(SYNCED_THREADS.map((t) => [t, Buffer.alloc(32)]));
  private current: Digests | null = null;

  apply(rec: StoredRecord): boolean {
    const sum = this.sums.get(rec.thread);
    if (!sum || rec.act !== "LEARN") return false;
    const id = Buffer.from(rec.id, "hex");
    for (let i = 0; i < 32; i++) sum[i]! ^= id[i]!;
    this.current = null;
    return true;
  }

  /** The digests now (every heartbeat answer carries them; computed once per change). */
  get(): Digests {
    this.current ??= Object.fromEntries(SYNCED_THREADS.map((t) => [t, this.sums.get(t)!.toString("hex")])) as Digests;
    return this.current;
  }
}

interface WirePage {
  data: (Record<string, unknown> & { id: string; sequence: number })[];
  has_more: boolean;
}

/** The caller records pulled from the coordinator are written as: the coordinator itself. */
export function coordinatorCaller(did: string): Caller {
  return { actor: did, via: "tcp", token: null, scopes: [...MEMBER_SCOPES, REGISTRY_SCOPE], actsForOthers: true };
}

/**
 * A worker's side: catch up after an acknowledged beat (pull what differs, push its own control
 * records the coordinator may lack), and forward its own control records as they are written.
 */
export function workerSync(host: Host, o: { epochs: EpochBook; coordinator(): string | null }) {
  const log = host.log.child("syncropel_fleet::control_sync");
  const synced: Partial<Digests> = {};
  const cursor = new Map<string, number>();
  let cursorFor: string | null = null;
  /** Own control records the coordinator has not acknowledged yet. */
  const unsent = new Map<string, StoredRecord>();
  let booted = false;

  async function pull(base: string, thread: string): Promise<boolean> {
    for (;;) {
      const res = await host.peers.request<WirePage & { code?: string }>(base, "GET", `/v1/records?thread=${thread}&act=LEARN&limit=${PAGE}&after=${cursor.get(thread) ?? 0}`);
      if (res.status !== 200) {
        log.warn(`cannot read the coordinator's ${thread}: ${res.status} ${res.body?.code ?? ""} — see 'spl doctor'`.trim());
        return false;
      }
      const fresh = res.body.data.filter((r) => !host.store.get(r.id));
      if (fresh.length) {
        const did = o.epochs.current.did;
        if (!did) return false;
        const results = await host.submit(fresh.map((r) => prepareRecord(r)), { caller: coordinatorCaller(did), route: { cls: "record_write", label: `fleet sync ${thread}` } });
        const failed = results.find((r) => r.status === "error");
        if (failed?.status === "error") {
          log.warn(`a record of the coordinator's ${thread} was refused here: ${failed.error.message}`);
          return false;
        }
        log.info(`${thread} updated from the coordinator`, { records: fresh.length });
      }
      if (res.body.data.length) cursor.set(thread, res.body.data[res.body.data.length - 1]!.sequence);
      if (!res.body.has_more) return true;
    }
  }

  async function push(base: string): Promise<void> {
    if (!unsent.size) return;
    const batch = [...unsent.values()].slice(0, PAGE);
    const res = await host.peers.request(base, "POST", "/v1/records/batch", { records: batch.map(toWire) });
    if (res.status !== 200) return log.warn(`the coordinator did not take this member's fleet control records (${res.status} ${res.body?.code ?? ""}); retried after the next beat`.trim());
    (res.body.data as { status: string; error?: { message: string } }[]).forEach((r, i) => {
      if (r.status === "error") log.warn(`the coordinator refused a fleet control record written here: ${r.error?.message}`, { record: batch[i]!.id });
      unsent.delete(batch[i]!.id);
    });
    log.info("fleet control records written here reached the coordinator", { records: batch.length });
  }

  const mine = (r: StoredRecord) => r.thread === FLEET_CONTROL_THREAD && r.act === "LEARN" && r.actor === host.instanceDid;

  return {
    /** Own control records not yet acknowledged by the coordinator (`spl kill` on a worker waits on it). */
    pending: () => [...unsent.keys()],
    /** After an acknowledged beat whose answer carried these digests. */
    async afterAck(digests: Partial<Digests> | undefined): Promise<void> {
      const base = o.coordinator();
      if (!base) return;
      if (!booted) {
        booted = true;
        for (let after = 0; ; ) {
          const page = host.store.list({ thread: FLEET_CONTROL_THREAD, actor: host.instanceDid, act: "LEARN", after, limit: PAGE });
          for (const r of page.data) unsent.set(r.id, r);
          if (!page.has_more) break;
          after = Number(page.next_cursor);
        }
      }
      if (cursorFor !== base) {
        cursorFor = base;
        cursor.clear();
        for (const t of SYNCED_THREADS) delete synced[t];
      }
      try {
        for (const t of SYNCED_THREADS) {
          const want = digests?.[t];
          if (!want || synced[t] === want) continue;
          if (await pull(base, t)) synced[t] = want;
        }
        await push(base);
      } catch (err) {
        log.warn(`cannot catch up with the coordinator: ${(err as Error).message}`);
      }
    },
    /** A control record written here goes to the coordinator at once (and again after beats until acknowledged). */
    afterCommit(created: StoredRecord[]): void {
      const own = created.filter(mine);
      if (!own.length) return;
      for (const r of own) unsent.set(r.id, r);
      const base = o.coordinator();
      if (base) void push(base).catch((err) => log.warn(`cannot forward fleet control to the coordinator at ${base}: ${(err as Error).message}; applied here, forwarded when it answers`));
    },
  };
}

/**
 * The coordinator forwards each new control record to every live member at once, so a freeze
 * holds fleet-wide well within an interval; a member it misses catches up after its next beat.
 */
export function controlForwarder(host: Host, fleet: FleetView, coordinating: () => boolean): Service {
  const log = host.log.child("syncropel_fleet::control_forward");
  let running = false;
  return {
    name: "fleet-control-forward",
    start() {
      running = true;
    },
    stop() {
      running = false;
    },
    afterCommit(created) {
      if (!running || !coordinating()) return;
      const fresh = created.filter((r) => r.thread === FLEET_CONTROL_THREAD);
      if (!fresh.length) return;
      const body = { records: fresh.map(toWire) };
      for (const m of fleet.members()) {
        if (m.status !== "live" || m.did === host.instanceDid || !m.endpoint) continue;
        host.peers.request(m.endpoint, "POST", "/v1/records/batch", body).then(
          (res) => res.status !== 200 && log.warn(`forwarding fleet control to ${m.name} answered ${res.status} ${res.body?.code ?? ""}; it catches up after its next heartbeat`.trim()),
          (err) => log.warn(`cannot forward fleet control to ${m.name}: ${(err as Error).message}; it catches up after its next heartbeat`),
        );
      }
    },
  };
}

// Epochs and fencing (ARCHITECTURE.md "The fleet protocol"). Every coordinator holds an epoch, a
// positive integer; a later coordinator holds a higher one. A member keeps the highest epoch it
// has seen — the `elected` records it holds, and what answers and calls told it since — and
// follows the coordinator of that epoch. A coordinator that learns of a higher epoch than its
// own is deposed.
//
// Where an epoch comes from: by config (configEpochs: a member that starts as coordinator takes
// max(seen) + 1 unless it already holds the top one), or with [fleet.etcd] the revision of the
// etcd write that won the election (lib/failover, which calls hold()). Who holds an epoch is
// learned from what this member trusts: the `elected` records it holds, its coordinator's answers,
// the election. A caller's header moves the epoch and the URL to follow, never the holder.
import type { Election } from "./registry";

export type { Election };

export interface EpochSource {
  readonly name: string;
  /** At start, for a member configured as coordinator: the epoch it holds from now on. */
  elect(o: { self: { did: string; endpoint: string }; top: Election | null }): Promise<Election>;
}

/** Promotion by config (the runbook's six steps): keep the top epoch if it is ours, else take max + 1. */
export const configEpochs: EpochSource = {
  name: "config",
  async elect({ self, top }) {
    if (top && top.did === self.did) return { ...top, endpoint: self.endpoint };
    return { epoch: (top?.epoch ?? 0) + 1, did: self.did, endpoint: self.endpoint };
  },
};

/** What a member knows of the fleet's coordinators. */
export interface Known {
  epoch: number;
  /** The coordinator of that epoch, when known (a bare number may come first, from a header). */
  did: string | null;
  url: string | null;
}

export class EpochBook {
  private known: Known = { epoch: 0, did: null, url: null };
  /** This member's own epoch while it coordinates (null: a worker, or a plain instance). */
  private own: Election | null = null;
  /** With an elected coordinator (lib/failover): whether its lease still lets it act. */
  private fresh: () => boolean = () => true;

  /** `deposed`: this coordinator was replaced (it learned of a higher epoch than its own). */
  constructor(private readonly on: { deposed(by: Known, own: Election): void }) {}

  /** This member coordinates at `e` (its start, after the EpochSource decided; or won an election, valid while `fresh`). */
  hold(e: Election, fresh: () => boolean = () => true): void {
    this.own = e;
    this.fresh = fresh;
    this.observe({ epoch: e.epoch, did: e.did, url: e.endpoint });
  }

  /** This member stops coordinating (an elected coordinator stepped down); it keeps what it knows. */
  release(): void {
    this.own = null;
    this.fresh = () => true;
  }

  /**
   * Something said epoch `k.epoch` is held by k.did at k.url. A higher epoch replaces what we
   * knew; the same epoch fills in what we did not know. Returns whether it was news.
   */
  observe(k: { epoch: number; did?: string | null; url?: string | null }): boolean {
    if (!Number.isInteger(k.epoch) || k.epoch < 1) return false;
    const cur = this.known;
    if (k.epoch < cur.epoch) return false;
    if (k.epoch === cur.epoch) {
      const did = cur.did ?? k.did ?? null;
      const url = cur.url ?? k.url ?? null;
      if (did === cur.did && url === cur.url) return false;
      this.known = { epoch: cur.epoch, did, url };
      return true;
    }
    const wasDeposed = this.deposedBy() !== null;
    this.known = { epoch: k.epoch, did: k.did ?? null, url: k.url ?? null };
    if (this.own && k.epoch > this.own.epoch && !wasDeposed) this.on.deposed(this.known, this.own);
    return true;
  }

  /** The highest epoch known and its coordinator. */
  get current(): Known {
    return this.known;
  }

  /** The epoch this member stamps on its calls (the highest it knows), or null before it knows one. */
  stamp(): { epoch: number; coordinator: string | null } | null {
    return this.known.epoch ? { epoch: this.known.epoch, coordinator: this.known.url } : null;
  }

  /** This member's own election while it coordinates, deposed or not. */
  get held(): Election | null {
    return this.own;
  }

  /** Whether this member coordinates at the highest epoch it knows. */
  coordinating(): boolean {
    return this.own !== null && this.own.epoch >= this.known.epoch && this.fresh();
  }

  /** Who replaced this coordinator, or null while it is not replaced (or never coordinated). */
  deposedBy(): Known | null {
    return this.own && this.known.epoch > this.own.epoch ? this.known : null;
  }

  /** Whether `did` calling with `epoch` is the coordinator this member follows (may act for others). */
  isCoordinator(did: string, epoch: number): boolean {
    return epoch === this.known.epoch && this.known.did === did && !this.coordinating();
  }
}

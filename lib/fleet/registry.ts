// The fleet registry (ARCHITECTURE.md "The fleet protocol"): a fold of the membership events on
// th_instance_registry — LEARNs the coordinator writes when something changes, never per beat:
//   joined · changed · stale · archived · back · forgotten      (one member, by `did`)
//   elected                                                     (a coordinator took an epoch)
//   join_token · join_token_retired                             (hashes of join credentials)
// Every member holds a copy (control-sync.ts), so each can check the others' credentials and a
// promoted worker starts with the whole registry. How alive a member is *now* is liveness.ts's
// (memory); this fold holds what was last recorded.
import { INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import type { StoredRecord } from "../records/types";

export const REGISTRY_TOPICS = ["joined", "changed", "stale", "archived", "back", "forgotten", "elected", "join_token", "join_token_retired"] as const;
export type RegistryTopic = (typeof REGISTRY_TOPICS)[number];

export type MemberStatus = "live" | "stale" | "archived";

export interface MemberRecord {
  did: string;
  name: string;
  endpoint: string;
  version: string;
  /** The member credential in force: its id and the SHA-256 of its secret. */
  credential: { id: string; sha256: Buffer } | null;
  /** The status last recorded (joined and back are live). */
  status: MemberStatus;
  /** When that was recorded (unix seconds, this member's clock). */
  since: number;
  forgotten: boolean;
}

export interface Election {
  epoch: number;
  did: string;
  endpoint: string;
}

export interface JoinToken {
  id: string;
  sha256: Buffer;
  /** Unix seconds; a retired token's end of grace when earlier. */
  expiresAt: number;
}

/** What `fleet list`, `status`, `show` print of one member (README "Fleet"). */
export interface MemberView {
  did: string;
  name: string;
  endpoint: string;
  role: string;
  status: MemberStatus;
  version: string;
  uptime_secs: number;
  health: string;
  active_dispatches: number;
  store_records: number;
  last_heartbeat: number;
}

/** Age since the last beat, interval N: ≤ 2N live, ≤ 3N stale, beyond archived; a member that said goodbye skips stale. */
export function classify(ageMs: number, intervalSecs: number, draining = false): MemberStatus {
  const n = intervalSecs * 1000;
  if (ageMs <= 2 * n) return "live";
  if (ageMs <= 3 * n && !draining) return "stale";
  return "archived";
}

const str = (v: unknown) => (typeof v === "string" ? v : "");
const SHA = /^[0-9a-f]{64}$/;

export class FleetRegistry {
  private readonly byDid = new Map<string, MemberRecord>();
  private readonly byCredential = new Map<string, string>();
  private readonly joinTokens = new Map<string, JoinToken>();
  private topElection: Election | null = null;
  /** members(), kept until the next event (the sweep reads it every second). */
  private listed: MemberRecord[] | null = null;

  apply(rec: StoredRecord): boolean {
    if (rec.thread !== INSTANCE_REGISTRY_THREAD || rec.act !== "LEARN") return false;
    this.listed = null;
    const b = rec.body;
    const did = str(b.did);
    const at = rec.created_at;
    switch (b.topic as RegistryTopic) {
      case "joined": {
        if (!did || !SHA.test(str(b.secret_sha256)) || !str(b.credential_id)) return false;
        const prev = this.byDid.get(did);
        if (prev?.credential) this.byCredential.delete(prev.credential.id);
        const m: MemberRecord = {
          did,
          name: str(b.name),
          endpoint: str(b.endpoint),
          version: str(b.version),
          credential: { id: str(b.credential_id), sha256: Buffer.from(str(b.secret_sha256), "hex") },
          status: "live",
          since: at,
          forgotten: false,
        };
        this.byDid.set(did, m);
        this.byCredential.set(m.credential!.id, did);
        return true;
      }
      case "changed": {
        const m = this.byDid.get(did);
        if (!m || m.forgotten) return false;
        for (const k of ["name", "endpoint", "version"] as const) if (typeof b[k] === "string" && b[k]) m[k] = b[k] as string;
        return true;
      }
      case "stale":
      case "archived":
      case "back": {
        const m = this.byDid.get(did);
        if (!m || m.forgotten) return false;
        m.status = b.topic === "back" ? "live" : (b.topic as MemberStatus);
        m.since = at;
        return true;
      }
      case "forgotten": {
        const m = this.byDid.get(did);
        if (!m) return false;
        m.forgotten = true;
        if (m.credential) this.byCredential.delete(m.credential.id);
        m.credential = null;
        return true;
      }
      case "elected": {
        const epoch = b.epoch;
        if (!did || typeof epoch !== "number" || !Number.isInteger(epoch) || epoch < 1) return false;
        if (this.topElection && this.topElection.epoch >= epoch) return false;
        this.topElection = { epoch, did, endpoint: str(b.endpoint) };
        return true;
      }
      case "join_token": {
        const id = str(b.token_id);
        if (!id || !SHA.test(str(b.secret_sha256)) || typeof b.expires_at !== "number" || this.joinTokens.has(id)) return false;
        this.joinTokens.set(id, { id, sha256: Buffer.from(str(b.secret_sha256), "hex"), expiresAt: b.expires_at });
        return true;
      }
      case "join_token_retired": {
        const t = this.joinTokens.get(str(b.token_id));
        if (!t || typeof b.valid_until !== "number") return false;
        t.expiresAt = Math.min(t.expiresAt, b.valid_until);
        return true;
      }
    }
    return false;
  }

  /** A member by DID (forgotten ones too: a forgotten credential is refused by name). */
  get(did: string): MemberRecord | undefined {
    return this.byDid.get(did);
  }

  /** The member a credential id was issued to, while it is in force. */
  byCredentialId(id: string): MemberRecord | undefined {
    const did = this.byCredential.get(id);
    return did ? this.byDid.get(did) : undefined;
  }

  /** The member holding a name, among those not forgotten. */
  holderOf(name: string): MemberRecord | undefined {
    for (const m of this.byDid.values()) if (!m.forgotten && m.name === name) return m;
  }

  /** Members not forgotten, sorted by DID (do not change the array). */
  members(): readonly MemberRecord[] {
    this.listed ??= [...this.byDid.values()].filter((m) => !m.forgotten).sort((a, b) => (a.did < b.did ? -1 : 1));
    return this.listed;
  }

  get size(): number {
    return this.members().length;
  }

  joinToken(id: string): JoinToken | undefined {
    return this.joinTokens.get(id);
  }

  /** The highest epoch recorded here, and who took it. */
  get top(): Election | null {
    return this.topElection;
  }
}

export function counts(members: readonly { status: MemberStatus }[]) {
  const c = { live: 0, stale: 0, archived: 0 };
  for (const m of members) c[m.status]++;
  return c;
}

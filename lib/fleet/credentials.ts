// Member identity (README "Fleet", ARCHITECTURE.md "The fleet protocol"). Two bearers, both
// checked by the fleet itself against the registry it folds (the gate asks it about their kinds):
//   spl_join_<id>_<secret>    a join credential: good for POST /v1/fleet/join only, expiring,
//                             rotated with a grace; `spl_fleet_…` tokens of earlier versions count
//   spl_member_<id>_<secret>  a member credential, bound to one instance DID: the caller is that
//                             DID and may not act for others — unless it is the coordinator this
//                             member follows, calling with the epoch it holds
// Every member-credential call may carry the caller's epoch (X-Syncropel-Epoch): a member that
// knows a higher one answers 409 STALE_EPOCH naming its coordinator; a coordinator that hears of a
// higher one is deposed (epoch.ts).
import { statSync } from "node:fs";
import { join } from "node:path";
import { timingSafeEqual } from "node:crypto";
import type { Caller, CredentialSource } from "../api/caller";
import { ApiError } from "../api/http";
import { readTokenFile, writeTokenFile } from "../auth/operator-token";
import { hashSecret, mintToken, parseBearer, type TokenInfo } from "../auth/tokens";
import { COORDINATOR_HEADER, EPOCH_HEADER } from "../peer";
import type { EpochBook, Known } from "./epoch";
import type { FleetRegistry, MemberRecord } from "./registry";

export const JOIN_ROUTE = "POST /v1/fleet/join";
export const JOIN_ACTOR = "did:sync:system:fleet-join";
/** What a member may do with its credential: read, write its own records, pull the kill switch. */
export const MEMBER_SCOPES = ["records:read", "records:write", "fleet:control"] as const;
/** Only the coordinator a member follows writes that member's copy of the registry. */
export const REGISTRY_SCOPE = "fleet:registry";
/** A join credential lives a day unless minted with another lifetime (`spl fleet token --rotate --ttl`). */
export const JOIN_TTL_SECS = 86_400;
export const ROTATION_GRACE_SECS = 3600;

export const memberCredentialPath = (home: string) => join(home, "secrets", "fleet_member");
/** The join credential: the coordinator's current one, or one a worker holds until it has joined. */
export const joinCredentialPath = (home: string) => join(home, "secrets", "fleet_token");

export const readMemberCredential = (home: string) => readTokenFile(memberCredentialPath(home));
export const readJoinCredential = (home: string) => readTokenFile(joinCredentialPath(home));

/**
 * The member credential as its file holds it now, for every peer call: read again only when the
 * file changed (a rotation renames a new file into place), so a call costs one stat, not an
 * exists, open and read.
 */
export function memberCredentialSource(home: string): () => string | null {
  const path = memberCredentialPath(home);
  let seen: { ino: number; mtimeMs: number; ctimeMs: number; size: number; value: string | null } | null = null;
  return () => {
    const st = statSync(path, { throwIfNoEntry: false });
    if (!st) return (seen = null);
    if (seen && seen.ino === st.ino && seen.mtimeMs === st.mtimeMs && seen.ctimeMs === st.ctimeMs && seen.size === st.size) return seen.value;
    const value = readTokenFile(path);
    seen = { ino: st.ino, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, size: st.size, value };
    return value;
  };
}
export const writeMemberCredential = (home: string, token: string) => writeTokenFile(memberCredentialPath(home), token);

/** A bearer of one of the join kinds (the `fleet` kind of earlier versions included). */
export const isJoinCredential = (bearer: string) => ["join", "fleet"].includes(parseBearer(bearer)?.env ?? "");

export function mintCredential(kind: "member" | "join") {
  const t = mintToken(kind);
  return { token: t.token, id: t.id, secretSha256: t.secretSha256 };
}

const matches = (secret: string, sha256: Buffer) => timingSafeEqual(Buffer.from(hashSecret(secret), "hex"), sha256);

function info(id: string, env: string, actor: string, name: string, scopes: readonly string[]): TokenInfo {
  return { id, env, name, actor, scopes: [...scopes] as TokenInfo["scopes"], created_at: 0, created_by: "", record_id: "", expires_at: null, revoked: false, revoked_at: null, revoked_reason: null };
}

export interface CredentialWiring {
  registry: FleetRegistry;
  epochs: EpochBook;
  now(): number;
  /** A forged or refused member call, for the log (never the credential). */
  refused(what: string, fields: Record<string, unknown>): void;
  /** A call told of a higher epoch than this member knew. */
  learned(k: Known): void;
  /** The coordinator is elected in etcd: only the election names it, never a caller. */
  elected: boolean;
}

export function fleetCredentials(w: CredentialWiring): CredentialSource {
  // Bearers whose secret already matched, with the member they name: hashing and parsing each
  // beat's bearer would be much of its cost. Checked against the registry on every use, so a
  // forgotten or replaced credential is refused at once.
  const proven = new Map<string, { id: string; member: MemberRecord }>();
  // The caller a member is when it acts for itself, per member and transport (built once; again
  // when its credential or name changed).
  const plain = new WeakMap<MemberRecord, Partial<Record<Caller["via"], { caller: Caller; name: string }>>>();

  function ownCaller(m: MemberRecord, id: string, via: Caller["via"]): Caller {
    let byVia = plain.get(m);
    if (!byVia) plain.set(m, (byVia = {}));
    const cached = byVia[via];
    if (cached && cached.caller.token!.id === id && cached.name === m.name) return cached.caller;
    const caller: Caller = Object.freeze({ actor: m.did, via, token: Object.freeze(info(id, "member", m.did, `fleet member ${m.name}`, MEMBER_SCOPES)), scopes: MEMBER_SCOPES, actsForOthers: false });
    byVia[via] = { caller, name: m.name };
    return caller;
  }

  function memberCaller(m: MemberRecord, id: string, via: Caller["via"], request?: Request): Caller | ApiError {
    const header = request?.headers.get(EPOCH_HEADER) ?? null;
    const epoch = header === null ? null : Number(header);
    if (epoch !== null && (!Number.isInteger(epoch) || epoch < 0)) return new ApiError(400, "INVALID_EPOCH", `${EPOCH_HEADER} must be a whole number, got ${JSON.stringify(header!.slice(0, 20))}`);
    if (epoch !== null) {
      const known = w.epochs.current;
      const url = request?.headers.get(COORDINATOR_HEADER) ?? null;
      if (epoch > known.epoch && !w.elected && url === m.endpoint) {
        // A member says it coordinates at a higher epoch: how a replacement by hand is first heard
        // of. This member beats to it to find out; its answer (a coordinator's, or 409 naming the
        // one it follows) moves the epoch. The caller's word alone never does, and never makes it
        // the coordinator in this call (README "Epochs and fencing"). With [fleet.etcd] only the
        // election names the coordinator.
        w.learned({ epoch, did: null, url });
      }
      const deposed = w.epochs.deposedBy();
      if (deposed) return staleEpoch(deposed.epoch, deposed.url);
      if (epoch < w.epochs.current.epoch && !w.epochs.coordinating()) {
        // A worker refuses a lower epoch: the caller acts as a coordinator that was replaced.
        w.refused("a call with a stale epoch", { caller: m.did, epoch, current: w.epochs.current.epoch });
        return staleEpoch(w.epochs.current.epoch, w.epochs.current.url);
      }
    }
    if (epoch === null || !w.epochs.isCoordinator(m.did, epoch)) return ownCaller(m, id, via);
    const scopes = [...MEMBER_SCOPES, REGISTRY_SCOPE];
    return { actor: m.did, via, token: info(id, "member", m.did, `fleet member ${m.name}`, scopes), scopes, actsForOthers: true };
  }

  return {
    kinds: ["member", "join", "fleet"],
    identify(bearer, via, request) {
      const hit = proven.get(bearer);
      if (hit && w.registry.byCredentialId(hit.id) === hit.member) return memberCaller(hit.member, hit.id, via, request);
      const p = parseBearer(bearer);
      if (!p) return new ApiError(401, "AUTH_REQUIRED", "the bearer is not an spl token (expected spl_<kind>_<id>_<secret>)");
      if (p.env === "member") {
        const m = w.registry.byCredentialId(p.id);
        if (!m) {
          const gone = w.registry.size ? "" : " (this member holds no fleet registry yet: it fills after its first beat)";
          return new ApiError(401, "MEMBER_UNKNOWN", `member credential ${p.id} is not in force here${gone}: it was replaced, forgotten ('spl fleet forget'), or issued by another fleet — rejoin: spl fleet join <coordinator_url> --name NAME --token-file FILE`);
        }
        if (!matches(p.secret, m.credential!.sha256)) return new ApiError(401, "MEMBER_UNKNOWN", `wrong secret for member credential ${p.id}`);
        if (proven.size >= 4096) proven.clear();
        proven.set(bearer, { id: p.id, member: m });
        return memberCaller(m, p.id, via, request);
      }
      const t = w.registry.joinToken(p.id);
      if (!t || !matches(p.secret, t.sha256)) return new ApiError(401, "JOIN_REFUSED", `join credential ${p.id} is not known here — get the current one on the coordinator: spl fleet token`);
      if (w.now() / 1000 >= t.expiresAt) return new ApiError(401, "JOIN_EXPIRED", `join credential ${p.id} expired at ${new Date(t.expiresAt * 1000).toISOString()} — mint a new one on the coordinator: spl fleet token --rotate`);
      return { actor: JOIN_ACTOR, via, token: info(p.id, p.env, JOIN_ACTOR, "fleet join credential", ["records:write"]), scopes: ["records:write"], actsForOthers: false, routes: [JOIN_ROUTE] };
    },
  };
}

/** 409 STALE_EPOCH: the answer to a call from a coordinator that was replaced (peer.ts reads it). */
export function staleEpoch(epoch: number, url: string | null): ApiError {
  const where = url ? `the coordinator is now ${url}` : "a newer coordinator holds it";
  return new ApiError(409, "STALE_EPOCH", `this member follows epoch ${epoch}: ${where} — point [fleet] coordinator_url at it and restart`, { epoch, coordinator_url: url });
}

// API tokens: bearer strings `spl_<env>_<id>_<secret>`. The record log keeps only
// the SHA-256 of the secret, the actor DID the token acts as, and its scopes, as LEARNs on
// th_auth; revocation is another LEARN. The plaintext exists once: in the answer that minted it.
import { randomBytes, timingSafeEqual } from "node:crypto";
import type { StoredRecord } from "../records/types";
import { sha256Hex } from "../records/id";
import { AUTH_THREAD } from "../records/reserved-threads";

export { AUTH_THREAD };
export const TOKEN_TOPIC = "api_token";
export const REVOKE_TOPIC = "api_token_revoked";

/** The closed set of scopes; `admin` implies every other. */
export const SCOPES = ["records:read", "records:write", "threads:write", "federation:manage", "config:read", "config:write", "fleet:control", "admin"] as const;
export type Scope = (typeof SCOPES)[number];
export const DEFAULT_SCOPES: readonly Scope[] = ["records:read", "records:write", "config:read"];

const ENV_TAG = /^[a-z0-9]{1,16}$/;
const TOKEN_ID = /^[a-z0-9]{4,32}$/;
const SECRET = /^[A-Za-z0-9]{16,128}$/;

export interface ParsedBearer {
  id: string;
  env: string;
  secret: string;
}

/** Splits `spl_<env>_<id>_<secret>`; any other 16-256 char printable string is an opaque bootstrap secret. */
export function parseBearer(value: string): ParsedBearer | null {
  const parts = value.split("_");
  if (parts.length === 4 && parts[0] === "spl" && ENV_TAG.test(parts[1]!) && TOKEN_ID.test(parts[2]!) && SECRET.test(parts[3]!)) {
    return { env: parts[1]!, id: parts[2]!, secret: parts[3]! };
  }
  if (!isBootstrapSecret(value)) return null;
  // An operator-chosen SPL_BOOTSTRAP_TOKEN: its id is derived from it, so a restart finds it again.
  return { env: "boot", id: `boot${sha256Hex(`spl-bootstrap\n${value}`).slice(0, 16)}`, secret: value };
}

/** SPL_BOOTSTRAP_TOKEN's accepted form: 16-256 printable ASCII characters, no spaces. */
export function isBootstrapSecret(value: string): boolean {
  return /^[\x21-\x7e]{16,256}$/.test(value);
}

export function hashSecret(secret: string): string {
  return sha256Hex(secret);
}

export interface MintedToken {
  token: string;
  id: string;
  env: string;
  secretSha256: string;
}

export function mintToken(env = "local"): MintedToken {
  if (!ENV_TAG.test(env)) throw new RangeError(`env tag must be 1-16 lowercase letters or digits, got "${env}"`);
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(24).toString("hex");
  return { token: `spl_${env}_${id}_${secret}`, id, env, secretSha256: hashSecret(secret) };
}

export function isScope(value: unknown): value is Scope {
  return typeof value === "string" && (SCOPES as readonly string[]).includes(value);
}

/** Parses "a,b,c" into scopes; throws a message naming the bad one. */
export function parseScopes(csv: string): Scope[] {
  const out: Scope[] = [];
  for (const raw of csv.split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!isScope(raw)) throw new RangeError(`unknown scope "${raw}" (scopes: ${SCOPES.join(", ")})`);
    if (!out.includes(raw)) out.push(raw);
  }
  if (!out.length) throw new RangeError(`no scopes given (scopes: ${SCOPES.join(", ")})`);
  return out;
}

/**
 * `expires_at` as a client sends it (unix seconds, or an ISO 8601 time with a zone) → unix
 * seconds. Throws a RangeError naming the fix; a time already past is refused, not accepted dead.
 */
export function parseExpiresAt(value: unknown, nowSecs: number): number {
  let secs = NaN;
  if (typeof value === "number") secs = value;
  else if (typeof value === "string" && /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:\d\d)$/.test(value)) secs = Date.parse(value) / 1000;
  if (!Number.isFinite(secs) || secs <= 0 || secs > 253402300799) {
    throw new RangeError("'expires_at' must be unix seconds or an ISO 8601 time with a zone, e.g. 2027-01-31T00:00:00Z");
  }
  secs = Math.floor(secs);
  if (secs <= nowSecs) throw new RangeError(`'expires_at' ${new Date(secs * 1000).toISOString()} is already past — give a future time`);
  return secs;
}

/** The body of the LEARN that creates a token. Holds no secret, only its hash. */
export function tokenRecordBody(t: {
  id: string;
  env: string;
  secretSha256: string;
  actor: string;
  scopes: readonly Scope[];
  name: string;
  expiresAt?: number | null;
}) {
  return {
    topic: TOKEN_TOPIC,
    token_id: t.id,
    env: t.env,
    secret_sha256: t.secretSha256,
    actor: t.actor,
    scopes: [...t.scopes],
    name: t.name,
    ...(t.expiresAt != null ? { expires_at: t.expiresAt } : {}),
  };
}

export function revokeRecordBody(id: string, reason: string) {
  return { topic: REVOKE_TOPIC, token_id: id, reason };
}

export interface TokenInfo {
  id: string;
  env: string;
  name: string;
  actor: string;
  scopes: Scope[];
  created_at: number;
  created_by: string;
  record_id: string;
  /** Unix seconds after which the token is refused; null = no expiry. */
  expires_at: number | null;
  revoked: boolean;
  revoked_at: number | null;
  revoked_reason: string | null;
}

interface TokenEntry extends TokenInfo {
  secretSha256: Buffer;
}

export type Verified = { ok: true; token: TokenInfo } | { ok: false; why: string };

/** Tokens folded from th_auth. The first record for an id defines it; later ones can only revoke it. */
export class TokenRegistry {
  private readonly byId = new Map<string, TokenEntry>();
  /**
   * Bearers whose secret already matched, with the answer verify gave: every request carries its
   * token, and hashing + comparing + copying it each time was ~7% of single-record ingest. An
   * entry is never replaced (only revoked), so revocation and expiry are still checked per call.
   */
  private readonly proven = new Map<string, { entry: TokenEntry; info: TokenInfo }>();

  apply(rec: StoredRecord): boolean {
    if (rec.thread !== AUTH_THREAD || rec.act !== "LEARN") return false;
    const b = rec.body;
    const id = typeof b.token_id === "string" ? b.token_id : "";
    if (!id) return false;
    if (b.topic === TOKEN_TOPIC) {
      if (this.byId.has(id)) return false;
      if (typeof b.secret_sha256 !== "string" || !/^[0-9a-f]{64}$/.test(b.secret_sha256)) return false;
      if (typeof b.actor !== "string" || !b.actor.startsWith("did:")) return false;
      const scopes = Array.isArray(b.scopes) ? b.scopes.filter(isScope) : [];
      this.byId.set(id, {
        id,
        env: typeof b.env === "string" ? b.env : "",
        name: typeof b.name === "string" ? b.name : "",
        actor: b.actor,
        scopes,
        created_at: rec.created_at,
        created_by: rec.actor,
        record_id: rec.id,
        expires_at: typeof b.expires_at === "number" && Number.isFinite(b.expires_at) ? b.expires_at : null,
        revoked: false,
        revoked_at: null,
        revoked_reason: null,
        secretSha256: Buffer.from(b.secret_sha256, "hex"),
      });
      return true;
    }
    if (b.topic === REVOKE_TOPIC) {
      const t = this.byId.get(id);
      if (!t || t.revoked) return false;
      t.revoked = true;
      t.revoked_at = rec.created_at;
      t.revoked_reason = typeof b.reason === "string" ? b.reason : "";
      return true;
    }
    return false;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get(id: string): TokenInfo | undefined {
    const t = this.byId.get(id);
    return t ? publicInfo(t) : undefined;
  }

  list(): TokenInfo[] {
    return [...this.byId.values()].map(publicInfo);
  }

  get activeCount(): number {
    let n = 0;
    for (const t of this.byId.values()) if (!t.revoked) n++;
    return n;
  }

  /** Checks a bearer value: known id, the env it was minted for, matching secret hash, not revoked, not expired. */
  verify(bearer: string, nowSecs = Date.now() / 1000): Verified {
    const hit = this.proven.get(bearer);
    if (hit && !hit.entry.revoked && (hit.entry.expires_at === null || nowSecs < hit.entry.expires_at)) return { ok: true, token: hit.info };
    const v = this.verifyFully(bearer, nowSecs);
    if (v.ok) {
      if (this.proven.size >= 4096) this.proven.clear();
      this.proven.set(bearer, { entry: this.byId.get(v.token.id)!, info: deepFreeze(v.token) });
    }
    return v;
  }

  private verifyFully(bearer: string, nowSecs: number): Verified {
    const parsed = parseBearer(bearer);
    if (!parsed) return { ok: false, why: "the bearer is not an spl token (expected spl_<env>_<id>_<secret>)" };
    const t = this.byId.get(parsed.id);
    if (!t) return { ok: false, why: `unknown token id ${parsed.id}` };
    const given = Buffer.from(hashSecret(parsed.secret), "hex");
    if (!timingSafeEqual(given, t.secretSha256)) return { ok: false, why: `wrong secret for token ${parsed.id}` };
    if (parsed.env !== t.env) return { ok: false, why: `token ${parsed.id} was minted for env '${t.env}', not '${parsed.env}'` };
    if (t.revoked) return { ok: false, why: `token ${parsed.id} was revoked` };
    if (t.expires_at !== null && nowSecs >= t.expires_at) {
      return { ok: false, why: `token ${parsed.id} expired at ${new Date(t.expires_at * 1000).toISOString()}` };
    }
    return { ok: true, token: publicInfo(t) };
  }
}

function deepFreeze(info: TokenInfo): TokenInfo {
  Object.freeze(info.scopes);
  return Object.freeze(info);
}

function publicInfo(t: TokenEntry): TokenInfo {
  const { secretSha256: _, ...info } = t;
  return { ...info, scopes: [...info.scopes] };
}

/** Which scope a request of this route class needs from a token. */
export function scopeForClass(routeClass: string): Scope {
  switch (routeClass) {
    case "record_write":
      return "records:write";
    case "record_read":
    case "thread_read":
    case "status_read":
    case "fleet_read":
      return "records:read";
    case "config_read":
      return "config:read";
    case "config_write":
      return "config:write";
    default:
      return "admin";
  }
}

export function hasScope(scopes: readonly string[], needed: Scope | string): boolean {
  return scopes.includes("admin") || scopes.includes(needed);
}

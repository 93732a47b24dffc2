import { describe, expect, test } from "bun:test";
import type { StoredRecord } from "../records/types";
import { AUTH_THREAD, hashSecret, hasScope, mintToken, parseBearer, parseExpiresAt, parseScopes, revokeRecordBody, scopeForClass, tokenRecordBody, TokenRegistry } from "./tokens";

let seq = 0;
const learn = (body: Record<string, unknown>, thread = AUTH_THREAD): StoredRecord => ({
  id: `r${++seq}`,
  sequence: seq,
  created_at: 1_700_000_000 + seq,
  act: "LEARN",
  thread,
  actor: "did:sync:system:engine",
  body,
  clock: seq,
  data_type: "SCALAR",
  parents: [],
  judged_by: null,
});

describe("token format", () => {
  test("minted tokens parse back into env, id and secret; only the hash is recorded", () => {
    const t = mintToken("prod");
    expect(t.token).toMatch(/^spl_prod_[0-9a-f]{16}_[0-9a-f]{48}$/);
    const p = parseBearer(t.token)!;
    expect(p).toEqual({ env: "prod", id: t.id, secret: t.token.split("_")[3]! });
    expect(t.secretSha256).toBe(hashSecret(p.secret));
    const body = tokenRecordBody({ ...t, actor: "did:sync:user:a", scopes: ["admin"], name: "x" });
    expect(JSON.stringify(body)).not.toContain(p.secret);
    expect(() => mintToken("Bad_Env")).toThrow();
  });

  test("an operator-chosen bootstrap secret gets a stable derived id; junk is refused", () => {
    const a = parseBearer("my-bootstrap-secret-0123456789")!;
    expect(a.id).toMatch(/^boot[0-9a-f]{16}$/);
    expect(parseBearer("my-bootstrap-secret-0123456789")!.id).toBe(a.id);
    expect(parseBearer("short")).toBeNull();
    expect(parseBearer("has space in it but long enough")).toBeNull();
  });

  test("scopes: closed set, admin implies all, route classes map to scopes", () => {
    expect(parseScopes("records:read, config:read,records:read")).toEqual(["records:read", "config:read"]);
    expect(() => parseScopes("root")).toThrow(/unknown scope "root"/);
    expect(() => parseScopes(" , ")).toThrow(/no scopes/);
    expect(hasScope(["admin"], "config:write")).toBe(true);
    expect(hasScope(["records:read"], "records:write")).toBe(false);
    expect(scopeForClass("record_write")).toBe("records:write");
    expect(scopeForClass("thread_read")).toBe("records:read");
    expect(scopeForClass("config_write")).toBe("config:write");
    expect(scopeForClass("admin")).toBe("admin");
  });
});

describe("TokenRegistry", () => {
  test("verify: known id, matching secret, not revoked; the first record for an id defines it", () => {
    const reg = new TokenRegistry();
    const t = mintToken();
    expect(reg.apply(learn(tokenRecordBody({ ...t, actor: "did:sync:agent:ci", scopes: ["records:read"], name: "ci" })))).toBe(true);
    expect(reg.verify(t.token)).toMatchObject({ ok: true, token: { id: t.id, actor: "did:sync:agent:ci", scopes: ["records:read"] } });
    // A second definition of the same id cannot swap the secret or actor.
    const other = mintToken();
    expect(reg.apply(learn(tokenRecordBody({ ...other, id: t.id, actor: "did:sync:user:mallory", scopes: ["admin"], name: "evil" })))).toBe(false);
    expect(reg.verify(`spl_local_${t.id}_${other.token.split("_")[3]}`)).toMatchObject({ ok: false });
    expect(reg.verify(t.token.slice(0, -1) + (t.token.endsWith("0") ? "1" : "0"))).toMatchObject({ ok: false, why: expect.stringContaining("wrong secret") });
    expect(reg.verify("spl_local_0123456789abcdef_" + "a".repeat(48))).toMatchObject({ ok: false, why: expect.stringContaining("unknown token id") });
    expect(reg.apply(learn(revokeRecordBody(t.id, "leaked")))).toBe(true);
    expect(reg.verify(t.token)).toMatchObject({ ok: false, why: expect.stringContaining("revoked") });
    expect(reg.get(t.id)).toMatchObject({ revoked: true, revoked_reason: "leaked" });
    expect(reg.activeCount).toBe(0);
    expect(JSON.stringify(reg.list())).not.toContain("secret");
  });

  test("records on other threads, bad hashes and non-DID actors are ignored", () => {
    const reg = new TokenRegistry();
    const t = mintToken();
    expect(reg.apply(learn(tokenRecordBody({ ...t, actor: "did:sync:agent:x", scopes: ["admin"], name: "" }), "th_other"))).toBe(false);
    expect(reg.apply(learn({ ...tokenRecordBody({ ...t, actor: "did:sync:agent:x", scopes: ["admin"], name: "" }), secret_sha256: "nope" }))).toBe(false);
    expect(reg.apply(learn(tokenRecordBody({ ...t, actor: "alice", scopes: ["admin"], name: "" })))).toBe(false);
    expect(reg.list()).toHaveLength(0);
  });
});

describe("env segment and expiry", () => {
  test("a token presented with another env segment than it was minted for is refused", () => {
    const reg = new TokenRegistry();
    const t = mintToken("prod");
    reg.apply(learn(tokenRecordBody({ ...t, actor: "did:sync:agent:ci", scopes: ["admin"], name: "" })));
    expect(reg.verify(t.token)).toMatchObject({ ok: true });
    const [, , id, secret] = t.token.split("_");
    expect(reg.verify(`spl_local_${id}_${secret}`)).toMatchObject({ ok: false, why: expect.stringContaining("minted for env 'prod', not 'local'") });
  });

  test("expires_at is honoured: valid before, refused from that second on, naming the expiry", () => {
    const reg = new TokenRegistry();
    const t = mintToken();
    const expires = 1_900_000_000;
    reg.apply(learn(tokenRecordBody({ ...t, actor: "did:sync:agent:ci", scopes: ["admin"], name: "", expiresAt: expires })));
    expect(reg.get(t.id)!.expires_at).toBe(expires);
    expect(reg.verify(t.token, expires - 1)).toMatchObject({ ok: true });
    expect(reg.verify(t.token, expires)).toMatchObject({ ok: false, why: expect.stringContaining("expired at 2030-03-17T17:46:40.000Z") });
    // Without expires_at a token never expires.
    const forever = mintToken();
    reg.apply(learn(tokenRecordBody({ ...forever, actor: "did:sync:agent:ci", scopes: ["admin"], name: "" })));
    expect(reg.get(forever.id)!.expires_at).toBeNull();
    expect(reg.verify(forever.token, 4_000_000_000)).toMatchObject({ ok: true });
  });

  test("parseExpiresAt takes unix seconds or ISO 8601 with a zone, refuses the past and junk", () => {
    const now = 1_800_000_000;
    expect(parseExpiresAt(now + 60, now)).toBe(now + 60);
    expect(parseExpiresAt("2030-03-17T17:46:40Z", now)).toBe(1_900_000_000);
    expect(parseExpiresAt("2030-03-17T18:46:40+01:00", now)).toBe(1_900_000_000);
    expect(() => parseExpiresAt(now - 1, now)).toThrow(/already past/);
    expect(() => parseExpiresAt(now, now)).toThrow(/already past/);
    for (const bad of ["tomorrow", "2030-03-17", "2030-03-17T17:46:40", true, {}, -5, Infinity]) {
      expect(() => parseExpiresAt(bad, now)).toThrow(/'expires_at' must be/);
    }
  });
});

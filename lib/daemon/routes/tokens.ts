// API tokens (admin class): GET /v1/tokens, POST /v1/tokens, POST /v1/tokens/:id/revoke.
// The plaintext is generated here and leaves only in the creating answer; the record holds its hash.
import { prepareRecord } from "../../records/envelope";
import { AUTH_THREAD, DEFAULT_SCOPES, isScope, mintToken, parseExpiresAt, revokeRecordBody, SCOPES, tokenRecordBody, type Scope } from "../../auth/tokens";
import type { DaemonState } from "../state";
import { ApiError, json, parseJson } from "../../api/http";
import { route, type RouteCall } from "../../api/route";

const DID = /^did:[a-z0-9]+:\S+$/;

async function writeAuth(state: DaemonState, actor: string, body: Record<string, unknown>) {
  const [r] = await state.ingest.submit([prepareRecord({ thread: AUTH_THREAD, actor, act: "LEARN", body })]);
  if (r!.status === "error") throw new ApiError(r!.error.status, r!.error.code, r!.error.message);
  return r!.record;
}

const MAX_TOKEN_BODY = 64 * 1024;

/** The optional JSON object these routes take; an empty body means {}. */
function objectOf(body: Uint8Array): Record<string, unknown> {
  if (body.byteLength === 0) return {};
  const b = parseJson(body);
  if (!b || typeof b !== "object" || Array.isArray(b)) throw new ApiError(400, "INVALID_REQUEST", "send a JSON object");
  return b as Record<string, unknown>;
}

export function tokenRoutes(state: DaemonState) {
  const { tokens } = state.engine;
  const revoke = async ({ params, body, caller }: RouteCall) => {
    const b = objectOf(body);
    const id = params.id!;
    const t = tokens.get(id);
    if (!t) throw new ApiError(404, "TOKEN_NOT_FOUND", `no token with id ${id} — 'spl token list' shows them`);
    if (t.revoked) return json(200, { object: "token", ...t });
    const reason = typeof b.reason === "string" ? b.reason : "revoked by operator";
    await writeAuth(state, caller.actor, revokeRecordBody(id, reason));
    state.log.info("token revoked", { token_id: id, actor: caller.actor });
    return json(200, { object: "token", ...tokens.get(id)! });
  };
  return [
    route({ method: "GET", path: "/v1/tokens", cls: "admin", doc: { summary: "API tokens (never their secrets)" } }, () => json(200, { object: "list", data: tokens.list() })),
    route({ method: "POST", path: "/v1/tokens", cls: "admin", maxBody: MAX_TOKEN_BODY, doc: { summary: "Mint an API token (the secret is in this answer only)", body: "actor, scopes, env, name, expires_at (unix seconds or ISO 8601)", ok: { status: 201, description: "the token, with its secret" } } }, async ({ body, caller }) => {
      const b = objectOf(body);
      const actor = b.actor ?? caller.actor;
      if (typeof actor !== "string" || !DID.test(actor)) throw new ApiError(400, "INVALID_REQUEST", "'actor' must be a DID such as did:sync:agent:ci");
      let scopes: Scope[] = [...DEFAULT_SCOPES];
      if (b.scopes !== undefined) {
        if (!Array.isArray(b.scopes) || !b.scopes.length || !b.scopes.every(isScope)) {
          throw new ApiError(400, "INVALID_REQUEST", `'scopes' must be a non-empty list of: ${SCOPES.join(", ")}`);
        }
        scopes = [...new Set(b.scopes as Scope[])];
      }
      const env = b.env ?? "local";
      if (typeof env !== "string" || !/^[a-z0-9]{1,16}$/.test(env)) throw new ApiError(400, "INVALID_REQUEST", "'env' must be 1-16 lowercase letters or digits");
      const name = b.name ?? "";
      if (typeof name !== "string" || name.length > 200) throw new ApiError(400, "INVALID_REQUEST", "'name' must be a string of at most 200 characters");
      let expiresAt: number | null = null;
      try {
        if (b.expires_at != null) expiresAt = parseExpiresAt(b.expires_at, Date.now() / 1000);
      } catch (err) {
        throw new ApiError(400, "INVALID_REQUEST", (err as Error).message);
      }
      const t = mintToken(env);
      await writeAuth(state, caller.actor, tokenRecordBody({ id: t.id, env: t.env, secretSha256: t.secretSha256, actor, scopes, name, expiresAt }));
      state.log.info("token created", { token_id: t.id, actor, scopes: scopes.join(","), by: caller.actor });
      return json(201, { object: "token", ...tokens.get(t.id)!, token: t.token });
    }),
    route({ method: "POST", path: "/v1/tokens/:id/revoke", cls: "admin", maxBody: MAX_TOKEN_BODY, doc: { summary: "Revoke an API token" } }, revoke),
    route({ method: "DELETE", path: "/v1/tokens/:id", cls: "admin", maxBody: MAX_TOKEN_BODY, doc: { summary: "Revoke an API token" } }, revoke),
  ];
}

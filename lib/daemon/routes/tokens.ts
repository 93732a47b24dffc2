// API tokens (admin class): GET /v1/tokens, POST /v1/tokens, POST /v1/tokens/:id/revoke.
// The plaintext is generated here and leaves only in the creating answer; the record holds its hash.
import { prepareRecord } from "../../records/envelope";
import { AUTH_THREAD, DEFAULT_SCOPES, mintToken, parseExpiresAt, revokeRecordBody, SCOPES, tokenRecordBody, type Scope } from "../../auth/tokens";
import type { DaemonState } from "../state";
import { ApiError, json } from "../../api/http";
import { route, type RouteCall } from "../../api/route";
import { NO_QUERY, T, UnixSecs, listOf, nullable, oneOf, type Static } from "../../api/schema";

async function writeAuth(state: DaemonState, actor: string, body: Record<string, unknown>) {
  const [r] = await state.ingest.submit([prepareRecord({ thread: AUTH_THREAD, actor, act: "LEARN", body })]);
  if (r!.status === "error") throw new ApiError(r!.error.status, r!.error.code, r!.error.message);
  return r!.record;
}

const MAX_TOKEN_BODY = 64 * 1024;

const Token = T.Object(
  {
    object: T.Optional(T.Literal("token", { description: "on a single token (not in lists)" })),
    id: T.String(),
    env: T.String(),
    name: T.String(),
    actor: T.String(),
    scopes: T.Array(oneOf(SCOPES)),
    created_at: UnixSecs,
    created_by: T.String(),
    record_id: T.String(),
    expires_at: nullable(UnixSecs),
    revoked: T.Boolean(),
    revoked_at: nullable(UnixSecs),
    revoked_reason: nullable(T.String()),
  },
  { $id: "Token" },
);

const NewToken = T.Object(
  {
    actor: T.Optional(T.String({ pattern: "^did:[a-z0-9]+:\\S+$", "x-expected": "a DID such as did:sync:agent:ci", description: "the DID the token acts as (default: yours)" })),
    scopes: T.Optional(T.Array(oneOf(SCOPES), { minItems: 1, "x-expected": `a non-empty list of: ${SCOPES.join(", ")}`, description: `default: ${DEFAULT_SCOPES.join(", ")}` })),
    env: T.Optional(T.String({ pattern: "^[a-z0-9]{1,16}$", "x-expected": "1-16 lowercase letters or digits", default: "local" })),
    name: T.Optional(T.String({ maxLength: 200 })),
    expires_at: T.Optional(
      nullable(
        T.Union([T.Number({ minimum: 1 }), T.String()], {
          description: "unix seconds or ISO 8601 with a zone",
          "x-expected": "unix seconds or an ISO 8601 time with a zone, e.g. 2027-01-31T00:00:00Z",
        }),
      ),
    ),
  },
  { additionalProperties: false, description: "the token to mint (every field optional)" },
);

const Revoke = T.Object({ reason: T.Optional(T.String({ description: 'default "revoked by operator"' })) }, { additionalProperties: false, description: "why (optional)" });

/** POST /v1/tokens/:id/revoke and DELETE /v1/tokens/:id: one route under two names. */
const REVOKE = {
  cls: "admin",
  maxBody: MAX_TOKEN_BODY,
  summary: "Revoke an API token",
  query: NO_QUERY,
  body: Revoke,
  bodyOptional: true,
  answers: { 200: { description: "the token, revoked (again: it was already)", schema: Token } },
  errors: { 404: "TOKEN_NOT_FOUND" },
} as const;

export function tokenRoutes(state: DaemonState) {
  const { tokens } = state.engine;
  const revoke = async ({ params, json: b, caller }: RouteCall<unknown, Static<typeof Revoke>>) => {
    const id = params.id!;
    const t = tokens.get(id);
    if (!t) throw new ApiError(404, "TOKEN_NOT_FOUND", `no token with id ${id} — 'spl token list' shows them`);
    if (t.revoked) return json(200, { object: "token", ...t });
    const reason = b.reason ?? "revoked by operator";
    await writeAuth(state, caller.actor, revokeRecordBody(id, reason));
    state.log.info("token revoked", { token_id: id, actor: caller.actor });
    return json(200, { object: "token", ...tokens.get(id)! });
  };
  return [
    route(
      { method: "GET", path: "/v1/tokens", cls: "admin", summary: "API tokens (never their secrets)", query: NO_QUERY, answers: { 200: { description: "every token", schema: listOf(Token) } } },
      () => json(200, { object: "list", data: tokens.list() }),
    ),
    route(
      {
        method: "POST",
        path: "/v1/tokens",
        cls: "admin",
        maxBody: MAX_TOKEN_BODY,
        summary: "Mint an API token (the secret is in this answer only)",
        query: NO_QUERY,
        body: NewToken,
        bodyOptional: true,
        answers: { 201: { description: "the token, with its secret", schema: T.Composite([Token, T.Object({ token: T.String({ description: "the bearer secret: shown once" }) })]) } },
      },
      async ({ json: b, caller }) => {
        const actor = b.actor ?? caller.actor;
        const scopes: Scope[] = b.scopes ? [...new Set(b.scopes)] : [...DEFAULT_SCOPES];
        const env = b.env ?? "local";
        const name = b.name ?? "";
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
      },
    ),
    route({ method: "POST", path: "/v1/tokens/:id/revoke", ...REVOKE }, revoke),
    route({ method: "DELETE", path: "/v1/tokens/:id", ...REVOKE }, revoke),
  ];
}

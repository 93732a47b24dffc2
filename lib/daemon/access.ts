// Who is calling, and may they? Runs inside every matched route but GET /health (app.ts), on TCP
// and the socket: bearer token (TCP needs one unless auth is off) → the actor it acts as →
// token scopes → CEL permission rules. The gate keeps identity, scopes and rules only: what a
// record may be is decided by the write checks (write-checks.ts and the capabilities'), which the
// ingest queue runs inside the write transaction, where the clock a rule sees is the one stored.
// The socket is trusted by its file mode and acts as the config's [identity] actor; a bearer sent
// over the socket is still honoured, so a token's actor can be exercised locally too.
import { isLoopback } from "../net";
import type { Envelope } from "../records/types";
import { hasScope, scopeForClass, type TokenInfo } from "../auth/tokens";
import { syntheticRecord, type Decision } from "../engine/permissions";
import { ApiError, errorResponse } from "../api/http";
import type { Caller, CredentialSource, Guarded, WriteAs } from "../api/caller";
import type { ReservedThread } from "../records/reserved-threads";
import type { Engine } from "../engine/runtime";
import type { Logger } from "../log";
import type { Metrics } from "./metrics";

export type { Caller, Guarded } from "../api/caller";

/** What the gate reads of the daemon. */
export interface GateContext {
  engine: Engine;
  log: Logger;
  metrics: Metrics;
  /** The operator's actor: what the socket (and TCP with auth off) acts as. */
  operator: string;
  startedAt: number;
  viaSocket: WeakSet<Request>;
  /** Whether TCP requests need a bearer token right now. */
  tcpAuthRequired(): boolean;
  /** Reserved threads with a read scope of their own. */
  reserved: readonly ReservedThread[];
  /** Bearer kinds the capabilities check themselves (filled once they are set up). */
  credentials: readonly CredentialSource[];
}

/** The header a caller uses to act as another actor (records-api 3.0). */
export const ACTOR_HEADER = "x-syncropel-actor";
const DID = /^did:[a-z0-9]+:\S+$/;

/** Whether TCP requests must carry a bearer token right now. */
export function tcpAuthRequired(o: { insecureLocalhost: boolean; authRequired: boolean | null | undefined; bindHost: string }): boolean {
  if (o.insecureLocalhost) return false;
  // auth_required=false is honoured only on loopback; on any other address auth stays on.
  return o.authRequired !== false || !isLoopback(o.bindHost);
}

function unauthorized(message: string, code = "AUTH_REQUIRED"): Response {
  const res = errorResponse(401, code, message);
  res.headers.set("www-authenticate", 'Bearer realm="spl"');
  return res;
}

function tokenCaller(token: TokenInfo, via: Caller["via"]): Caller {
  // Only admin acts for others; fleet members are checked by the fleet itself (its CredentialSource).
  const actsForOthers = hasScope(token.scopes, "admin");
  return { actor: token.actor, via, token, scopes: token.scopes, actsForOthers };
}

export class Gate {
  private readonly permissionLog;
  private readonly readScopes: Map<string, string>;

  constructor(private readonly state: GateContext) {
    this.permissionLog = state.log.child("spl::permissions");
    this.readScopes = new Map(state.reserved.filter((t) => t.read).map((t) => [t.thread, t.read!]));
  }

  claimDenied(caller: Caller, actor: string): ApiError {
    return new ApiError(
      403,
      "DID_CLAIM_DENIED",
      `token ${caller.token?.id} acts as ${caller.token?.actor} and may not act as ${actor} — write as ${caller.token?.actor} (spl --actor ${caller.token?.actor}), or use a token that may act for others (scope admin)`,
    );
  }

  /** Threads whose records `caller` may not read (reserved threads with a read scope it lacks). */
  unreadable(caller: Caller): string[] {
    if (!caller.scopes) return [];
    return [...this.readScopes].filter(([, scope]) => !hasScope(caller.scopes!, scope)).map(([thread]) => thread);
  }

  /** Refuses reading `thread` when it is reserved with a read scope the caller lacks. */
  checkRead(caller: Caller, thread: string): void {
    const scope = this.readScopes.get(thread);
    if (scope && caller.scopes && !hasScope(caller.scopes, scope)) {
      throw new ApiError(403, "SCOPE_FORBIDDEN", `the records of ${thread} are readable with scope ${scope} only; token ${caller.token?.id} has ${caller.scopes.join(",") || "none"} — use a token with scope ${scope}`);
    }
  }

  /** The capability that checks bearers of this kind (spl_<kind>_...), if one does. */
  private sourceOf(bearer: string): CredentialSource | undefined {
    for (const s of this.state.credentials) for (const k of s.kinds) if (bearer.startsWith(`spl_${k}_`)) return s;
  }

  /** Identifies the caller of a matched route and checks scope and (unless per record) rules. */
  admit(request: Request, route: Guarded, thread = ""): Caller | Response {
    const caller = this.identify(request);
    if (caller instanceof Response) return caller;
    if (caller instanceof ApiError) return errorResponse(caller.status, caller.code, caller.message);
    if (caller.routes && !caller.routes.includes(route.label)) {
      return errorResponse(403, "SCOPE_FORBIDDEN", `this credential is good for ${caller.routes.join(", ")} only, not ${route.label} — use a member or API token`);
    }
    if (caller.scopes && !hasScope(caller.scopes, scopeForClass(route.cls))) {
      return errorResponse(
        403,
        "SCOPE_FORBIDDEN",
        `token ${caller.token?.id} (scopes ${caller.scopes.join(",") || "none"}) may not ${route.cls} (${route.label}): it needs scope ${scopeForClass(route.cls)} — create a token with that scope ('spl token create --scopes ...')`,
      );
    }
    if (!this.state.engine.config.permissionsEnabled || route.rulesPerRecord) return caller;
    const err = this.checkRules(caller, route, syntheticRecord(caller.actor, thread));
    return err ? err.response() : caller;
  }

  /** The permission rules for one record about to be written (null: allowed or enforcement off). */
  checkRecord({ caller, route }: WriteAs, rec: Envelope): ApiError | null {
    return this.state.engine.config.permissionsEnabled ? this.checkRules(caller, route, rec) : null;
  }

  private identify(request: Request): Caller | Response | ApiError {
    const { state } = this;
    const via = state.viaSocket.has(request) ? "socket" : "tcp";
    let caller: Caller;
    const header = request.headers.get("authorization");
    if (header) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) return unauthorized("the Authorization header must be 'Bearer <token>' — use the token in <home>/token or one from 'spl token create'");
      const own = this.sourceOf(m[1]!);
      if (own) {
        const c = own.identify(m[1]!, via, request);
        if (c instanceof ApiError) return c.status === 401 ? unauthorized(c.message, c.code) : c;
        caller = c;
      } else {
        const v = state.engine.tokens.verify(m[1]!);
        if (!v.ok) return unauthorized(`${v.why} — use a valid token (see 'spl token list'; create one with 'spl token create')`);
        caller = tokenCaller(v.token, via);
      }
    } else if (via === "tcp" && state.tcpAuthRequired()) {
      return unauthorized(
        "this endpoint needs 'Authorization: Bearer spl_<env>_<id>_<secret>' — use the token in <home>/token (SPL_TOKEN for the CLI) or create one with 'spl token create'",
      );
    } else {
      caller = { actor: state.operator, via, token: null, scopes: null, actsForOthers: true };
    }
    const claim = request.headers.get(ACTOR_HEADER);
    if (claim === null || claim === caller.actor) return caller;
    if (!DID.test(claim)) return new ApiError(400, "INVALID_ACTOR", `${ACTOR_HEADER} must be a DID such as did:sync:agent:ci, got ${JSON.stringify(claim.slice(0, 100))}`);
    if (!caller.actsForOthers) return this.claimDenied(caller, claim);
    return { ...caller, actor: claim };
  }

  private checkRules(caller: Caller, route: Guarded, record: Partial<Envelope>): ApiError | null {
    const d = this.state.engine.permissions.check(caller.actor, route.cls, record, this.state.startedAt);
    this.state.metrics.decision(d.allowed);
    return d.allowed ? null : this.denied(caller, route, d);
  }

  private denied(caller: Caller, route: Guarded, d: Decision): ApiError {
    const { actor } = caller;
    this.permissionLog.warn("PERMISSION DENIED", { actor, resource: route.cls, route: route.label, reason: d.reason });
    return new ApiError(
      403,
      "PERMISSION_DENIED",
      `permission denied: ${actor} may not ${route.cls} (${route.label}): ${d.reason} — an operator can allow it with 'spl config add-permission-rule'; locked out? see 'spl config permissions-unlock'`,
      { permission: { actor, resource: d.resource, rule: d.rule ?? null, priority: d.priority ?? null, reason: d.reason, route: route.label } },
    );
  }
}

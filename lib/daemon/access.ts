// Who is calling, and may they? Runs inside every matched route but GET /health (app.ts), on TCP
// and the socket: bearer token (TCP needs one unless auth is off) → the actor it acts as →
// token scopes → CEL permission rules. Record writes are authorized once more per record, inside
// the write transaction (writeAuthorizer), where the clock a rule sees is the one stored; the
// task status machine is checked there too, so a refused transition is never written.
// The socket is trusted by its file mode and acts as the config's [identity] actor; a bearer sent
// over the socket is still honoured, so a token's actor can be exercised locally too.
import type { Envelope } from "../records/types";
import { AUTH_THREAD, hasScope, scopeForClass, type TokenInfo } from "../auth/tokens";
import { ENGINE_CONFIG_THREAD } from "../engine/config-fold";
import { FLEET_CONTROL_THREAD, INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import { syntheticRecord, type Decision, type RouteClass } from "../engine/permissions";
import { ApiError, errorResponse } from "./http";
import type { DaemonState } from "./state";

export interface Caller {
  /** The actor this request acts as: the token's DID, the socket's [identity] actor, or an allowed claim. */
  actor: string;
  via: "socket" | "tcp";
  /** The token used, if any. */
  token: TokenInfo | null;
  /** null = every scope (socket, or TCP with auth off). */
  scopes: readonly string[] | null;
  /** May write records naming another actor (trusted callers and admin tokens). */
  actsForOthers: boolean;
}

/** What the gate needs to know about the route it guards. */
export interface Guarded {
  cls: RouteClass;
  /** "METHOD /template", named in denials and logs. */
  label: string;
  /** Rules are checked per record in the write path instead of once here. */
  rulesPerRecord?: boolean;
}

/** The header a caller uses to act as another actor (records-api 3.0). */
export const ACTOR_HEADER = "x-syncropel-actor";
const DID = /^did:[a-z0-9]+:\S+$/;

export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h) || h === "::ffff:127.0.0.1";
}

/** Whether TCP requests must carry a bearer token right now. */
export function tcpAuthRequired(state: DaemonState): boolean {
  if (state.auth.insecureLocalhost) return false;
  // auth_required=false is honoured only on loopback; on any other address auth stays on.
  return state.engine.config.authRequired !== false || !isLoopback(state.bind.host);
}

function unauthorized(message: string): Response {
  const res = errorResponse(401, "AUTH_REQUIRED", message);
  res.headers.set("www-authenticate", 'Bearer realm="spl"');
  return res;
}

function claimDenied(caller: Caller, actor: string): ApiError {
  return new ApiError(
    403,
    "DID_CLAIM_DENIED",
    `token ${caller.token?.id} acts as ${caller.token?.actor} and may not act as ${actor} — write as ${caller.token?.actor} (spl --actor ${caller.token?.actor}), or use a token that may act for others (scope admin)`,
  );
}

export class Gate {
  private readonly permissionLog;

  constructor(private readonly state: DaemonState) {
    this.permissionLog = state.log.child("spl::permissions");
  }

  /** Identifies the caller of a matched route and checks scope and (unless per record) rules. */
  admit(request: Request, route: Guarded, thread = ""): Caller | Response {
    const caller = this.identify(request);
    if (caller instanceof Response) return caller;
    if (caller instanceof ApiError) return errorResponse(caller.status, caller.code, caller.message);
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

  /**
   * The one authorization of a record write, run by the ingest queue inside its transaction,
   * after the store assigned the clock and before the insert: reserved threads, the config:write
   * scope for engine config, the actor the caller may write as, and the permission rules with
   * `record` bound to the record as it will be stored. Throws ApiError; nothing is written then.
   */
  writeAuthorizer(caller: Caller, route: Guarded): (rec: Envelope) => void {
    const { tasks } = this.state.engine;
    // Task records this submission staged; a refusal rolls the whole submission back, so unstage them.
    const staged: Envelope[] = [];
    const authorize = (rec: Envelope) => {
      if (rec.thread === AUTH_THREAD) {
        throw new ApiError(403, "RESERVED_THREAD", `${AUTH_THREAD} holds API tokens and is written only by the daemon — use 'spl token create|revoke'`);
      }
      if (rec.thread === ENGINE_CONFIG_THREAD && caller.scopes && !hasScope(caller.scopes, "config:write")) {
        throw new ApiError(403, "SCOPE_FORBIDDEN", `writing ${ENGINE_CONFIG_THREAD} needs scope config:write; token ${caller.token?.id} has ${caller.scopes.join(",")}`);
      }
      if ((rec.thread === INSTANCE_REGISTRY_THREAD || rec.thread === FLEET_CONTROL_THREAD) && caller.scopes && !hasScope(caller.scopes, "fleet:control")) {
        throw new ApiError(403, "RESERVED_THREAD", `${rec.thread} is written only by fleet members (scope fleet:control); token ${caller.token?.id} has ${caller.scopes.join(",")} — use the fleet token (spl fleet token, spl fleet join)`);
      }
      if (rec.actor !== caller.actor && !caller.actsForOthers) throw claimDenied(caller, rec.actor);
      const frozen = this.state.fleet.control.refusal(rec);
      if (frozen) throw frozen;
      if (this.state.engine.config.permissionsEnabled) {
        const err = this.checkRules(caller, route, rec);
        if (err) throw err;
      }
      // The task status machine, against the table plus records accepted earlier in this transaction.
      const refusal = tasks.check(rec);
      if (refusal) throw new ApiError(refusal.status, refusal.code, refusal.message);
      if (tasks.stage(rec)) staged.push(rec);
    };
    return (rec) => {
      try {
        authorize(rec);
      } catch (err) {
        tasks.unstage(staged.splice(0));
        throw err;
      }
    };
  }

  private identify(request: Request): Caller | Response | ApiError {
    const { state } = this;
    const via = state.viaSocket.has(request) ? "socket" : "tcp";
    let caller: Caller;
    const header = request.headers.get("authorization");
    if (header) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
      if (!m) return unauthorized("the Authorization header must be 'Bearer <token>' — use the token in <home>/token or one from 'spl token create'");
      const v = state.engine.tokens.verify(m[1]!);
      if (!v.ok) return unauthorized(`${v.why} — use a valid token (see 'spl token list'; create one with 'spl token create')`);
      // A fleet token relays records written by others (heartbeats name their instance, SPEC 14).
      const actsForOthers = hasScope(v.token.scopes, "admin") || v.token.scopes.includes("fleet:control");
      caller = { actor: v.token.actor, via, token: v.token, scopes: v.token.scopes, actsForOthers };
    } else if (via === "tcp" && tcpAuthRequired(state)) {
      return unauthorized(
        "this endpoint needs 'Authorization: Bearer spl_<env>_<id>_<secret>' — use the token in <home>/token (SPL_TOKEN for the CLI) or create one with 'spl token create'",
      );
    } else {
      caller = { actor: state.config.identity.actor, via, token: null, scopes: null, actsForOthers: true };
    }
    const claim = request.headers.get(ACTOR_HEADER);
    if (claim === null || claim === caller.actor) return caller;
    if (!DID.test(claim)) return new ApiError(400, "INVALID_ACTOR", `${ACTOR_HEADER} must be a DID such as did:sync:agent:ci, got ${JSON.stringify(claim.slice(0, 100))}`);
    if (!caller.actsForOthers) return claimDenied(caller, claim);
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

// Who is calling, and may they? Runs on every request but GET /health, on TCP and the socket:
//   bearer token (TCP needs one unless auth is off) → token scopes → CEL permission rules.
// The socket is trusted by its file mode and acts as the config's [identity] actor; a bearer sent
// over the socket is still honoured, so a token's actor can be exercised locally too.
import type { Envelope } from "../records/types";
import { AUTH_THREAD, hasScope, scopeForClass, type TokenInfo } from "../auth/tokens";
import { ENGINE_CONFIG_THREAD } from "../engine/config-fold";
import { routeClass, syntheticRecord, type RouteClass } from "../engine/permissions";
import { ApiError, errorResponse } from "./http";
import type { DaemonState } from "./state";

export interface Caller {
  actor: string;
  via: "socket" | "tcp";
  /** The token used, if any. */
  token: TokenInfo | null;
  /** null = every scope (socket, or TCP with auth off). */
  scopes: readonly string[] | null;
}

interface RequestInfo {
  caller: Caller;
  cls: RouteClass;
  path: string;
  route: string;
}

const infos = new WeakMap<Request, RequestInfo>();
const permissionLogs = new WeakMap<DaemonState, DaemonState["log"]>();
function permissionLog(state: DaemonState) {
  let log = permissionLogs.get(state);
  if (!log) permissionLogs.set(state, (log = state.log.child("spl::permissions")));
  return log;
}

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

const WWW_AUTH = { "www-authenticate": 'Bearer realm="spl"' };

function unauthorized(message: string): Response {
  const res = errorResponse(401, "AUTH_REQUIRED", message);
  for (const [k, v] of Object.entries(WWW_AUTH)) res.headers.set(k, v);
  return res;
}

function pathOf(url: string): string {
  // request.url is absolute; skip scheme://host without building a URL object.
  const start = url.indexOf("/", url.indexOf("//") + 2);
  const end = url.indexOf("?", start);
  return start < 0 ? "/" : end < 0 ? url.slice(start) : url.slice(start, end);
}

function identify(state: DaemonState, request: Request): Caller | Response {
  const via = state.viaSocket.has(request) ? "socket" : "tcp";
  const header = request.headers.get("authorization");
  if (header) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!m) return unauthorized("the Authorization header must be 'Bearer <token>' — use the token in <home>/token or one from 'spl token create'");
    const v = state.engine.tokens.verify(m[1]!);
    if (!v.ok) return unauthorized(`${v.why} — use a valid token (see 'spl token list'; create one with 'spl token create')`);
    return { actor: v.token.actor, via, token: v.token, scopes: v.token.scopes };
  }
  if (via === "tcp" && tcpAuthRequired(state)) {
    return unauthorized(
      "this endpoint needs 'Authorization: Bearer spl_<env>_<id>_<secret>' — use the token in <home>/token (SPL_TOKEN for the CLI) or create one with 'spl token create'",
    );
  }
  return { actor: state.config.identity.actor, via, token: null, scopes: null };
}

function denied(state: DaemonState, info: RequestInfo, reason: string): ApiError {
  const { actor } = info.caller;
  permissionLog(state).warn("PERMISSION DENIED", { actor, resource: info.cls, route: info.route, reason });
  return new ApiError(
    403,
    "PERMISSION_DENIED",
    `permission denied: ${actor} may not ${info.cls} (${info.route}): ${reason} — an operator can allow it with 'spl config add-permission-rule'; locked out? see 'spl config permissions-unlock'`,
  );
}

function checkRules(state: DaemonState, info: RequestInfo, record: Partial<Envelope> | undefined): ApiError | null {
  const actor = info.caller.actor;
  const d = state.engine.permissions.check(actor, info.cls, record ?? syntheticRecord(actor, threadOfPath(info.path)), state.startedAt);
  return d.allowed ? null : denied(state, info, d.reason);
}

/** Thread id named by a /v1/threads/:id/... path, for the synthetic GET record. */
function threadOfPath(path: string): string {
  if (!path.startsWith("/v1/threads/")) return "";
  const id = path.slice("/v1/threads/".length).split("/")[0] ?? "";
  try {
    return decodeURIComponent(id);
  } catch {
    return id;
  }
}

/** Record writes are checked by their route once the record is parsed (see authorizeRecords). */
const isRecordIngest = (method: string, path: string) => method === "POST" && (path === "/v1/records" || path === "/v1/records/batch");

/** The request gate (Elysia onRequest): a Response stops the request, undefined lets it through. */
export function gate(state: DaemonState, request: Request): Response | undefined {
  const method = request.method;
  const path = pathOf(request.url);
  const cls = routeClass(method, path);
  if (cls === null) return undefined;
  const caller = identify(state, request);
  if (caller instanceof Response) return caller;
  const info: RequestInfo = { caller, cls, path, route: `${method} ${path}` };
  infos.set(request, info);
  if (caller.scopes && !hasScope(caller.scopes, scopeForClass(cls))) {
    return errorResponse(
      403,
      "SCOPE_FORBIDDEN",
      `token ${caller.token?.id} (scopes ${caller.scopes.join(",") || "none"}) may not ${cls} (${info.route}): it needs scope ${scopeForClass(cls)} — create a token with that scope ('spl token create --scopes ...')`,
    );
  }
  if (!state.engine.config.permissionsEnabled || isRecordIngest(method, path)) return undefined;
  const err = checkRules(state, info, undefined);
  if (err) return errorResponse(err.status, err.code, err.message);
  return undefined;
}

/** The caller of a request that passed the gate (the operator for exempt routes). */
export function callerOf(state: DaemonState, request: Request): Caller {
  return infos.get(request)?.caller ?? { actor: state.config.identity.actor, via: state.viaSocket.has(request) ? "socket" : "tcp", token: null, scopes: null };
}

/**
 * Record writes: reserved threads, the config:write scope for engine config, and the permission
 * rules with `record` bound to each record written. Throws ApiError; nothing is written then.
 */
export function authorizeRecords(state: DaemonState, request: Request, records: readonly Envelope[]): void {
  const info = infos.get(request);
  // Every write passes the gate first; if one somehow did not, refuse rather than guess.
  if (!info) throw new ApiError(403, "PERMISSION_DENIED", "this request was not identified by the access gate; nothing was written");
  for (const rec of records) {
    if (rec.thread === AUTH_THREAD) {
      throw new ApiError(403, "RESERVED_THREAD", `${AUTH_THREAD} holds API tokens and is written only by the daemon — use 'spl token create|revoke'`);
    }
    if (rec.thread === ENGINE_CONFIG_THREAD && info.caller.scopes && !hasScope(info.caller.scopes, "config:write")) {
      throw new ApiError(403, "SCOPE_FORBIDDEN", `writing ${ENGINE_CONFIG_THREAD} needs scope config:write; token ${info.caller.token?.id} has ${info.caller.scopes.join(",")}`);
    }
  }
  if (!state.engine.config.permissionsEnabled) return;
  const readsClock = state.engine.permissions.readsClock;
  for (const rec of records) {
    // A clock left to the store is shown to rules as the one it would assign now (max + 1).
    const seen = rec.clock < 0 && readsClock ? { ...rec, clock: state.store.nextClock(rec.thread, rec.actor) } : rec;
    const err = checkRules(state, info, seen);
    if (err) throw err;
  }
}

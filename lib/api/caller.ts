// Who a request (or a peer's record) acts for, and on which route: what the gate decides on and
// what every write check sees.
import type { TokenInfo } from "../auth/tokens";
import type { RouteClass } from "../engine/permissions";
import type { ApiError } from "./http";

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
  /** The only routes ("METHOD /template") this caller may use; absent = any its scopes allow (a join credential: joining). */
  routes?: readonly string[];
}

/**
 * Bearers a capability issues and checks itself (the fleet's member and join credentials): the
 * gate hands it every bearer `spl_<kind>_…` of its kinds instead of looking in th_auth.
 */
export interface CredentialSource {
  readonly kinds: readonly string[];
  /** The caller this bearer is, or why it is refused (an ApiError: 401, 403, 409...). */
  identify(bearer: string, via: Caller["via"], request?: Request): Caller | ApiError;
}

/** What the gate needs to know about the route it guards. */
export interface Guarded {
  /** "open" only for the routes served to anyone (route.ts OPEN_PATHS), which write nothing. */
  cls: RouteClass | "open";
  /** "METHOD /template", named in denials and logs. */
  label: string;
  /** Rules are checked per record in the write path instead of once up front. */
  rulesPerRecord?: boolean;
}

/** A write on someone's behalf: the caller, and the route (or peer exchange) it came through. */
export interface WriteAs {
  caller: Caller;
  route: Guarded;
}

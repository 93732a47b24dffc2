// Threads the daemon gives a meaning to. Their ids are literal (not content-addressed) so an
// operator can name them on the command line; every module that reads or guards one imports it
// here. Who may write (and read) each is a row of one table, checked in the write path and by the
// read routes (ARCHITECTURE.md "Write checks"); a capability adds rows for its own threads.

/** Engine config: LEARNs keyed by body.topic (rules, switches, trust parameters). */
export const ENGINE_CONFIG_THREAD = "th_engine_config";
/** The instance's genesis LEARN, from which its DID is derived. */
export const INSTANCE_THREAD = "th_instance";
/** API tokens: one LEARN mints a token, another revokes it; written only by the daemon. */
export const AUTH_THREAD = "th_auth";
/** Fleet membership and control (lib/fleet). */
export const INSTANCE_REGISTRY_THREAD = "th_instance_registry";
export const FLEET_CONTROL_THREAD = "th_fleet_control";

export interface ReservedThread {
  thread: string;
  /**
   * Who may write it: "daemon" (nobody but the daemon itself: a caller is refused whatever its
   * scopes), or the token scope a caller needs (callers without scopes, the socket, pass).
   */
  write: "daemon" | string;
  /** The scope needed to read its records, when more than the read route's own. */
  read?: string;
  /** What it holds, named in refusals. */
  what: string;
  /** The refusal's code, and how to do what the caller wanted instead. */
  code: "RESERVED_THREAD" | "SCOPE_FORBIDDEN";
  fix: string;
}

/** The daemon's own reserved threads (capabilities declare theirs beside them). */
export const CORE_RESERVED_THREADS: readonly ReservedThread[] = [
  { thread: AUTH_THREAD, what: "API tokens", write: "daemon", read: "admin", code: "RESERVED_THREAD", fix: "use 'spl token create|revoke'" },
  { thread: ENGINE_CONFIG_THREAD, what: "engine config", write: "config:write", code: "SCOPE_FORBIDDEN", fix: "use a token with scope config:write ('spl token create --scopes ...')" },
];

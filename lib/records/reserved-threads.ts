// Threads the daemon gives a meaning to. Their ids are literal (not content-addressed) so an
// operator can name them on the command line; every module that reads or guards one imports it here.

/** Engine config: LEARNs keyed by body.topic (rules, switches, trust parameters). */
export const ENGINE_CONFIG_THREAD = "th_engine_config";
/** The instance's genesis LEARN, from which its DID is derived. */
export const INSTANCE_THREAD = "th_instance";
/** API tokens: one LEARN mints a token, another revokes it; written only by the daemon. */
export const AUTH_THREAD = "th_auth";
/** Fleet membership and control (fleet issues). */
export const INSTANCE_REGISTRY_THREAD = "th_instance_registry";
export const FLEET_CONTROL_THREAD = "th_fleet_control";

export const RESERVED_THREADS: readonly string[] = [
  ENGINE_CONFIG_THREAD,
  INSTANCE_THREAD,
  AUTH_THREAD,
  INSTANCE_REGISTRY_THREAD,
  FLEET_CONTROL_THREAD,
];

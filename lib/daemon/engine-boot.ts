// The engine's part of daemon startup (bind → rebuild_from_store() → ready): fold the log
// (records committed meanwhile are applied after it, see Engine.applyCommitted), refuse an
// unauthenticated non-loopback bind, mint the operator / bootstrap tokens if they are missing,
// then each capability's boot step (e.g. the fleet token), in list order.
import type { Phases } from "../progress/phase";
import { UserError } from "../errors";
import { AUTH_THREAD } from "../auth/tokens";
import { bootstrapTokenFromEnv, ensureBootstrapToken, ensureOperatorToken, type TokenBody } from "../auth/operator-token";
import { ENGINE_ACTOR } from "../instance";
import { prepareRecord } from "../records/envelope";
import { isLoopback } from "../net";
import type { DaemonState } from "./state";

/** `--insecure-localhost` binds loopback only: an explicit other --host is refused. */
export function insecureBindHost(flagHost: string | undefined): string {
  if (flagHost !== undefined && !isLoopback(flagHost)) {
    throw new UserError(
      `--insecure-localhost turns TCP auth off, so it binds loopback only; refusing --host ${flagHost}`,
      "drop --host (it binds 127.0.0.1), or drop --insecure-localhost and use tokens",
    );
  }
  return flagHost ?? "127.0.0.1";
}

async function writeAuthRecord(state: DaemonState, body: TokenBody): Promise<void> {
  const [r] = await state.ingest.submit([prepareRecord({ thread: AUTH_THREAD, actor: ENGINE_ACTOR, act: "LEARN", body })]);
  if (r!.status === "error") throw r!.error;
}

export async function startEngine(state: DaemonState, phases?: Phases): Promise<void> {
  const { engine, log } = state;
  await engine.rebuild(phases?.start("rebuild_from_store", state.store.counts.records));

  const { host, port } = state.bind;
  if (!state.auth.insecureLocalhost && engine.config.authRequired === false && !isLoopback(host)) {
    throw new UserError(
      `refusing to serve ${host}:${port} without auth: the engine config has auth_required=false, which is allowed on loopback only`,
      `bind 127.0.0.1, or turn auth back on: spl learn --thread th_engine_config --body '{"topic":"auth_required","enabled":true}'`,
    );
  }

  const operator = state.config.identity.actor;
  const minted = await ensureOperatorToken(state.paths.token, engine.tokens, operator, (b) => writeAuthRecord(state, b));
  if (minted === "minted") log.info("minted the operator's admin token", { path: state.paths.token, actor: operator });
  const boot = bootstrapTokenFromEnv();
  if (boot) {
    const r = await ensureBootstrapToken(boot.value, engine.tokens, operator, (b) => writeAuthRecord(state, b), boot.source);
    if (r === "minted") log.info(`registered ${boot.source} as an admin token`, { actor: operator });
  }
  for (const { parts } of state.capabilities) await parts.boot?.();
  if (state.auth.insecureLocalhost) log.warn("TCP auth is off (--insecure-localhost); listening on loopback only", { bind: `${host}:${port}` });
}

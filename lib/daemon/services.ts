// Background work the daemon runs besides answering requests (the idle WAL checkpoint today;
// heartbeat and reconciler next). Each service starts once the daemon is ready and is stopped,
// in reverse order of the list, on SIGTERM before the store is closed. A new service is one more
// entry in daemonServices().
import type { Logger } from "../log";
import type { DaemonState } from "./state";
import type { StoredRecord } from "../records/types";
import { fleetControlForwarder } from "../fleet/control-sync";

export interface Service {
  readonly name: string;
  start(): void;
  /** Stops timers and finishes or abandons in-flight work; the store is still open. */
  stop(): void | Promise<void>;
  /** Called after every commit (from the ingest queue's hook). */
  afterCommit?(created: StoredRecord[]): void;
}

export function daemonServices(state: DaemonState): Service[] {
  // The heartbeat is last, so it stops first: its draining beat goes out while the rest still runs.
  return [state.storage, idleCheckpoint(() => state.storage.checkpoint()), state.reconciler, state.fanout.service, ...(state.offsite ? [state.offsite] : []), ...(state.fleet.member.role === "coordinator" ? [fleetControlForwarder(state)] : []), state.fleet.heartbeat];
}

const IDLE_CHECKPOINT_MS = 1000;

/**
 * A second after the last write, copy the WAL into hub.db. Then a plain `cp hub.db` of a quiet
 * running instance (the runbook's pre-upgrade snapshot) holds every acknowledged record.
 */
export function idleCheckpoint(checkpoint: () => void, delayMs = IDLE_CHECKPOINT_MS): Service & { readonly pending: boolean } {
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running = false;
  const schedule = () => {
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = null;
      checkpoint();
    }, delayMs);
    timer.unref?.();
  };
  return {
    name: "idle-checkpoint",
    get pending() {
      return timer !== null;
    },
    start() {
      running = true;
      schedule(); // startup wrote too (operator token, instance identity)
    },
    stop() {
      running = false;
      if (timer) clearTimeout(timer);
      timer = null;
    },
    afterCommit() {
      if (running) schedule();
    },
  };
}

export function startServices(services: readonly Service[], log: Logger): void {
  for (const s of services) {
    s.start();
    log.info("service started", { service: s.name });
  }
}

/** Stops services last-started-first; one that fails is logged and does not keep the others running. */
export async function stopServices(services: readonly Service[], log: Logger): Promise<void> {
  for (const s of [...services].reverse()) {
    try {
      await s.stop();
      log.info("service stopped", { service: s.name });
    } catch (err) {
      log.error("service did not stop cleanly", { service: s.name, error: (err as Error)?.message ?? String(err) });
    }
  }
}

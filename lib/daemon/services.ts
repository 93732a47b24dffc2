// Background work the daemon runs besides answering requests (WAL checkpoints, the reconciler,
// fan-outs, off-host pushes, heartbeats). Each service starts once the daemon is ready and is stopped,
// in reverse order of the list, on SIGTERM before the store is closed. A new service is one more
// entry in daemonServices().
import type { Logger } from "../log";
import type { DaemonState } from "./state";
import type { StoredRecord } from "../records/types";
import { fleetControlForwarder } from "../fleet/control-sync";
import type { Database } from "bun:sqlite";
import { Checkpointer } from "../store/checkpointer";
import type { StorageHealth } from "./storage-health";

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
  return [state.storage, walCheckpointer(state.db, state.paths.store, state.storage), state.reconciler, state.fanout.service, ...(state.offsite ? [state.offsite] : []), ...(state.fleet.member.role === "coordinator" ? [fleetControlForwarder(state)] : []), state.fleet.heartbeat];
}

/**
 * WAL checkpoints on their own thread (lib/store/checkpointer.ts), counted per commit. Writes
 * never wait for a checkpoint, and shortly after the last write hub.db holds every record, so a
 * plain `cp hub.db` of a quiet running instance (the runbook's pre-upgrade snapshot) is complete.
 */
export function walCheckpointer(db: Database, storePath: string, storage: StorageHealth): Service {
  const checkpointer = new Checkpointer(db, storePath, (r) => {
    if ("error" in r) {
      storage.failed("checkpoint", new Error(r.error));
      void checkpointer.stop(); // back to SQLite's own checkpoints in COMMIT
    } else storage.noteCheckpoint(r.ok);
  });
  let running = false;
  return {
    name: "wal-checkpointer",
    start() {
      checkpointer.start();
      running = true;
    },
    stop() {
      running = false;
      return checkpointer.stop();
    },
    afterCommit() {
      if (running) checkpointer.committed();
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

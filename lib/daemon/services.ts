// Background work the daemon runs besides answering requests: its own (storage health, WAL
// checkpoints) and each capability's (the reconciler, fan-outs, off-host pushes, heartbeats).
// Each starts once the daemon is ready and is stopped, in reverse order, on SIGTERM before the
// store is closed (state.ts lists them).
import type { Database } from "bun:sqlite";
import type { Service } from "../capability";
import type { Logger } from "../log";
import { Checkpointer } from "../store/checkpointer";
import type { StorageHealth } from "./storage-health";

export type { Service };

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

// Emergency unlock (runbook "permission enforcement locked you out"): append
// permissions_enabled=false straight into a stopped daemon's store, no HTTP in the way. The
// clock goes above every clock on th_engine_config; store order already makes it the latest.
import { existsSync } from "node:fs";
import { acquireStoreLock, lockUnlessServing, type StoreLock } from "../daemonctl/store-lock";
import { UserError } from "../errors";
import { prepareRecord } from "../records/envelope";
import { openStore } from "../store/open";
import { RecordStore } from "../store/records";
import { ENGINE_CONFIG_THREAD } from "../engine/config-fold";

export interface UnlockResult {
  id: string;
  clock: number;
  records: number;
}

/** `force`: write even beside a running daemon (SQLite keeps the write safe; it applies at restart). */
export function writeUnlockRecord(storePath: string, actor: string, opts: { force?: boolean } = {}): UnlockResult {
  if (!existsSync(storePath)) throw new UserError(`no store at ${storePath}`, "nothing to unlock: without a store there is no enforcement");
  // The store lock keeps a daemon from starting (and folding the config) halfway through.
  const command = "config permissions-unlock";
  const lock: StoreLock | null = opts.force
    ? lockUnlessServing(storePath, command)
    : acquireStoreLock(storePath, { command }, { fix: "stop it first: spl serve --stop; spl config permissions-unlock; spl serve --daemon" });
  try {
    return appendUnlock(storePath, actor);
  } finally {
    lock?.release();
  }
}

function appendUnlock(storePath: string, actor: string): UnlockResult {
  const { db } = openStore(storePath);
  try {
    const store = new RecordStore(db);
    return store.transaction(() => {
      const clock = store.nextClockOnThread(ENGINE_CONFIG_THREAD);
      const p = prepareRecord({
        thread: ENGINE_CONFIG_THREAD,
        actor,
        act: "LEARN",
        clock,
        body: { topic: "permissions_enabled", enabled: false, reason: "spl config permissions-unlock" },
      });
      const { record } = store.insert(p, Math.floor(Date.now() / 1000));
      return { id: record.id, clock: record.clock, records: store.counts.records };
    });
  } finally {
    db.close();
  }
}

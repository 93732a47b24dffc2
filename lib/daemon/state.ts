// What the running daemon knows about itself; shared by routes, lifecycle and engine hooks.
import type { Database } from "bun:sqlite";
import type { SplConfig } from "../config";
import type { Logger } from "../log";
import type { HomePaths } from "../paths";
import type { RecordStore } from "../store/records";
import type { IngestQueue } from "./ingest";
import type { Engine } from "../engine/runtime";
import type { BackupInfo } from "../backup/startup";
import type { StorageHealth } from "./storage-health";

export type { BackupInfo };

export interface DaemonState {
  paths: HomePaths;
  config: SplConfig;
  log: Logger;
  db: Database;
  store: RecordStore;
  ingest: IngestQueue;
  /** Last write error and checkpoint progress (GET /v1/status `storage`). */
  storage: StorageHealth;
  instanceDid: string;
  startedAt: number;
  bind: { host: string; port: number };
  backup: BackupInfo | null;
  /** false until rebuild_from_store() has finished; /health answers 503 meanwhile. */
  ready: boolean;
  /** Requests that arrived on the Unix socket (trusted by file mode) rather than TCP. */
  viaSocket: WeakSet<Request>;
  /** Derived state folded from the log: engine config, trust, API tokens (lib/engine/runtime.ts). */
  engine: Engine;
  /** `spl serve --insecure-localhost`: TCP without bearer auth, bound to loopback only. */
  auth: { insecureLocalhost: boolean };
}

// What a capability is, and what the daemon hands it (ARCHITECTURE.md "Capabilities").
//
// A capability (tasks, dispatch, fleet, kill switch, fan-out, off-host backups...) is one module
// that exports one Capability: the static part (its config section, reserved threads, CEL
// functions, doctor rows) and setup(host), which returns what it adds to a running daemon (folds,
// services, routes, write checks, CEL facts, status fields, metrics). The daemon is assembled from
// one ordered list of them (lib/capabilities.ts) and hands each the same narrow Host: it never
// imports the daemon's assembly, and the assembly has no branch for any one capability.
import type { CredentialSource, WriteAs } from "./api/caller";
import type { Route } from "./api/route";
import type { ConfigSection } from "./config";
import type { Check } from "./doctor/types";
import type { Engine } from "./engine/runtime";
import type { Fold } from "./engine/folds";
import type { CelFunction, FactSource } from "./engine/vocabulary";
import type { Logger } from "./log";
import type { HomePaths } from "./paths";
import type { PeerClient } from "./peer";
import type { PreparedRecord } from "./records/envelope";
import type { Envelope, StoredRecord } from "./records/types";
import type { ReservedThread } from "./records/reserved-threads";
import type { ItemResult, WriteCheck as QueueWriteCheck } from "./store/ingest-queue";
import type { RecordStore } from "./store/records";

/** A background loop: started once the daemon is ready, stopped in reverse list order on SIGTERM. */
export interface Service {
  readonly name: string;
  start(): void;
  /** Stops timers and finishes or abandons in-flight work; the store is still open. */
  stop(): void | Promise<void>;
  /** Called after every commit with the records it created, in store order. */
  afterCommit?(created: StoredRecord[]): void;
}

/** A write check of the daemon's or a capability's (lib/store/ingest-queue.ts runs them, in phase order). */
export type WriteCheck = QueueWriteCheck<WriteAs>;
export type { WritePhase } from "./store/ingest-queue";

/** A typed name for something one capability provides and another uses (Host.provide/use). */
export interface Slot<T> {
  readonly name: string;
  /** Type carrier only. */
  readonly __type?: T;
}
export const slot = <T>(name: string): Slot<T> => ({ name });

/**
 * A thread's status when a capability gives its threads a meaning of their own (a task's thread
 * is open until the task is approved or cancelled, whatever KNOW fulfilled its INTEND); undefined
 * leaves the store's (closed once a KNOW fulfils or a DO cancels). The thread routes read it.
 */
export const THREAD_STATUS = slot<(thread: string) => "open" | "closed" | undefined>("thread status");

/** Prometheus families a capability adds to GET /metrics. */
export interface MetricsOut {
  family(name: string, type: "counter" | "gauge" | "histogram", help: string): void;
  sample(name: string, value: number, labels?: Record<string, string>): void;
}

/** One record to write as the daemon (actor defaults to the engine's). */
export type Draft = Pick<Envelope, "thread" | "act" | "body"> & Partial<Pick<Envelope, "actor" | "parents" | "clock" | "judged_by">>;

/** What a capability may use of the running daemon. */
export interface Host {
  readonly instanceDid: string;
  /** When the daemon started (ms since the epoch). */
  readonly startedAt: number;
  readonly paths: HomePaths;
  /** Where the TCP listener is bound. */
  readonly bind: { readonly host: string; readonly port: number };
  /** The operator's actor ([identity] actor). */
  readonly operator: string;
  readonly log: Logger;
  /** The clock every capability reads (ms), so tests and figures agree on one. */
  now(): number;
  /** The store, read-only. Writes go through submit(). */
  readonly store: Pick<RecordStore, "get" | "list" | "counts" | "actorOf" | "threadState">;
  /** Engine config, trust and the CEL scope of an actor (read-only). */
  readonly engine: Pick<Engine, "config" | "trust" | "tokens" | "scope" | "system">;
  /** Member-to-member HTTP: one client, one credential, one error text. */
  readonly peers: PeerClient;
  /** Whether rebuild_from_store() has finished. */
  ready(): boolean;
  /** This daemon's value of a config section (parsed, with defaults). */
  config<T>(section: ConfigSection<T>): T;
  /**
   * Writes records through the one write path. Without `as` they are the daemon's own (no caller
   * checks, like every engine write); with it, every write check runs for that caller, exactly as
   * for a request (records a peer pushes or a member pulls).
   */
  submit(records: PreparedRecord[], as?: WriteAs): Promise<ItemResult[]>;
  /** One record as the daemon; a refusal throws. */
  write(draft: Draft): Promise<StoredRecord>;
  provide<T>(s: Slot<T>, value: T): void;
  /** What an earlier capability in the list provided; throws naming both when it did not. */
  use<T>(s: Slot<T>): T;
  /** An optional dependency, looked up when called (either order in the list). */
  find<T>(s: Slot<T>): T | undefined;
}

/** What a capability adds to a running daemon. */
export interface Parts {
  folds?: Fold[];
  services?: Service[];
  routes?: Route[];
  writeChecks?: WriteCheck[];
  /** Live facts behind this capability's CEL functions. */
  facts?: FactSource[];
  /** Fields added to GET /v1/status (and what `spl status`, doctor and the console read). */
  status?(): Record<string, unknown>;
  metrics?(out: MetricsOut): void;
  /** After rebuild_from_store(), before the daemon is ready (e.g. a credential to register). */
  boot?(): Promise<void>;
  /** Bearers this capability issues and checks itself (the gate asks it about their kinds). */
  credentials?: CredentialSource;
}

export interface Capability {
  readonly name: string;
  readonly config?: ConfigSection<any>;
  /** Threads only this capability's writers may write, or read (ARCHITECTURE.md "Write checks"). */
  readonly reservedThreads?: readonly ReservedThread[];
  /** CEL functions every rule may call; their facts come from setup's `facts`. */
  readonly cel?: readonly CelFunction[];
  /** `spl doctor` rows (run by the CLI against the home and its daemon). */
  readonly doctor?: readonly Check[];
  setup(host: Host): Parts;
}

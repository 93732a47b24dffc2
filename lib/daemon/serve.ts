// The daemon process: the startup order, the two listeners, and graceful shutdown.
//   store lock (spl.lock) and pid file → bind TCP and the Unix socket (503 "starting") →
//   open store + integrity → pin the startup backup's snapshot (its worker writes it meanwhile) →
//   migrations, instance identity → rebuild_from_store() → ready
// Binding comes before the backup so a port in use refuses the start before any backup rotates,
// and probes see "starting" (not a refused connection) during a long start.
import type { Server } from "bun";
import { rmSync } from "node:fs";
import { loadConfig, readSettingFile, unknownConfigKeys, type SplConfig } from "../config";
import { CONFIG_SECTIONS } from "../capabilities";
import { UserError } from "../errors";
import { ensureHome } from "../home";
import { ensureInstanceDid } from "../instance";
import { stderrIsJournal } from "../journal";
import { createFileLogger, type Logger } from "../log";
import { homePaths, type HomePaths } from "../paths";
import { checkpoint, openStore } from "../store/open";
import { RecordStore } from "../store/records";
import { VERSION } from "../version";
import { buildApp, type DirectRoutes } from "./app";
import { errorResponse, json } from "../api/http";
import { REQUEST_BODY_CAP } from "../api/route";
import { renderBanner } from "../daemonctl/banner";
import { startServices, stopServices } from "./services";
import { acquirePidFile, releasePidFile } from "../daemonctl/pidfile";
import { acquireStoreLock, type StoreLock } from "../daemonctl/store-lock";
import { clearStaleSocket, restrictSocket } from "../daemonctl/socket";
import { createDaemonState, type DaemonState } from "./state";
import { isLoopback } from "../net";
import { StoreDamagedError } from "../store/integrity";
import { warnIfStoreLost } from "../backup/startup";
import { startStartupBackup, type StartupBackup } from "../backup/background";
import { insecureBindHost, startEngine } from "./engine-boot";
import { phases as makePhases, type Phases } from "../progress/phase";

export interface ServeOptions {
  port?: number;
  host?: string;
  /** TCP without bearer auth, loopback only (engine-boot.ts). */
  insecureLocalhost?: boolean;
}

const SHUTDOWN_GRACE_MS = 10_000;

function resolveBind(opts: ServeOptions, config: SplConfig) {
  if (opts.insecureLocalhost) return { host: insecureBindHost(opts.host), port: opts.port ?? config.server.port };
  return { host: opts.host ?? config.server.host, port: opts.port ?? config.server.port };
}

/** Where the listeners send requests: a 503 "starting" answer until the app exists. */
interface Handlers {
  tcp: (req: Request, server: Server<unknown>) => Response | Promise<Response>;
  unix: (req: Request) => Response | Promise<Response>;
}

function startingHandlers(paths: HomePaths): Handlers {
  const starting = (req: Request, local: boolean) =>
    new URL(req.url).pathname === "/health"
      ? json(503, local ? { status: "starting", pid: process.pid, home: paths.home } : { status: "starting" })
      : errorResponse(503, "STARTING", "the daemon is starting (checking and backing up the store) — retry in a moment");
  return { tcp: (req, server) => starting(req, isLoopback(server.requestIP(req)?.address ?? "")), unix: (req) => starting(req, true) };
}

// Bun's own cap on a request body is fixed at bind time, before the routes exist: REQUEST_BODY_CAP,
// which buildApp checks covers every route; each route enforces its own limit while the body
// streams in (http.ts readBody).
function listenTcp(bind: { host: string; port: number }, handlers: Handlers, tls: { cert: string; key: string } | undefined): Server<unknown> {
  const { host, port } = bind;
  try {
    return Bun.serve({
      hostname: host,
      port,
      tls,
      // Elysia/Bun would otherwise let a second daemon bind the same port silently.
      reusePort: false,
      maxRequestBodySize: REQUEST_BODY_CAP,
      fetch: (req, server) => handlers.tcp(req, server),
    });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE" || /in use/i.test(e.message)) {
      throw new UserError(
        `address already in use: ${host}:${port}`,
        `another spl? run 'spl status'; otherwise find the owner with 'ss -tlnp | grep ${port}', or pick another --port`,
      );
    }
    if (e.code === "EADDRNOTAVAIL" || e.code === "EACCES") {
      throw new UserError(`cannot bind ${host}:${port}: ${e.message}`, "check --host/--port (ports below 1024 need privileges)");
    }
    throw err;
  }
}

function listenUnix(paths: HomePaths, handlers: Handlers): Server<unknown> {
  const server = Bun.serve({
    unix: paths.socket,
    maxRequestBodySize: REQUEST_BODY_CAP,
    fetch: (req) => handlers.unix(req),
  });
  restrictSocket(paths.socket);
  return server;
}

/** Hands the hot routes to Bun's router on both listeners (app.ts); everything else stays on fetch. */
function mountDirectRoutes([tcp, unix]: Server<unknown>[], handlers: Handlers, direct: DirectRoutes, viaSocket: WeakSet<Request>) {
  const onSocket: DirectRoutes = {};
  for (const [path, methods] of Object.entries(direct)) {
    onSocket[path] = Object.fromEntries(
      Object.entries(methods).map(([method, handle]) => [
        method,
        (req: Request) => {
          viaSocket.add(req);
          return handle!(req);
        },
      ]),
    );
  }
  tcp!.reload({ routes: direct, fetch: (req, server) => handlers.tcp(req, server) } as Parameters<Server<unknown>["reload"]>[0]);
  unix!.reload({ routes: onSocket, fetch: (req) => handlers.unix(req) } as Parameters<Server<unknown>["reload"]>[0]);
}

/** [server] tls_cert_file / tls_key_file, read now: an unreadable file stops the start naming it. */
function readTls(config: SplConfig): { cert: string; key: string } | undefined {
  const { tlsCertFile, tlsKeyFile } = config.server;
  if (!tlsCertFile || !tlsKeyFile) return undefined;
  const read = (file: string, key: string) => readSettingFile(`[server] ${key}`, file, "point it at a readable PEM file, or remove tls_cert_file and tls_key_file for plain HTTP");
  return { cert: read(tlsCertFile, "tls_cert_file"), key: read(tlsKeyFile, "tls_key_file") };
}

/** Runs the daemon in this process until SIGTERM/SIGINT. Resolves once it is ready. */
export async function serve(opts: ServeOptions): Promise<void> {
  const started = performance.now();
  const paths = homePaths();
  ensureHome(paths);
  const config = loadConfig(paths.config);
  const log = daemonLogger(paths, config);
  const bind = resolveBind(opts, config);
  const phases = daemonPhases(log);
  log.info("starting spl serve", { version: VERSION, pid: process.pid, home: paths.home });
  for (const warning of unknownConfigKeys(paths.config, CONFIG_SECTIONS)) log.warn(warning);

  // The store lock is the real single-instance guard (it survives a deleted run/); the pid file
  // stays for the runbook and for `spl serve --stop`.
  const lock = acquireStoreLock(paths.store, { command: "serve", host: bind.host, port: bind.port });
  try {
    acquirePidFile(paths.pidFile, log);
  } catch (err) {
    lock.release();
    throw err;
  }
  say("Starting Syncropel instance...\n");
  let opened: ReturnType<typeof openStore> | null = null;
  let backup = null as StartupBackup | null; // set while the store opens (beforeMigrate)
  const signals = stopSignals();
  const servers: Server<unknown>[] = [];
  const handlers = startingHandlers(paths);
  try {
    try {
      servers.push(listenTcp(bind, handlers, readTls(config)));
      await clearStaleSocket(paths.socket).then((removed) => removed && log.warn("removed stale socket file", { path: paths.socket }));
      servers.push(listenUnix(paths, handlers));
    } catch (err) {
      log.error("cannot listen; refusing to start (the store and its backups were not touched)", { bind: `${bind.host}:${bind.port}`, error: (err as Error).message });
      throw err;
    }
    log.info("listening (answering 503 starting until ready)", { bind: `${bind.host}:${bind.port}`, socket: paths.socket });
    try {
      // Startup backup (lib/backup/background.ts): after bind and integrity checks, its snapshot
      // pinned before migration/identity write anything; a worker writes it while we go on.
      opened = openStore(paths.store, {
        durability: config.store.durability,
        phases,
        beforeMigrate: (db, created) => {
          if (created) return warnIfStoreLost(paths, log);
          signals.hold(); // a stop from here on lets the backup finish
          backup = startStartupBackup({ db, paths, config, log });
        },
      });
    } catch (err) {
      if (err instanceof StoreDamagedError) log.error("store is damaged; refusing to start", { store: paths.store, error: err.message });
      else if (err instanceof UserError) log.error("cannot open store", { store: paths.store, error: err.message });
      throw err;
    }
    const { db } = opened;
    if (opened.created) lock.coverStore(); // hub.db did not exist to be locked with spl.lock
    const store = new RecordStore(db);
    // Migrations add no records, so this is the count the pinned snapshot holds.
    backup?.startedWith(store.counts.records);
    log.info("store opened", { store: paths.store, records: store.counts.records, threads: store.counts.threads });
    const { did, created } = ensureInstanceDid(store);
    if (created) log.info("instance identity bootstrapped", { instance_did: did });

    const state = createDaemonState({ paths, config, log, store, instanceDid: did, bind, backup: backup?.info() ?? null, insecureLocalhost: opts.insecureLocalhost });
    void backup?.done.then((info) => (state.backup = info));
    const { app, direct } = buildApp(state);
    // Elysia finds the path from offset 7 of request.url (app.ts), which "https://" would shift:
    // on HTTPS the router sees the same URL with http://.
    handlers.tcp = (req, server) => {
      const routed = config.server.tlsCertFile ? new Request(`http${req.url.slice(5)}`, req) : req;
      const ip = server.requestIP(req)?.address;
      if (ip) state.tcpPeers.set(routed, ip);
      return app.handle(routed);
    };
    handlers.unix = (req) => {
      state.viaSocket.add(req);
      return app.handle(req);
    };
    mountDirectRoutes(servers, handlers, direct, state.viaSocket);

    // Signals are handled from here on (one held since the backup started is delivered now), so
    // a SIGTERM during a long rebuild still shuts down gracefully (it waits for the rebuild to
    // reach a safe point: its end).
    const lifecycle = installShutdown(state, servers, log, lock, backup);
    lifecycle.startup = startEngine(state, phases); // rebuild_from_store(), then hot-apply; operator/bootstrap tokens
    signals.deliverTo(lifecycle.stop);
    await lifecycle.startup;
    if (lifecycle.stopping) return;
    state.ready = true;
    startServices(state.services, log);
    // What the banner says, as the ready line's fields (journald and `docker logs` read JSON).
    const facts = { store: `sqlite://${paths.store}`, backup: state.backup, bind: `${bind.host}:${bind.port}`, socket: paths.socket, pid: process.pid, instance_did: did };
    log.info("ready", { startup_ms: Math.round(performance.now() - started), records: store.counts.records, ...(process.stdout.isTTY ? {} : facts) });
    // A detached daemon's stderr is a file nobody reads once the parent has gone.
    if (process.env.SPL_DETACHED) log.stopMirroring();
    say(renderBanner(facts) + "\n");
  } catch (err) {
    for (const s of servers) s.stop(true);
    // A refused start (a breaking migration, say) still leaves its backup of the store as found.
    await waitForBackup(backup, log, "exiting");
    opened?.db.close();
    cleanupRunFiles(paths, servers.length > 1);
    lock.release();
    log.flush();
    throw err;
  }
}

/**
 * Foreground (systemd, Docker): lines to stderr too, JSON unless stderr is a terminal, with a
 * syslog priority when it is the journal; per-record lines only with [log] records_to_stderr. A
 * detached daemon's stderr is daemon.out: only WARN/ERROR until ready, unless there is no file.
 */
function daemonLogger(paths: HomePaths, config: SplConfig): Logger {
  const file = config.log.file ? paths.log : null;
  if (process.env.SPL_DETACHED && file) return createFileLogger(file, { mirrorToStderr: true });
  const stderr = process.stderr.isTTY ? "text" : stderrIsJournal() ? "journal" : "json";
  return createFileLogger(file, { stderr, stderrRecords: config.log.records_to_stderr });
}

/** Text for a person on stdout: at a terminal only, so journald and `docker logs` get one format. */
function say(text: string): void {
  if (process.stdout.isTTY) process.stdout.write(text);
}

/** Long startup work: a live line on a terminal (foreground only), one log line per phase. */
function daemonPhases(log: Logger): Phases {
  const live = process.stderr.isTTY === true && !process.env.SPL_DETACHED;
  return makePhases({ live, report: (r) => log.info("phase finished", { ...r }) });
}

/** Lets a startup backup still being written finish (its worker dies with the process). */
async function waitForBackup(backup: StartupBackup | null, log: Logger, then: string): Promise<void> {
  if (!backup?.pending()) return;
  log.info(`waiting for the startup backup to finish before ${then}`, { path: backup.info().path });
  await backup.done;
}

/** SIGHUP: a fresh log file (after logrotate) and the config that applies without a restart. */
function reload(state: DaemonState, log: Logger) {
  log.reopen();
  try {
    const fresh = loadConfig(state.paths.config);
    state.config.metrics.public = fresh.metrics.public;
    log.info("reloaded on SIGHUP: log file reopened, [metrics] public re-read", { metrics_public: fresh.metrics.public });
  } catch (err) {
    log.warn("SIGHUP: config.toml not reloaded, keeping the running config", { error: (err as Error).message });
  }
}

function cleanupRunFiles(paths: HomePaths, ownSocket: boolean) {
  if (ownSocket) rmSync(paths.socket, { force: true });
  releasePidFile(paths.pidFile);
}

/**
 * SIGTERM/SIGINT for the daemon's life. Until `hold` they keep their default (the process ends:
 * nothing is being written). Once held, a signal that arrives before the shutdown handler exists
 * waits for it, so a stop during the startup backup never kills the worker mid-write.
 */
function stopSignals() {
  let pending: string | null = null;
  let stop: ((signal: string) => void) | null = null;
  let held = false;
  const hold = () => {
    if (held) return;
    held = true;
    for (const sig of ["SIGTERM", "SIGINT"] as const) process.on(sig, () => (stop ? stop(sig) : (pending ??= sig)));
  };
  return {
    hold,
    deliverTo(handler: (signal: string) => void) {
      hold();
      stop = handler;
      if (pending) handler(pending);
    },
  };
}

interface Lifecycle {
  stopping: boolean;
  /** Begins the graceful shutdown (SIGTERM/SIGINT). */
  stop: (signal: string) => void;
  /** The rest of startup (rebuild); shutdown waits for it before closing the store. */
  startup?: Promise<void>;
}

function installShutdown(state: DaemonState, servers: Server<unknown>[], log: Logger, lock: StoreLock, backup: StartupBackup | null): Lifecycle {
  const lifecycle: Lifecycle = { stopping: false, stop: (signal) => void shutdown(signal) };
  const shutdown = async (signal: string) => {
    if (lifecycle.stopping) return;
    lifecycle.stopping = true;
    log.info("shutting down", { signal, ready: state.ready });
    await lifecycle.startup?.catch(() => {});
    // Stop accepting, let in-flight requests finish (bounded), then close what is left.
    const graceful = Promise.all(servers.map((s) => s.stop(false)));
    await Promise.race([graceful, Bun.sleep(SHUTDOWN_GRACE_MS)]);
    for (const s of servers) s.stop(true);
    await stopServices(state.services, log);
    // Its read transaction would hold off the final checkpoint, and exiting would kill it.
    await waitForBackup(backup, log, "shutting down");
    try {
      state.ingest.flush();
      state.store.foldIndex.flush(); // the next start then has nothing to re-index
      checkpoint(state.db);
      state.db.close();
    } catch (err) {
      log.error("error while closing the store", { error: (err as Error).message });
    }
    cleanupRunFiles(state.paths, true);
    lock.release();
    log.info("stopped", { signal });
    log.flush();
    process.exit(0);
  };
  // SIGHUP never stops the daemon (a closed terminal, `systemctl reload`, logrotate's postrotate).
  process.on("SIGHUP", () => reload(state, log));
  process.on("uncaughtException", (err) => log.error("uncaught exception", { error: err.stack ?? String(err) }));
  process.on("unhandledRejection", (err) => log.error("unhandled rejection", { error: (err as Error)?.stack ?? String(err) }));
  return lifecycle;
}

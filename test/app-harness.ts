// In-process daemon for fast route tests: the real Elysia app over a real SQLite store in a temp
// home, called with app.handle(new Request(...)): no process, no port. It is assembled the way
// serve.ts assembles the daemon (createDaemonState, startEngine), minus listeners and signals.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfig } from "../lib/config";
import { buildApp } from "../lib/daemon/app";
import { startEngine } from "../lib/daemon/engine-boot";
import { createDaemonState, type DaemonState } from "../lib/daemon/state";
import { ensureHome } from "../lib/home";
import { ensureInstanceDid } from "../lib/instance";
import { createFileLogger } from "../lib/log";
import { homePaths } from "../lib/paths";
import { openStore } from "../lib/store/open";
import { RecordStore } from "../lib/store/records";
import { answerOf } from "./harness";

export interface Answer {
  status: number;
  json: any;
  text: string;
}

export interface InProcessDaemon {
  state: DaemonState;
  /** The operator's admin token (what <home>/token holds). */
  token: string;
  /**
   * One request through the app. TCP by default, with the admin token unless `headers` sets
   * authorization; `socket: true` marks it as arriving on the Unix socket (no token needed).
   */
  request(method: string, path: string, body?: unknown, opts?: { headers?: Record<string, string>; socket?: boolean }): Promise<Answer>;
  close(): void;
}

export async function inProcessDaemon(opts: { insecureLocalhost?: boolean; logLevel?: "warn" | "info" } = {}): Promise<InProcessDaemon> {
  const root = mkdtempSync(join(tmpdir(), "spl-app-"));
  const paths = homePaths(join(root, ".syncro"));
  ensureHome(paths);
  const config = loadConfig(paths.config);
  const log = createFileLogger(paths.log, { level: opts.logLevel ?? "warn" });
  const { db } = openStore(paths.store);
  const store = new RecordStore(db);
  const { did } = ensureInstanceDid(store);
  const state = createDaemonState({ paths, config, log, store, instanceDid: did, bind: { host: "127.0.0.1", port: 9 }, insecureLocalhost: opts.insecureLocalhost });
  await startEngine(state);
  state.ready = true;
  const { app } = buildApp(state);
  const token = (await Bun.file(paths.token).text()).trim();

  return {
    state,
    token,
    async request(method, path, body, o = {}) {
      // A client over TCP always sends Host; the gate refuses a request without one.
      const headers: Record<string, string> = { ...(o.socket ? {} : { host: "127.0.0.1", authorization: `Bearer ${token}` }), ...o.headers };
      const init: RequestInit = { method, headers };
      if (body !== undefined) {
        headers["content-type"] ??= "application/json";
        init.body = typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body);
      }
      const req = new Request(`http://127.0.0.1${path}`, init);
      if (o.socket) state.viaSocket.add(req);
      return answerOf(await app.handle(req));
    },
    close() {
      db.close();
      log.flush();
      rmSync(root, { recursive: true, force: true });
    },
  };
}

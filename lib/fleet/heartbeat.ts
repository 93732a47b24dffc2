// The heartbeat loop (README "Fleet"): every member of a fleet, the coordinator included, sends
// DO {topic:"heartbeat", ...} on th_instance_registry every interval (±10% jitter) — the
// coordinator straight into its own write path, a worker as POST <coordinator>/v1/records through
// the peer client. On SIGTERM a last beat says "draining" (best effort, at most 1 s). A network
// error never stops the loop or the daemon: it is a WARN, at most one a minute, and the next beat
// simply tries again (so a worker re-registers as soon as its coordinator is back).
import type { Logger } from "../log";
import type { Service } from "../capability";
import type { PeerClient } from "../peer";
import { INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import { prepareRecord, type PreparedRecord } from "../records/envelope";
import type { FleetMember } from "./config";

const WARN_EVERY_MS = 60_000;
const DRAINING_BEAT_MS = 1000;
const BEAT_TIMEOUT_MS = 5000;

export interface HeartbeatWiring {
  member: FleetMember;
  instanceDid: string;
  version: string;
  startedAt: number;
  storeRecords(): number;
  activeDispatches(): number;
  /** The coordinator's own beat: into its write path. */
  submitLocal(rec: PreparedRecord): Promise<void>;
  /** A worker's beats go through it (it carries the fleet credential). */
  peers: PeerClient;
  /** Whether this member holds a fleet credential at all (named when the coordinator refuses it). */
  hasCredential(): boolean;
  /** A worker's beat was acknowledged (the kill switch catches up with the coordinator then). */
  afterAck?(): Promise<void>;
  log: Logger;
}

/** What `spl doctor` and GET /v1/fleet/member report about this member's beats. */
export interface HeartbeatState {
  lastAckUnix: number | null;
  lastError: { at: number; url: string; message: string } | null;
}

export type HeartbeatService = Service & { readonly status: HeartbeatState; beat(health?: string): Promise<void> };

export function heartbeatService(w: HeartbeatWiring): HeartbeatService {
  const log = w.log.child("syncropel_fleet::heartbeat_loop");
  const status: HeartbeatState = { lastAckUnix: null, lastError: null };
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running = false;
  let lastWarnMs = 0;
  const coordinator = w.member.role === "worker" ? w.member.coordinatorUrl : null;

  const body = (health: string) => ({
    topic: "heartbeat",
    instance_did: w.instanceDid,
    name: w.member.name,
    endpoint: w.member.endpoint,
    role: w.member.role,
    version: w.version,
    uptime_secs: Math.floor((Date.now() - w.startedAt) / 1000),
    active_dispatches: w.activeDispatches(),
    store_records: w.storeRecords(),
    health,
    sent_at_unix: Math.floor(Date.now() / 1000),
  });

  const failed = (message: string) => {
    const now = Date.now();
    status.lastError = { at: Math.floor(now / 1000), url: coordinator ? `${coordinator}/v1/records` : "(local)", message };
    if (now - lastWarnMs >= WARN_EVERY_MS) {
      lastWarnMs = now;
      log.warn(`heartbeat to ${w.member.coordinatorUrl} failed: ${message} (the daemon keeps serving locally; repeats are logged once a minute)`, { coordinator_url: w.member.coordinatorUrl });
    }
  };

  async function send(health: string, timeoutMs: number): Promise<void> {
    const draft = { thread: INSTANCE_REGISTRY_THREAD, actor: w.instanceDid, act: "DO", body: body(health) };
    if (!coordinator) {
      await w.submitLocal(prepareRecord(draft));
      status.lastAckUnix = Math.floor(Date.now() / 1000);
      return;
    }
    let res: { status: number; body: any };
    try {
      res = await w.peers.request(coordinator, "POST", "/v1/records", draft, { timeoutMs });
    } catch (err) {
      return failed((err as Error).message);
    }
    if (res.status === 200 || res.status === 201) {
      if (status.lastError && status.lastAckUnix !== null) log.info("heartbeat acknowledged again", { coordinator_url: w.member.coordinatorUrl });
      status.lastAckUnix = Math.floor(Date.now() / 1000);
      status.lastError = null;
      log.info("heartbeat sent", { coordinator_url: w.member.coordinatorUrl, health });
      if (health !== "draining") await w.afterAck?.();
      return;
    }
    const code = typeof res.body?.code === "string" ? res.body.code : "";
    if (res.status === 401) {
      return failed(
        `the coordinator refused it (401 ${code || "AUTH_REQUIRED"}): ${w.hasCredential() ? "it does not know this member's fleet token" : "this member has no fleet token"} — copy the coordinator's token here: 'spl fleet token' on the coordinator, then 'spl fleet join ${w.member.coordinatorUrl} --token-file FILE' and restart`,
      );
    }
    failed(`the coordinator answered ${res.status} ${code}`.trim() + " — see the coordinator's log for the refusal");
  }

  const schedule = () => {
    if (!running) return;
    const ms = w.member.heartbeatSecs * 1000 * (0.9 + Math.random() * 0.2);
    timer = setTimeout(tick, ms);
  };
  const tick = async () => {
    timer = null;
    try {
      await send("healthy", BEAT_TIMEOUT_MS);
    } catch (err) {
      failed((err as Error).message);
    }
    schedule();
  };

  return {
    name: "heartbeat",
    status,
    beat: (health = "healthy") => send(health, BEAT_TIMEOUT_MS),
    start() {
      if (w.member.role === "plain") return;
      running = true;
      void tick(); // the first beat at once: a member registers as soon as it is ready
    },
    async stop() {
      if (!running) return;
      running = false;
      if (timer) clearTimeout(timer);
      timer = null;
      await Promise.race([send("draining", DRAINING_BEAT_MS).catch(() => {}), Bun.sleep(DRAINING_BEAT_MS)]);
    },
  };
}

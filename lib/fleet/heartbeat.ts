// A worker's heartbeat (README "Fleet"): every interval (±10%, the coordinator's interval once it
// has answered) a POST <coordinator>/v1/fleet/heartbeat with the member credential. The answer
// carries the coordinator's epoch, its interval and the digests of the fleet's threads; the worker
// adopts the interval, and catches up when a digest differs (control-sync.ts). A 409 STALE_EPOCH
// names the coordinator that replaced the one asked: the worker beats there from then on (in
// memory; `spl doctor` says to update [fleet] coordinator_url). A member that holds only a join
// credential joins first. On SIGTERM a last beat says "draining" (best effort, at most 1 s).
// A network error never stops the loop or the daemon: a WARN at most once a minute, and the next
// beat tries again, so a worker re-registers as soon as its coordinator is back.
import type { Logger } from "../log";
import type { Service } from "../capability";
import { PeerError, type PeerClient } from "../peer";
import type { FleetMember } from "./config";
import type { Digests } from "./control-sync";
import type { EpochBook } from "./epoch";
import type { Beat } from "./liveness";

const WARN_EVERY_MS = 60_000;
const DRAINING_BEAT_MS = 1000;
const MAX_BEAT_TIMEOUT_MS = 5000;

export interface HeartbeatAnswer {
  object: "heartbeat_ack";
  epoch: number;
  coordinator: { did: string; url: string };
  heartbeat_interval_secs: number;
  digests: Partial<Digests>;
}

export interface HeartbeatWiring {
  member: FleetMember;
  beat(health: string): Beat;
  peers: PeerClient;
  epochs: EpochBook;
  /** Whether this member holds a member credential; if not, join with the join credential first. */
  hasCredential(): boolean;
  /** Joins the fleet at `url` with the join credential it holds; false when it holds none. */
  join(url: string): Promise<boolean>;
  /** An acknowledged beat (the fleet's threads catch up then). */
  afterAck?(answer: HeartbeatAnswer): Promise<void>;
  /** The coordinator is elected (lib/failover): where beats go is the election's, not [fleet] coordinator_url. */
  elected?: boolean;
  log: Logger;
}

/** What `spl doctor` and GET /v1/fleet/member report about this member's beats. */
export interface HeartbeatState {
  lastAckUnix: number | null;
  lastError: { at: number; url: string; message: string } | null;
  /** The coordinator's interval, adopted from its answers (the configured one until then). */
  intervalSecs: number;
  /** Where beats go: [fleet] coordinator_url, or the coordinator that replaced it. */
  target: string | null;
}

export type HeartbeatService = Service & {
  readonly status: HeartbeatState;
  beat(health?: string): Promise<void>;
  follow(url: string, why: string): void;
  /** Where beats go from now on, as an election decided (null: nowhere, this member coordinates or none is elected). */
  target(url: string | null, why?: string): void;
};

export function heartbeatService(w: HeartbeatWiring): HeartbeatService {
  const log = w.log.child("syncropel_fleet::heartbeat_loop");
  // An elected member's role changes while it runs (lib/failover): read it when it matters.
  const worker = () => w.member.role === "worker";
  const status: HeartbeatState = { lastAckUnix: null, lastError: null, intervalSecs: w.member.heartbeatSecs, target: worker() ? w.member.coordinatorUrl : null };
  let timer: ReturnType<typeof setTimeout> | null = null;
  let running = false;
  let inFlight = false;
  let lastWarnMs = 0;

  const failed = (message: string) => {
    const now = Date.now();
    status.lastError = { at: Math.floor(now / 1000), url: `${status.target}/v1/fleet/heartbeat`, message };
    if (now - lastWarnMs >= WARN_EVERY_MS) {
      lastWarnMs = now;
      log.warn(`heartbeat to ${status.target} failed: ${message} (the daemon keeps serving locally; repeats are logged once a minute)`, { coordinator_url: status.target });
    }
  };

  function follow(url: string, why: string) {
    if (!worker() || url === status.target) return;
    if (w.elected) log.info(`following the fleet's coordinator at ${url} (${why})`, { coordinator_url: url });
    else log.warn(`following the fleet's coordinator at ${url} (${why}); [fleet] coordinator_url still names ${w.member.coordinatorUrl} — update it`, { coordinator_url: url, configured: w.member.coordinatorUrl });
    status.target = url;
  }

  function target(url: string | null, why?: string) {
    if (url === status.target) return;
    if (url) log.info(`beating to the fleet's coordinator at ${url}${why ? ` (${why})` : ""}`, { coordinator_url: url });
    status.target = url;
    // The new coordinator hears from this member at once, rather than within an interval.
    if (url && running && !inFlight) {
      if (timer) clearTimeout(timer);
      tick();
    }
  }

  async function send(health: string, timeoutMs: number, retried = false): Promise<void> {
    const target = status.target;
    if (!target) return;
    if (!w.hasCredential()) {
      let joined = false;
      try {
        joined = await w.join(target);
      } catch (err) {
        return failed((err as Error).message);
      }
      if (!joined) return failed(`this member holds no fleet credential — join: spl fleet join ${target} --name ${w.member.name} --token-file FILE (the join credential from 'spl fleet token' on the coordinator), then restart`);
    }
    let res: { status: number; body: any };
    try {
      res = await w.peers.request(target, "POST", "/v1/fleet/heartbeat", w.beat(health), { timeoutMs });
    } catch (err) {
      return failed(err instanceof PeerError ? err.message : (err as Error).message);
    }
    const code = typeof res.body?.code === "string" ? res.body.code : "";
    if (res.status === 200) {
      const a = res.body as HeartbeatAnswer;
      if (status.lastError && status.lastAckUnix !== null) log.info("heartbeat acknowledged again", { coordinator_url: target });
      status.lastAckUnix = Math.floor(Date.now() / 1000);
      status.lastError = null;
      w.epochs.observe({ epoch: a.epoch, did: a.coordinator?.did, url: a.coordinator?.url });
      if (Number.isInteger(a.heartbeat_interval_secs) && a.heartbeat_interval_secs > 0 && a.heartbeat_interval_secs !== status.intervalSecs) {
        log.info(`adopting the coordinator's heartbeat interval: ${a.heartbeat_interval_secs} s (configured ${w.member.heartbeatSecs} s)`);
        status.intervalSecs = a.heartbeat_interval_secs;
      }
      log.info("heartbeat sent", { coordinator_url: target, health });
      if (health !== "draining") await w.afterAck?.(a);
      return;
    }
    if (res.status === 409 && (code === "STALE_EPOCH" || code === "NOT_COORDINATOR") && typeof res.body?.coordinator_url === "string" && res.body.coordinator_url !== target) {
      follow(res.body.coordinator_url, `${target} answered ${code}`);
      if (!retried) return send(health, timeoutMs, true);
    }
    if (res.status === 401 && (code === "MEMBER_UNKNOWN" || code === "AUTH_REQUIRED")) {
      return failed(`the coordinator refused this member's credential (401 ${code}): ${res.body?.message ?? ""}`.trim());
    }
    failed(`the coordinator answered ${res.status} ${code}`.trim() + (res.body?.message ? `: ${res.body.message}` : " — see the coordinator's log for the refusal"));
  }

  // Start to start: a beat that hangs on a dead link does not push the next one back, so a member
  // catches up within one interval of the link coming back.
  const schedule = () => {
    if (!running) return;
    const ms = status.intervalSecs * 1000 * (0.9 + Math.random() * 0.2);
    timer = setTimeout(tick, ms);
  };
  const tick = () => {
    timer = null;
    schedule();
    if (inFlight) return;
    inFlight = true;
    send("healthy", Math.max(1000, Math.min(MAX_BEAT_TIMEOUT_MS, status.intervalSecs * 1000)))
      .catch((err) => failed((err as Error).message))
      .finally(() => {
        inFlight = false;
      });
  };

  return {
    name: "heartbeat",
    status,
    follow,
    target,
    beat: (health = "healthy") => send(health, MAX_BEAT_TIMEOUT_MS),
    start() {
      if (!worker() && !w.elected) return;
      running = true;
      tick(); // the first beat at once: a member registers as soon as it is ready
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

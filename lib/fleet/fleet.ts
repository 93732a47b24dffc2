// One daemon's part in its fleet, assembled from the fleet's modules (ARCHITECTURE.md "The fleet
// protocol"): the registry and liveness, the epoch book, the credentials, the heartbeat and the
// sync of the fleet's threads, and what happens at start (an epoch, the coordinator's own
// credential and join credential). lib/fleet/capability.ts declares it to the daemon.
import { rmSync } from "node:fs";
import type { Host } from "../capability";
import { ApiError } from "../api/http";
import { readSettingFile, serverSection } from "../config";
import { parseBearer, hashSecret, revokeRecordBody } from "../auth/tokens";
import { prepareRecord } from "../records/envelope";
import { AUTH_THREAD, INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import { DISPATCHES } from "../dispatch/capability";
import { VERSION } from "../version";
import { CA_FIX, fleetMember, fleetSection, loopbackAdvertised, type FleetMember } from "./config";
import { workerSync, ThreadDigests } from "./control-sync";
import { ELECTION, type FleetSeat } from "./contract";
import { fleetCredentials, isJoinCredential, JOIN_TTL_SECS, joinCredentialPath, memberCredentialSource, mintCredential, readJoinCredential, readMemberCredential, writeMemberCredential } from "./credentials";
import { configEpochs, EpochBook, type EpochSource } from "./epoch";
import { heartbeatService } from "./heartbeat";
import { requestMembership } from "./join";
import { Liveness, type Beat } from "./liveness";
import { FleetRegistry, type MemberRecord } from "./registry";
import { writeTokenFile } from "../auth/operator-token";

export type Fleet = ReturnType<typeof createFleet>;

/** The token name a fleet token of an earlier version was registered under in th_auth. */
const LEGACY_FLEET_TOKEN_NAME = "fleet (<home>/secrets/fleet_token)";

export function createFleet(host: Host, epochSource: EpochSource = configEpochs) {
  const config = host.config(fleetSection);
  const server = host.config(serverSection);
  const member: FleetMember = fleetMember(config, { ...host.bind, tls: server.tlsCertFile !== null }, host.paths.home);
  /** What [fleet] coordinator_url names (the member's own changes when an election moves the coordinator). */
  const configuredCoordinatorUrl = member.coordinatorUrl;
  /** With [fleet.etcd]: the election this member follows (lib/failover), else undefined. */
  const election = config.elected ? host.find(ELECTION) : undefined;
  const log = host.log.child("syncropel_fleet::members");
  const home = host.paths.home;
  const registry = new FleetRegistry();
  const liveness = new Liveness(registry, member.heartbeatSecs);
  const digests = new ThreadDigests();

  const epochs = new EpochBook({
    deposed(by, own) {
      log.error(`this coordinator was replaced: ${by.url ?? "another member"} holds epoch ${by.epoch} (this one held ${own.epoch}) — it no longer coordinates: kill and fan-out are refused here, and members are sent to the new coordinator. Make this home a worker of it ([fleet] coordinator_url = "${by.url ?? "<new coordinator>"}") and restart`, { epoch: by.epoch, coordinator_url: by.url });
    },
  });

  const ca = config.caFile ? readSettingFile("[fleet] ca_file", config.caFile, CA_FIX) : null;
  const ownCredential = memberCredentialSource(home);
  host.peers.authenticate(ownCredential);
  host.peers.fence(() => {
    const own = epochs.held;
    return own ? { epoch: own.epoch, coordinator: own.endpoint } : epochs.stamp();
  });
  host.peers.onEpoch((told, from) => {
    // With [fleet.etcd] only the election moves this member to another coordinator.
    if (config.elected || told.epoch <= epochs.current.epoch || !epochs.observe({ epoch: told.epoch, url: told.coordinator_url })) return;
    log.warn(`${from} knows a newer coordinator: epoch ${told.epoch}${told.coordinator_url ? ` at ${told.coordinator_url}` : ""}`);
    // The coordinator a worker beats to speaks for itself (under whatever name it advertises); any other member names the newer one.
    if (told.coordinator_url && from !== heartbeat.status.target) heartbeat.follow(told.coordinator_url, `${from} says it holds epoch ${told.epoch}`);
  });
  host.peers.trust(ca);

  const beat = (health: string): Beat => ({
    did: host.instanceDid,
    name: member.name,
    endpoint: member.endpoint,
    role: member.role,
    version: VERSION,
    uptime_secs: Math.floor((host.now() - host.startedAt) / 1000),
    active_dispatches: host.find(DISPATCHES)?.active() ?? 0,
    store_records: host.store.counts.records,
    health,
    sent_at_unix: Math.floor(host.now() / 1000),
  });

  const hasCredential = () => {
    const c = ownCredential();
    return c !== null && parseBearer(c)?.env === "member";
  };

  /** A worker holding only a join credential (an earlier version's home, a container's secret) joins by itself. */
  async function joinWith(url: string): Promise<boolean> {
    const token = readJoinCredential(home);
    if (!token || !isJoinCredential(token)) return false;
    const m = await requestMembership(host.peers, url, token, { did: host.instanceDid, name: member.name, endpoint: member.endpoint, version: VERSION });
    if (!m.credential) return false;
    writeMemberCredential(home, m.credential);
    rmSync(joinCredentialPath(home), { force: true }); // the shared secret is not needed any more (a read-only mount keeps it)
    epochs.observe({ epoch: m.coordinator.epoch, did: m.coordinator.did, url: m.coordinator.url });
    const records = Object.values(m.records).flat().map((r) => prepareRecord(r));
    const results = await host.submit(records);
    log.info("joined the fleet with the join credential this member held", { name: m.name, coordinator_url: url, records: results.filter((r) => r.status === "created").length });
    return true;
  }

  const heartbeat = heartbeatService({
    member,
    beat,
    peers: host.peers,
    epochs,
    hasCredential,
    join: joinWith,
    afterAck: (a) => sync.afterAck(a.digests),
    elected: config.elected,
    log: host.log,
  });
  const sync = workerSync(host, { epochs, coordinator: () => heartbeat.status.target });

  const write = (body: Record<string, unknown>) => host.write({ thread: INSTANCE_REGISTRY_THREAD, act: "LEARN", actor: host.instanceDid, body });

  /** The coordinator's own member credential: minted (and `joined` recorded) when it has none in force. */
  async function ensureOwnCredential(): Promise<void> {
    const current = readMemberCredential(home);
    const parsed = current ? parseBearer(current) : null;
    const mine = parsed?.env === "member" ? registry.byCredentialId(parsed.id) : undefined;
    if (mine?.did === host.instanceDid && mine.credential!.sha256.equals(Buffer.from(hashSecret(parsed!.secret), "hex"))) return;
    const registered = registry.get(host.instanceDid);
    const taken = registry.holderOf(member.name);
    const name = registered && !registered.forgotten ? registered.name : taken && taken.did !== host.instanceDid ? `${member.name}-${host.instanceDid.slice(-4)}` : member.name;
    const t = mintCredential("member");
    await write({ topic: "joined", did: host.instanceDid, name, endpoint: member.endpoint, version: VERSION, credential_id: t.id, secret_sha256: t.secretSha256 });
    writeMemberCredential(home, t.token);
    log.info("coordinator credential minted", { name, path: "<home>/secrets/fleet_member" });
  }

  /** The coordinator's join credential: the file's when it is in force (or not yet registered: an operator's secret), else a new one. */
  async function joinToken(o: { rotate: boolean; graceSecs: number; ttlSecs: number }) {
    const nowSecs = Math.floor(host.now() / 1000);
    const current = readJoinCredential(home);
    const parsed = current && isJoinCredential(current) ? parseBearer(current) : null;
    const known = parsed ? registry.joinToken(parsed.id) : undefined;
    if (parsed && !known && !o.rotate) {
      await write({ topic: "join_token", token_id: parsed.id, secret_sha256: hashSecret(parsed.secret), expires_at: nowSecs + o.ttlSecs });
      return { token: current!, expires_at: nowSecs + o.ttlSecs, rotated: false, path: "<home>/secrets/fleet_token" };
    }
    if (known && known.expiresAt > nowSecs && !o.rotate) return { token: current!, expires_at: known.expiresAt, rotated: false, path: "<home>/secrets/fleet_token" };
    const t = mintCredential("join");
    await write({ topic: "join_token", token_id: t.id, secret_sha256: t.secretSha256, expires_at: nowSecs + o.ttlSecs });
    let previousUntil: number | null = null;
    if (known && known.expiresAt > nowSecs) {
      previousUntil = Math.min(known.expiresAt, nowSecs + o.graceSecs);
      await write({ topic: "join_token_retired", token_id: known.id, valid_until: previousUntil });
    }
    writeTokenFile(joinCredentialPath(home), t.token);
    log.info(o.rotate ? "join credential rotated" : "join credential minted", { expires_at: nowSecs + o.ttlSecs, previous_valid_until: previousUntil });
    return { token: t.token, expires_at: nowSecs + o.ttlSecs, rotated: true, previous_valid_until: previousUntil, path: "<home>/secrets/fleet_token" };
  }

  /** A fleet token of an earlier version acted as a full credential from th_auth: it is a join credential only now. */
  async function retireLegacyToken(): Promise<void> {
    for (const t of host.engine.tokens.list()) {
      if (t.env !== "fleet" || t.revoked || t.name !== LEGACY_FLEET_TOKEN_NAME) continue;
      await host.write({ thread: AUTH_THREAD, act: "LEARN", body: revokeRecordBody(t.id, "fleet tokens are join credentials only: members hold their own credential (spl fleet join)") });
      log.info("the fleet token of an earlier version no longer acts as a member: it is a join credential only", { token_id: t.id });
    }
  }

  /** A coordinator told of a newer one asks that member: the epoch in its answer deposes this one if it holds it (peers.onEpoch). */
  const asking = new Set<string>();
  function ask(url: string): void {
    if (asking.has(url)) return;
    asking.add(url);
    void host.peers
      .request(url, "GET", "/v1/fleet/member", undefined, { timeoutMs: 3000 })
      .catch(() => {})
      .finally(() => asking.delete(url));
  }

  /** The last time this member could have learned of a freeze: an acknowledged beat, etcd answering, its own term as coordinator. */
  let officeEndedMs = 0;
  function lastContactMs(): number {
    const ack = heartbeat.status.lastAckUnix;
    return Math.max(ack !== null ? ack * 1000 : host.startedAt, election?.lastContactMs() ?? 0, officeEndedMs);
  }

  async function becomeCoordinator(e: { epoch: number; did: string; endpoint: string }, source: string) {
    const top = registry.top;
    if (!top || top.epoch !== e.epoch || top.did !== e.did) {
      await write({ topic: "elected", did: e.did, endpoint: e.endpoint, epoch: e.epoch, source });
      log.info("coordinator elected", { epoch: e.epoch, source, previous: top ? { epoch: top.epoch, did: top.did } : null });
    }
    await ensureOwnCredential();
    await joinToken({ rotate: false, graceSecs: 0, ttlSecs: JOIN_TTL_SECS });
  }

  /** What an election (lib/failover) may do to this member's role: the only way it changes while the daemon runs. */
  const seat: FleetSeat = {
    async takeOffice(e, fresh, present) {
      epochs.hold(e, fresh);
      member.role = "coordinator";
      member.coordinatorUrl = member.endpoint;
      heartbeat.target(null);
      liveness.reset(host.now());
      for (const m of registry.members()) if (m.did !== host.instanceDid && !present.has(m.did)) liveness.lapsed(m.did, host.now());
      await becomeCoordinator(e, "etcd");
    },
    stepDown(why) {
      if (member.role !== "coordinator") return;
      epochs.release();
      member.role = "worker";
      member.coordinatorUrl = null;
      officeEndedMs = host.now();
      log.warn(`this member no longer acts as the fleet's coordinator: ${why}`);
    },
    eligibility() {
      const mine = registry.get(host.instanceDid);
      if (!registry.size) return hasCredential() ? { founding: false, notEligible: "it joined the fleet but holds no copy of the registry yet (it gets one after its first acknowledged heartbeat)" } : { founding: true, notEligible: null };
      if (!mine || mine.forgotten) return { founding: false, notEligible: "the registry it holds does not list it as a member (it joins at its first heartbeat)" };
      return { founding: false, notEligible: null };
    },
    lapsed(did) {
      if (member.role === "coordinator" && did !== host.instanceDid) liveness.lapsed(did, host.now());
    },
    follow(k, why) {
      if (k && k.did === host.instanceDid) return;
      if (k) epochs.observe({ epoch: k.epoch, did: k.did, url: k.url });
      member.coordinatorUrl = k?.url ?? null;
      heartbeat.target(k?.url ?? null, why);
    },
  };

  return {
    member,
    configuredCoordinatorUrl,
    election,
    seat,
    registry,
    liveness,
    epochs,
    digests,
    heartbeat,
    sync,
    lastContactMs,
    credentials: fleetCredentials({
      registry,
      epochs,
      now: () => host.now(),
      refused: (what, fields) => log.warn(`refused ${what}`, fields),
      // A member says it coordinates at a higher epoch: a worker beats to it, a coordinator asks it (only its answer counts).
      learned: (k) => k.url && (member.role === "worker" ? heartbeat.follow(k.url, `a member called with epoch ${k.epoch}`) : ask(k.url)),
      elected: config.elected,
    }),
    hasCredential,
    joinToken,
    /** The name this member goes by: the registry's, else the configured one. */
    name: () => registry.get(host.instanceDid)?.name ?? member.name,
    failClosed() {
      if (member.role !== "worker") return null;
      const since = lastContactMs();
      return { after_secs: config.failClosedAfterSecs, last_contact_unix: Math.floor(since / 1000), active: config.failClosedAfterSecs > 0 && host.now() - since >= config.failClosedAfterSecs * 1000 };
    },
    failClosedAfterSecs: config.failClosedAfterSecs,
    beat,
    /** A member by DID, 16-hex tail or name (a live one first), among those not forgotten. */
    resolve(key: string): MemberRecord {
      const all = registry.members();
      const byId = all.filter((m) => m.did === key || m.did.endsWith(`:${key}`));
      const byName = all.filter((m) => m.name === key).sort((a, b) => Number(liveness.status(b.did, host.now()) === "live") - Number(liveness.status(a.did, host.now()) === "live"));
      const hit = byId[0] ?? byName[0];
      if (!hit) throw new ApiError(404, "MEMBER_NOT_FOUND", `no fleet member '${key.slice(0, 100)}' — members: ${all.map((m) => `${m.name} (${m.did})`).join(", ") || "(none)"}`);
      return hit;
    },
    async forget(did: string, name: string) {
      await write({ topic: "forgotten", did, name });
      liveness.forget(did);
    },
    /** After the rebuild: an epoch for a coordinator, its credentials; the old shared token retired everywhere. */
    async boot() {
      await retireLegacyToken();
      if (member.role === "coordinator") {
        const e = await epochSource.elect({ self: { did: host.instanceDid, endpoint: member.endpoint }, top: registry.top });
        epochs.hold(e);
        await becomeCoordinator(e, epochSource.name);
        const loopback = loopbackAdvertised(member, host.bind.host);
        if (loopback) log.warn(loopback);
      }
      if (member.role !== "plain") {
        log.info("fleet member", { role: member.role, name: member.name, endpoint: member.endpoint, coordinator_url: member.coordinatorUrl, heartbeat_interval_secs: member.heartbeatSecs, epoch: epochs.current.epoch });
      }
    },
  };
}

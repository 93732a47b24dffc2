// A home entering a fleet, from the CLI (README "Fleet"): `spl fleet join` on a host set up by
// hand, `spl fleet start` for its local workers, and `spl fleet coordinate` making a home the
// coordinator of a fleet across hosts in one step. Both learn the home's instance DID (from its
// running daemon, else its store), obtain a membership (join.ts) and then write what it brings:
// the member credential (0600), [fleet] (coordinator, name, the coordinator's interval) and the
// coordinator's records — engine config, kill switch, registry — into the store, through the
// running daemon's socket or straight into a stopped store under the store lock.
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { call, request, type Target } from "../client";
import { loadConfig, readSettingFile, sectionOf } from "../config";
import { selfCommand } from "../daemonctl/control";
import { UsageError, UserError } from "../errors";
import { ensureHome } from "../home";
import { homePaths } from "../paths";
import { PeerClient } from "../peer";
import { ENGINE_CONFIG_THREAD } from "../records/reserved-threads";
import { VERSION } from "../version";
import { isLoopback } from "../net";
import { fleetMember, fleetSection, MEMBER_NAME, normaliseUrl } from "./config";
import { setFleetKeys, setTableKeys, type TomlValue } from "./config-file";
import { isJoinCredential, memberCredentialPath, writeMemberCredential } from "./credentials";
import { plainAcrossHosts } from "./doctor";
import { requestMembership, type Membership } from "./join";

export const socketOf = (home: string): Target => ({ socket: homePaths(home).socket, url: "http://localhost", describe: homePaths(home).socket });

/** The running daemon of a home, as it describes itself (null: not running). */
export async function memberInfo(home: string): Promise<{ did: string; role: string; endpoint: string; name: string } | null> {
  if (!existsSync(homePaths(home).socket)) return null;
  try {
    const r = await request("GET", "/v1/fleet/member", undefined, socketOf(home), 3000);
    return r.status === 200 ? r.body : null;
  } catch {
    return null;
  }
}

/** The home's instance DID: its running daemon's, else its store's (a new home is initialised first). */
export async function instanceDid(home: string): Promise<string> {
  const running = await memberInfo(home);
  if (running) return running.did;
  const p = homePaths(home);
  if (!existsSync(p.store)) {
    ensureHome(p);
    const r = Bun.spawnSync([...selfCommand(), "init"], { env: { ...process.env, SYNCROPEL_HOME: home }, stdout: "pipe", stderr: "pipe" });
    if (r.exitCode !== 0) throw new UserError(`cannot initialise ${home}: ${r.stderr.toString().trim()}`, "run 'spl init' and try again");
  }
  const { StoreReader } = await import("../store/reader");
  const { readInstanceDid } = await import("../instance");
  const reader = StoreReader.open(p.store, "shared");
  try {
    const did = readInstanceDid(reader);
    if (!did) throw new UserError(`${p.store} has no instance identity yet`, "run 'spl init' (or start the daemon once) and try again");
    return did;
  } finally {
    reader.close();
  }
}

/**
 * Writes records of the coordinator into a home's store: through its running daemon (each as a
 * request on the socket), or straight into the stopped store under the lock. The same ids as on
 * the coordinator, so a second import is all duplicates; a record the home cannot take (its own
 * engine config at that clock) is counted, never fatal.
 */
export async function importRecords(home: string, records: any[]): Promise<{ created: number; refused: number }> {
  let created = 0;
  let refused = 0;
  const envelope = (r: any) => ({ thread: r.thread, actor: r.actor, act: r.act, body: r.body, clock: r.clock, parents: r.parents, data_type: r.data_type, judged_by: r.judged_by });
  if (await memberInfo(home)) {
    for (let i = 0; i < records.length; i += 1000) {
      const r = await request("POST", "/v1/records/batch", { records: records.slice(i, i + 1000).map(envelope) }, socketOf(home));
      if (r.status !== 200) throw new UserError(`the daemon of ${home} refused the fleet's records (HTTP ${r.status}): ${r.body?.message ?? ""}`.trim());
      for (const d of r.body.data) d.status === "created" ? created++ : d.status === "error" && refused++;
    }
    return { created, refused };
  }
  const { openStore } = await import("../store/open");
  const { RecordStore } = await import("../store/records");
  const { prepareRecord } = await import("../records/envelope");
  const { lockUnlessServing } = await import("../daemonctl/store-lock");
  const p = homePaths(home);
  const lock = lockUnlessServing(p.store, "fleet join");
  const { db } = openStore(p.store, { check: false });
  try {
    const store = new RecordStore(db);
    for (const r of records) {
      try {
        db.transaction(() => {
          if (store.insert(prepareRecord(envelope(r)), r.created_at).status === "created") created++;
        }).immediate();
      } catch {
        refused++;
      }
    }
  } finally {
    db.close();
    lock?.release();
  }
  return { created, refused };
}

/** What a membership brings into a home: credential, [fleet] keys, records. */
export async function settle(home: string, url: string, m: Membership, o: { engineConfig: boolean; keys?: Record<string, TomlValue> }) {
  if (m.credential) writeMemberCredential(home, m.credential);
  setFleetKeys(homePaths(home).config, { coordinator_url: url, name: m.name, heartbeat_interval_secs: m.heartbeat_interval_secs, ...o.keys });
  const records = Object.entries(m.records).flatMap(([thread, rs]) => (thread === ENGINE_CONFIG_THREAD && !o.engineConfig ? [] : rs));
  const imported = await importRecords(home, records);
  const engine = o.engineConfig ? (m.records[ENGINE_CONFIG_THREAD] ?? []).length : 0;
  return { ...imported, engine };
}

const IP = /^(\d{1,3}\.){3}\d{1,3}$|^\[?[0-9a-f:]+\]?$/i;

/** A DNS name in a URL is added to [server] allowed_hosts, so peers calling by that name are not refused (FORBIDDEN_HOST). */
function allowName(configPath: string, url: string, allowed: readonly string[]): string | null {
  const host = new URL(url).hostname.toLowerCase();
  if (IP.test(host) || isLoopback(host) || allowed.includes(host)) return null;
  setTableKeys(configPath, "server", { allowed_hosts: [...allowed, host] });
  return host;
}

/** A member other hosts reach at `url` must listen beyond loopback: [server] host = "0.0.0.0" when it listened on loopback only. */
function listenFor(configPath: string, url: string, bindHost: string): string[] {
  if (isLoopback(new URL(url).hostname) || !isLoopback(bindHost)) return [];
  setTableKeys(configPath, "server", { host: "0.0.0.0" });
  return [`  [server] host = "0.0.0.0" (it listened on ${bindHost} only; ${url} is reached from other hosts)`];
}

async function readJoinToken(file: string | undefined): Promise<string> {
  let text: string;
  if (file !== undefined) {
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new UserError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, "copy the output of 'spl fleet token' on the coordinator into that file");
    }
  } else if (!process.stdin.isTTY) text = await Bun.stdin.text();
  else throw new UsageError("no join credential given", "pass --token-file FILE (the output of 'spl fleet token' on the coordinator), or pipe it in");
  const token = text.trim();
  if (!isJoinCredential(token)) throw new UserError(`${file ?? "stdin"} does not hold a join credential (spl_join_<id>_<secret>)`, "copy the output of 'spl fleet token' on the coordinator");
  return token;
}

/** `spl fleet join URL --name N`: this home becomes a member of the fleet at URL. The lines to print. */
/** The PEM of the CA members' certificates come from, or a one-line error naming the file. */
const readCa = (path: string) => readSettingFile("--ca-file", path, "give --ca-file the PEM of the CA that signed the members' certificates");

export async function enrolByHand(o: { url: string; name?: string; tokenFile?: string; advertise?: string; caFile?: string; engineConfig: boolean }): Promise<string> {
  const url = normaliseUrl(o.url, "the coordinator URL", "e.g. spl fleet join https://coordinator.example.com:9100 --name worker-a --token-file join_token");
  if (o.name !== undefined && !MEMBER_NAME.test(o.name)) throw new UsageError(`--name '${o.name}' is not a member name`, "use 1-64 letters, digits, '.', '_' or '-', e.g. --name worker-a");
  const token = await readJoinToken(o.tokenFile);
  const p = homePaths();
  ensureHome(p);
  const caFile = o.caFile === undefined ? undefined : resolve(o.caFile);
  const config = loadConfig(p.config);
  const fleet = sectionOf(config, fleetSection);
  const caPath = caFile ?? fleet.caFile;
  const ca = caPath ? readCa(caPath) : null;
  const advertise = o.advertise === undefined ? null : normaliseUrl(o.advertise, "--advertise", "e.g. --advertise https://worker-a.example.com:9100");
  const me = fleetMember({ ...fleet, enabled: true, coordinatorUrl: url, advertisedEndpoint: advertise ?? fleet.advertisedEndpoint, name: o.name ?? fleet.name }, { ...config.server, tls: config.server.tlsCertFile !== null }, p.home);
  if (me.role !== "worker") throw new UserError(`${url} is this home's own endpoint`, "give the coordinator's URL, or make this home the coordinator: spl fleet coordinate --advertise URL");
  const did = await instanceDid(p.home);
  const peers = new PeerClient();
  peers.trust(ca);
  const m = await requestMembership(peers, url, token, { did, name: me.name, endpoint: me.endpoint, version: VERSION });
  const done = await settle(p.home, url, m, { engineConfig: o.engineConfig, keys: { ...(advertise ? { advertised_endpoint: advertise } : {}), ...(caFile ? { ca_file: caFile } : {}) } });
  const notes: string[] = [...listenFor(p.config, me.endpoint, config.server.host)];
  const allowed = allowName(p.config, me.endpoint, config.server.allowedHosts);
  if (allowed) notes.push(`  [server] allowed_hosts += "${allowed}" (the coordinator calls this member by that name)`);
  if (isLoopback(new URL(me.endpoint).hostname) && !isLoopback(new URL(url).hostname)) {
    notes.push(`  ! this member advertises ${me.endpoint}, which the coordinator cannot reach from its host — join again with --advertise URL`);
  }
  if (plainAcrossHosts(url) || plainAcrossHosts(me.endpoint)) notes.push("  ! the fleet credential goes over plain HTTP across hosts — serve HTTPS (README \"Fleet\": TLS)");
  return [
    `Joined the fleet of ${url} as '${m.name}' (${m.did}), epoch ${m.coordinator.epoch}`,
    `  member credential: ${memberCredentialPath(p.home)} (0600)`,
    `  [fleet] in ${p.config}: coordinator_url, name = "${m.name}", heartbeat_interval_secs = ${m.heartbeat_interval_secs} (the coordinator's)`,
    `  engine config: ${o.engineConfig ? `${done.engine} record(s) from the coordinator` : "kept this home's own (--no-engine-config)"}${done.refused ? ` (${done.refused} record(s) not taken: this store holds others at those positions)` : ""}`,
    ...notes,
    "Restart to apply: spl restart (or spl serve --daemon)",
  ].join("\n");
}

/** `spl fleet coordinate --advertise URL`: one step from a plain home to a coordinator members on other hosts can reach. */
export async function becomeCoordinator(o: { advertise: string; heartbeatSecs?: number; caFile?: string }): Promise<string> {
  const url = normaliseUrl(o.advertise, "--advertise", "e.g. --advertise https://coordinator.example.com:9100");
  const p = homePaths();
  ensureHome(p);
  const before = loadConfig(p.config);
  const https = new URL(url).protocol === "https:";
  if (https && !before.server.tlsCertFile) {
    throw new UserError(`${url} is https, but [server] in ${p.config} has no tls_cert_file / tls_key_file`, "add both (README \"Fleet\": TLS, a private CA with openssl), or advertise an http:// URL");
  }
  const caFile = o.caFile === undefined ? undefined : resolve(o.caFile);
  if (caFile) readCa(caFile);
  setFleetKeys(p.config, { coordinator_url: null, advertised_endpoint: url, ...(o.heartbeatSecs ? { heartbeat_interval_secs: o.heartbeatSecs } : {}), ...(caFile ? { ca_file: caFile } : {}) });
  const notes: string[] = [...listenFor(p.config, url, before.server.host)];
  // The coordinator calls its members too (fan-out children, first contact after a restart).
  if (https && !caFile && !sectionOf(before, fleetSection).caFile) notes.push("  ! no [fleet] ca_file: this coordinator trusts only the system roots when it calls members — give --ca-file <ca.pem> for a private CA");
  const allowed = allowName(p.config, url, before.server.allowedHosts);
  if (allowed) notes.push(`  [server] allowed_hosts += "${allowed}" (members call this host by that name)`);
  const running = await memberInfo(p.home);
  const r = Bun.spawnSync([...selfCommand(), "serve", running ? "--restart" : "--daemon"], { env: process.env, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new UserError(`the daemon did not start as coordinator: ${r.stderr.toString().trim().split("\n").pop()}`, `see ${p.log}`);
  const t = await call<{ token: string; expires_at: number }>("POST", "/v1/fleet/token", {});
  const self = await call<{ did: string; epoch: number; heartbeat_interval_secs: number }>("GET", "/v1/fleet/member");
  if (plainAcrossHosts(url)) notes.push("  ! members will send their credentials over plain HTTP — serve HTTPS (README \"Fleet\": TLS)");
  return [
    `This home coordinates the fleet at ${url} (${self.did}, epoch ${self.epoch}, heartbeat every ${self.heartbeat_interval_secs}s)`,
    ...notes,
    "",
    `Join credential (valid until ${new Date(t.expires_at * 1000).toISOString()}; 'spl fleet token' prints it again):`,
    `  ${t.token}`,
    "On each worker host, with it in a private file:",
    `  spl fleet join ${url} --name <name> --token-file <file>${new URL(url).protocol === "https:" ? " --ca-file <ca.pem>" : ""} --advertise <its URL>`,
    "  spl serve --daemon",
  ].join("\n");
}

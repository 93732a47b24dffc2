// Joining a fleet (README "Fleet", ARCHITECTURE.md "The fleet protocol"). A member sends its DID,
// name, endpoint and version to the coordinator's POST /v1/fleet/join with a join credential (or
// the coordinator's own operator, on its socket: `spl fleet start`); the coordinator checks the
// name is free, mints a member credential bound to that DID, records `joined`, and answers with
// the credential, its epoch and heartbeat interval, and the records a new member starts from:
// th_engine_config (so children are routed as on the coordinator) and th_fleet_control. The
// registry is not among them: a member copies it after its first acknowledged beat, so a home
// misconfigured as a coordinator before it ever beat knows no fleet to take over. `spl fleet
// join` (the CLI) and a member that holds only a join credential at start (a home set up by an
// earlier version, a container given the shared secret) both use it.
import type { Host } from "../capability";
import { ApiError } from "../api/http";
import type { Caller } from "../api/caller";
import { UserError } from "../errors";
import type { PeerClient } from "../peer";
import { ENGINE_CONFIG_THREAD, FLEET_CONTROL_THREAD, INSTANCE_REGISTRY_THREAD } from "../records/reserved-threads";
import { toWire } from "../records/wire";
import { MEMBER_NAME, normaliseUrl } from "./config";
import { mintCredential, staleEpoch } from "./credentials";
import type { EpochBook } from "./epoch";
import type { Liveness } from "./liveness";
import type { FleetRegistry } from "./registry";

export const SHARED_THREADS = [ENGINE_CONFIG_THREAD, FLEET_CONTROL_THREAD] as const;
const INSTANCE_DID = /^did:sync:instance:[0-9a-f]{16}$/;

export interface JoinRequest {
  did: string;
  name: string;
  endpoint: string;
  version: string;
  /** The operator replacing a member of that name that is not live (`spl fleet start` re-creating a home). */
  replace?: boolean;
  /** The credential the member holds: when still in force for that DID, nothing new is minted (operator only). */
  credential_id?: string;
}

export interface Membership {
  object: "fleet_membership";
  did: string;
  name: string;
  /** null: the member's credential is still in force (credential_id matched). */
  credential: string | null;
  coordinator: { did: string; url: string; epoch: number };
  heartbeat_interval_secs: number;
  records: Record<string, unknown[]>;
}

/** The body a member sends, checked (a 400 names the field). */
export function parseJoinRequest(raw: unknown): JoinRequest {
  const b = (raw && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  const bad = (field: string, want: string) => new ApiError(400, "INVALID_JOIN", `'${field}' must be ${want}`);
  if (typeof b.did !== "string" || !INSTANCE_DID.test(b.did)) throw bad("did", "an instance DID (did:sync:instance:<16 hex>)");
  if (typeof b.name !== "string" || !MEMBER_NAME.test(b.name)) throw bad("name", "1-64 letters, digits, '.', '_' or '-'");
  if (typeof b.endpoint !== "string") throw bad("endpoint", "the member's URL");
  let endpoint: string;
  try {
    endpoint = normaliseUrl(b.endpoint, "endpoint", "");
  } catch {
    throw bad("endpoint", "an http:// or https:// URL");
  }
  return {
    did: b.did,
    name: b.name,
    endpoint,
    version: typeof b.version === "string" ? b.version.slice(0, 64) : "",
    replace: b.replace === true,
    credential_id: typeof b.credential_id === "string" ? b.credential_id : undefined,
  };
}

/** Every record of a thread this member holds, as the API gives them (LEARNs only: the registry's old beats stay behind). */
export function threadRecords(host: Host, thread: string): unknown[] {
  const out: unknown[] = [];
  for (let after = 0; ; ) {
    const page = host.store.list({ thread, act: "LEARN", after, limit: 1000 });
    out.push(...page.data.map(toWire));
    if (!page.has_more) return out;
    after = Number(page.next_cursor);
  }
}

export interface Admission {
  host: Host;
  registry: FleetRegistry;
  liveness: Liveness;
  epochs: EpochBook;
  intervalSecs: number;
}

/** The coordinator's side: admits a member, or refuses naming why and what to do. */
export async function admit(a: Admission, req: JoinRequest, caller: Caller): Promise<Membership> {
  const { host, registry, epochs } = a;
  const deposed = epochs.deposedBy();
  if (deposed) throw staleEpoch(deposed.epoch, deposed.url);
  if (!epochs.coordinating()) {
    const k = epochs.current;
    throw new ApiError(409, "NOT_COORDINATOR", `this member is not the fleet's coordinator${k.url ? ` (${k.url} is, epoch ${k.epoch})` : ""} — join there: spl fleet join ${k.url ?? "<coordinator_url>"} --name ${req.name}`, { coordinator_url: k.url });
  }
  const operator = caller.token === null || caller.scopes?.includes("admin") === true;
  const holder = registry.holderOf(req.name);
  if (holder && holder.did !== req.did) {
    const live = a.liveness.status(holder.did, host.now()) === "live";
    if (!(req.replace && operator && !live)) {
      throw new ApiError(409, "NAME_TAKEN", `the name '${req.name}' belongs to ${holder.did} (${a.liveness.status(holder.did, host.now())}) — pick another --name, or remove that member first on the coordinator: spl fleet forget ${req.name}`);
    }
    await record(host, { topic: "forgotten", did: holder.did, name: holder.name, reason: `its name was given to ${req.did} (spl fleet start)` });
    a.liveness.forget(holder.did);
  }
  const own = epochs.held!;
  const coordinator = { did: own.did, url: own.endpoint, epoch: own.epoch };
  const current = registry.get(req.did);
  let credential: string | null = null;
  if (!(operator && req.credential_id && current && !current.forgotten && current.credential?.id === req.credential_id)) {
    const minted = mintCredential("member");
    credential = minted.token;
    await record(host, { topic: "joined", did: req.did, name: req.name, endpoint: req.endpoint, version: req.version, credential_id: minted.id, secret_sha256: minted.secretSha256 });
  }
  a.liveness.welcome(req.did, host.now());
  return {
    object: "fleet_membership",
    did: req.did,
    name: registry.get(req.did)?.name ?? req.name,
    credential,
    coordinator,
    heartbeat_interval_secs: a.intervalSecs,
    records: Object.fromEntries(SHARED_THREADS.map((t) => [t, threadRecords(host, t)])),
  };
}

const record = (host: Host, body: Record<string, unknown>) => host.write({ thread: INSTANCE_REGISTRY_THREAD, act: "LEARN", actor: host.instanceDid, body });

/** The member's side: asks the coordinator at `url` for a membership with a join credential. A refusal is a UserError naming the fix. */
export async function requestMembership(peers: PeerClient, url: string, joinCredential: string | undefined, req: JoinRequest): Promise<Membership> {
  let res: { status: number; body: any };
  try {
    res = await peers.request(url, "POST", "/v1/fleet/join", req, { bearer: joinCredential, timeoutMs: 10_000 });
  } catch (err) {
    throw new UserError(`cannot join the fleet of ${url}: ${(err as Error).message}`);
  }
  if (res.status === 200) return res.body as Membership;
  const msg = typeof res.body?.message === "string" ? res.body.message : `HTTP ${res.status}`;
  const cut = msg.indexOf(" — ");
  throw new UserError(`the coordinator at ${url} refused to admit '${req.name}' (${res.status}${res.body?.code ? ` ${res.body.code}` : ""}): ${cut < 0 ? msg : msg.slice(0, cut)}`, cut < 0 ? undefined : msg.slice(cut + 3));
}

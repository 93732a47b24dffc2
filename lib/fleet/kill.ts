// `spl kill` / `spl unkill` (README "Fleet"): check the flags, then write one LEARN on
// th_fleet_control on this member — applied here at once, whether or not the coordinator answers —
// as this member's DID (issued_by names the operator). The daemon forwards it: a worker to its
// coordinator, the coordinator to every member. On a worker the verb waits a moment for the
// coordinator to have it, and says so when it does not (it is forwarded when the coordinator is
// back). A deposed coordinator refuses, naming the coordinator that replaced it.
import { call, request, resolveTarget, type Target } from "../client";
import { loadConfig } from "../config";
import { UsageError, UserError } from "../errors";
import { homePaths } from "../paths";
import { FLEET_CONTROL_THREAD } from "../records/reserved-threads";
import { CONTROL_TOPICS, DEFAULT_GRACE_SECS, FREEZE_LEVELS, type EmergencyState, type Freeze, type FreezeLevel } from "./control";
import { memberTarget } from "./view";

/** How long `spl kill` on a worker waits for its coordinator to take the record before saying it will later. */
const FORWARD_WAIT_MS = 3000;

export interface KillFlags {
  namespace?: string;
  emergency?: boolean;
  level?: string;
  grace?: string;
  reason?: string;
  url?: string;
}

const MAX_GRACE_SECS = 86_400;
const NAMESPACE = /^[A-Za-z0-9][A-Za-z0-9._\-/]{0,199}$/;

/** Exactly one of --namespace NS / --emergency, and a namespace that can be frozen. */
function scope(verb: string, f: KillFlags): { namespace: string } | { emergency: true } {
  if (f.emergency && f.namespace !== undefined) throw new UsageError(`give --namespace NS or --emergency, not both`, `spl ${verb} --namespace docs  or  spl ${verb} --emergency`);
  if (f.emergency) return { emergency: true };
  if (f.namespace === undefined) throw new UsageError(`nothing to ${verb === "kill" ? "freeze" : "lift"}`, `give --namespace NS or --emergency, e.g. spl ${verb} --namespace docs`);
  if (!NAMESPACE.test(f.namespace)) throw new UsageError(`--namespace '${f.namespace}' is not a namespace`, "use letters, digits, '.', '_', '-' and '/', e.g. --namespace docs/v0.11");
  return { namespace: f.namespace };
}

function level(f: KillFlags): FreezeLevel {
  if (f.level === undefined) return "soft";
  if (!(FREEZE_LEVELS as readonly string[]).includes(f.level)) throw new UsageError(`--level must be soft or hard, got '${f.level}'`, "use --level soft (new work refused) or --level hard (everything, after --grace)");
  return f.level as FreezeLevel;
}

function grace(f: KillFlags, lvl: FreezeLevel): number {
  if (f.grace === undefined) return DEFAULT_GRACE_SECS;
  if (lvl !== "hard") throw new UsageError("--grace applies only to a hard freeze", `add --level hard, or leave out --grace`);
  const n = Number(f.grace);
  if (!/^\d+$/.test(f.grace) || n > MAX_GRACE_SECS) throw new UsageError(`--grace must be whole seconds from 0 to ${MAX_GRACE_SECS}, got '${f.grace}'`, `e.g. --grace ${DEFAULT_GRACE_SECS}`);
  return n;
}

interface Self {
  did: string;
  role: string;
  coordinator_url: string | null;
  control_pending: string[];
  /** With [fleet.etcd]: control records written here that etcd does not hold yet. */
  election?: { control_pending: string[] };
  freezes: Freeze[];
  emergency: EmergencyState;
}

const target = (url?: string): Target => (url ? memberTarget(url) : resolveTarget());

async function self(t: Target): Promise<Self> {
  return call<Self>("GET", "/v1/fleet/member", undefined, t);
}

/** Writes the control record on the member; the line(s) to print. */
async function record(body: Record<string, unknown>, line: string, url?: string): Promise<{ line: string; record: any }> {
  const operator = loadConfig(homePaths().config).identity.actor;
  const t = target(url);
  const me = url ? null : await self(t);
  // Written locally as the member's DID (so it may forward it); over --url as the token's actor.
  const actor = me && me.role !== "plain" ? me.did : operator;
  const issued = { ...body, issued_by: operator, issued_at_unix: Math.floor(Date.now() / 1000) };
  const rec = await call("POST", "/v1/records", { act: "LEARN", actor, thread: FLEET_CONTROL_THREAD, body: issued }, t);
  // With [fleet.etcd] the record goes to etcd, which every member watches (README "Automatic failover with etcd").
  if (me?.election) {
    for (const end = Date.now() + FORWARD_WAIT_MS; Date.now() < end; await Bun.sleep(100)) {
      const now = await request<Self>("GET", "/v1/fleet/member", undefined, t, 3000).catch(() => null);
      if (now?.status === 200 && !now.body.election?.control_pending.includes(rec.id)) return { line: `${line}\n  applied here and published in etcd: every member applies it`, record: rec };
    }
    return { line: `${line}\n  applied here; etcd has not taken it yet — it is published as soon as etcd answers (spl doctor)`, record: rec };
  }
  if (me?.role !== "worker") return { line, record: rec };
  for (const end = Date.now() + FORWARD_WAIT_MS; Date.now() < end; await Bun.sleep(100)) {
    const now = await request<Self>("GET", "/v1/fleet/member", undefined, t, 3000).catch(() => null);
    if (now?.status === 200 && !now.body.control_pending.includes(rec.id)) return { line: `${line}\n  applied here and forwarded to the coordinator ${me.coordinator_url}`, record: rec };
  }
  return { line: `${line}\n  applied here; the coordinator ${me.coordinator_url} has not taken it yet — it is forwarded as soon as it answers (spl doctor)`, record: rec };
}

export async function kill(f: KillFlags): Promise<{ line: string; record: unknown }> {
  const s = scope("kill", f);
  const reason = f.reason ? { reason: f.reason } : {};
  if ("emergency" in s) {
    if (f.level !== undefined || f.grace !== undefined) throw new UsageError("--level and --grace apply to a namespace freeze", "leave them out with --emergency");
    return record({ topic: CONTROL_TOPICS.emergencyStop, ...reason }, "✓ emergency stop recorded", f.url);
  }
  const lvl = level(f);
  const secs = grace(f, lvl);
  return record({ topic: CONTROL_TOPICS.freeze, namespace: s.namespace, level: lvl, ...(lvl === "hard" ? { grace_secs: secs } : {}), ...reason }, `✓ ${lvl} freeze of '${s.namespace}' recorded`, f.url);
}

export async function unkill(f: KillFlags): Promise<{ line: string; record: unknown }> {
  const s = scope("unkill", f);
  // What this member enforces now: it answers whether or not the coordinator does.
  const status = await self(target(f.url));
  if ("emergency" in s) {
    if (!status.emergency.active) throw new UserError("no emergency stop is active", "nothing to lift; 'spl fleet status' shows the fleet's freezes");
    return record({ topic: CONTROL_TOPICS.emergencyClear }, "✓ emergency clear recorded", f.url);
  }
  if (!status.freezes.some((fr) => fr.namespace === s.namespace)) {
    const active = status.freezes.map((fr) => fr.namespace).join(", ") || "(none)";
    throw new UserError(`namespace '${s.namespace}' is not frozen`, `frozen now: ${active} ('spl fleet status')`);
  }
  return record({ topic: CONTROL_TOPICS.unfreeze, namespace: s.namespace }, `✓ unfreeze of '${s.namespace}' recorded`, f.url);
}

// `spl kill` / `spl unkill` (README "Fleet"): check the flags, then write one LEARN on th_fleet_control at
// the coordinator — found by asking this home's daemon what it is (a worker names its coordinator) —
// which every member copies.
import { call } from "../client";
import { loadConfig } from "../config";
import { UsageError, UserError } from "../errors";
import { homePaths } from "../paths";
import { FLEET_CONTROL_THREAD } from "../records/reserved-threads";
import { CONTROL_TOPICS, DEFAULT_GRACE_SECS, FREEZE_LEVELS, type FreezeLevel } from "./control";
import { coordinatorTarget, fetchStatus } from "./view";

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

async function record(body: Record<string, unknown>, url?: string) {
  const actor = loadConfig(homePaths().config).identity.actor;
  const issued = { ...body, issued_by: actor, issued_at_unix: Math.floor(Date.now() / 1000) };
  return call("POST", "/v1/records", { act: "LEARN", actor, thread: FLEET_CONTROL_THREAD, body: issued }, await coordinatorTarget(url));
}

export async function kill(f: KillFlags): Promise<{ line: string; record: unknown }> {
  const s = scope("kill", f);
  const reason = f.reason ? { reason: f.reason } : {};
  if ("emergency" in s) {
    if (f.level !== undefined || f.grace !== undefined) throw new UsageError("--level and --grace apply to a namespace freeze", "leave them out with --emergency");
    const rec = await record({ topic: CONTROL_TOPICS.emergencyStop, ...reason }, f.url);
    return { line: "✓ emergency stop recorded", record: rec };
  }
  const lvl = level(f);
  const secs = grace(f, lvl);
  const rec = await record({ topic: CONTROL_TOPICS.freeze, namespace: s.namespace, level: lvl, ...(lvl === "hard" ? { grace_secs: secs } : {}), ...reason }, f.url);
  return { line: `✓ ${lvl} freeze of '${s.namespace}' recorded`, record: rec };
}

export async function unkill(f: KillFlags): Promise<{ line: string; record: unknown }> {
  const s = scope("unkill", f);
  const status = await fetchStatus(await coordinatorTarget(f.url));
  if ("emergency" in s) {
    if (!status.emergency.active) throw new UserError("no emergency stop is active", "nothing to lift; 'spl fleet status' shows the fleet's freezes");
    return { line: "✓ emergency clear recorded", record: await record({ topic: CONTROL_TOPICS.emergencyClear }, f.url) };
  }
  if (!status.freezes.some((fr) => fr.namespace === s.namespace)) {
    const active = status.freezes.map((fr) => fr.namespace).join(", ") || "(none)";
    throw new UserError(`namespace '${s.namespace}' is not frozen`, `frozen now: ${active} ('spl fleet status')`);
  }
  return { line: `✓ unfreeze of '${s.namespace}' recorded`, record: await record({ topic: CONTROL_TOPICS.unfreeze, namespace: s.namespace }, f.url) };
}

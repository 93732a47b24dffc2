// Doctor row "permission enforcement": on/off, rule count, REFUSED rules and skipped config LEARNs.
// Asks the running daemon; with none running, folds th_engine_config from the store read-only
// (so it also shows what a `permissions-unlock` will do at the next start).
import { existsSync } from "node:fs";
import { request } from "../client";
import { quietMode } from "../backup/snapshot";
import { StoreReader } from "../store/reader";
import { type Check, type DoctorContext, pass, warn } from "./types";

const NAME = "permission enforcement";
const UNLOCK = "spl serve --stop; spl config permissions-unlock; spl serve --daemon";

interface Summary {
  enabled: boolean;
  rules: number;
  refused: Array<{ topic: string; name: string; error: string }>;
  skipped: number;
}

async function fromDaemon(ctx: DoctorContext): Promise<Summary | { denied: string } | null> {
  const r = await request("GET", "/v1/config", undefined, ctx.target, 3000).catch(() => null);
  if (!r) return null;
  if (r.status === 403) return { denied: r.body?.message ?? "403" };
  if (r.status !== 200) return null;
  const c = r.body;
  return { enabled: c.permissions_enabled, rules: c.rules.permission_rule, refused: c.refused_rules, skipped: c.skipped };
}

async function fromStore(ctx: DoctorContext): Promise<Summary | null> {
  const path = ctx.paths.store;
  if (!existsSync(path)) return null;
  const { EngineConfig, ENGINE_CONFIG_THREAD } = await import("../engine/config-fold");
  const config = new EngineConfig();
  let reader: StoreReader;
  try {
    reader = StoreReader.open(path, quietMode(path));
  } catch {
    return null; // an unreadable store is the "store integrity" row's to report
  }
  try {
    if (!reader.hasRecords()) return null;
    for (const rec of reader.learnsOn(ENGINE_CONFIG_THREAD)) config.apply(rec);
  } catch {
    return null;
  } finally {
    reader.close();
  }
  const s = config.show();
  return { enabled: s.permissions_enabled, rules: s.rules.permission_rule, refused: config.refused(), skipped: s.skipped };
}

export const permissionEnforcement: Check = async (ctx) => {
  const live = ctx.daemonIsOurs && ctx.health?.status === 200;
  const got = live ? await fromDaemon(ctx) : await fromStore(ctx);
  if (got && "denied" in got) {
    return warn(NAME, `on, and it denies the operator config_read (${ctx.config?.identity.actor ?? "?"}): locked out? ${UNLOCK}`);
  }
  if (!got) {
    if (live && ctx.status) return pass(NAME, ctx.status.permissions_enabled ? "on" : "off");
    return null;
  }
  const state = got.enabled ? "on" : "off (default)";
  const where = live ? "" : " (from the store; the daemon is not running)";
  const detail = `${state} — ${got.rules} permission rule(s)${where}`;
  const problems: string[] = [];
  if (got.refused.length) {
    const names = got.refused.slice(0, 3).map((r) => `${r.topic} "${r.name}"`).join(", ");
    problems.push(`${got.refused.length} REFUSED rule(s) (${names}${got.refused.length > 3 ? ", ..." : ""}) — 'spl config list-rules' shows the errors`);
  }
  if (got.skipped) problems.push(`${got.skipped} orphan LEARN(s) on th_engine_config without a known topic: silently skipped by the config loader`);
  if (got.enabled && got.rules === 0) problems.push(`enforcement is on with no rules: everything but /health is denied — ${UNLOCK}`);
  return problems.length ? warn(NAME, `${detail}; ${problems.join("; ")}`) : pass(NAME, detail);
};

// Runs the doctor's checks against this home (SYNCROPEL_HOME) and whichever daemon the CLI
// would talk to (the socket, or SPL_SERVE_URL).
import { request, resolveTarget, type Target } from "../client";
import { daemonByPort, sameHome } from "../daemonctl/control";
import { loadConfig, sectionOf } from "../config";
import { CONFIG_SECTIONS } from "../capabilities";
import { UserError } from "../errors";
import { homePaths } from "../paths";
import { CHECKS } from "./checks";
import { type Check, type CheckResult, type CheckStatus, type DoctorContext, fail } from "./types";

async function ask(target: Target): Promise<Pick<DoctorContext, "health" | "status">> {
  let health: DoctorContext["health"] = null;
  let status = null;
  try {
    health = await request("GET", "/health", undefined, target, 3000);
    if (health.status === 200) {
      const s = await request("GET", "/v1/status", undefined, target, 3000).catch(() => null);
      if (s?.status === 200) status = s.body;
    }
  } catch {}
  return { health, status };
}

export async function doctorContext(): Promise<DoctorContext> {
  const paths = homePaths();
  let config = null;
  let configError: string | null = null;
  try {
    const read = loadConfig(paths.config);
    for (const s of CONFIG_SECTIONS) sectionOf(read, s); // a bad value in any table is the config row's
    config = read;
  } catch (err) {
    configError = err instanceof UserError ? err.oneLine : (err as Error).message;
  }
  let target = resolveTarget();
  let { health, status } = await ask(target);
  let reachedByPort = false;
  if (!health && !process.env.SPL_SERVE_URL) {
    // No socket (run/ deleted?): the daemon may still serve its port.
    const found = await daemonByPort(paths);
    if (found) {
      target = resolveTarget(found.url);
      ({ health, status } = await ask(target));
      reachedByPort = health !== null;
    }
  }
  const home = health?.body?.home;
  const daemonIsOurs = typeof home === "string" && sameHome(home, paths.home);
  return { paths, config, configError, target, health, status, daemonIsOurs, reachedByPort };
}

export const EXIT: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };

export async function runDoctor(checks: Record<string, Check> = CHECKS): Promise<{ checks: CheckResult[]; exitCode: number }> {
  const ctx = await doctorContext();
  const rows: CheckResult[] = [];
  for (const [name, check] of Object.entries(checks)) {
    try {
      const r = await check(ctx);
      if (r) rows.push(...(Array.isArray(r) ? r : [r]));
    } catch (err) {
      rows.push(fail(name, `the check itself failed: ${(err as Error).message}`));
    }
  }
  return { checks: rows, exitCode: Math.max(0, ...rows.map((r) => EXIT[r.status])) };
}

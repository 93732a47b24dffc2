// `spl fleet start|stop`: a local fleet of ordinary daemons, one home each — the coordinator on
// the CLI's home (~/.syncro, :9100) and workers on <home>-worker-{a,b,...} (:9201, :9202...).
// Each member is started and stopped by running this same binary (`spl serve --daemon|--stop`)
// with its SYNCROPEL_HOME, exactly as an operator would by hand; the coordinator's operator admits
// each worker on the coordinator's socket (its member credential, the coordinator's records into
// a new worker's store), so no join credential is needed here.
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { request } from "../client";
import { loadConfig, readConfigToml } from "../config";
import { ENGINE_CONFIG_THREAD } from "../records/reserved-threads";
import { DEFAULT_CHILD_TARGET } from "../fanout/spec";
import { selfCommand } from "../daemonctl/control";
import { parseBearer } from "../auth/tokens";
import { UserError } from "../errors";
import { ensureHome } from "../home";
import { homePaths, userHome } from "../paths";
import { VERSION } from "../version";
import { setFleetKeys } from "./config-file";
import { readMemberCredential, writeMemberCredential } from "./credentials";
import { importRecords, instanceDid, memberInfo, socketOf } from "./enrol";
import type { Membership } from "./join";

export const DEFAULT_WORKER_PORT = 9201;
export const LOCAL_HEARTBEAT_SECS = 5;
export const CONVERGENCE_SECS = 30;

export const workerName = (i: number) => `worker-${String.fromCharCode(97 + i)}`;
export const memberHome = (coordinatorHome: string, name: string) => (name === "coordinator" ? coordinatorHome : `${coordinatorHome}-${name}`);
/** ~/.syncro-worker-a rather than /home/you/.syncro-worker-a, as the runbook prints it. */
export const tilde = (path: string) => (path.startsWith(`${userHome()}/`) ? `~${path.slice(userHome().length)}` : path);

/** Runs this spl with another home; resolves with its exit code and output. */
async function spl(home: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env: Record<string, string | undefined> = { ...process.env, SYNCROPEL_HOME: home };
  delete env.SPL_SERVE_URL; // each member is reached on its own socket
  delete env.SPL_FLEET_COORDINATOR_URL; // roles come from each home's config.toml
  const proc = Bun.spawn([...selfCommand(), ...args], { env, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

const lastError = (r: { stderr: string; stdout: string }) => (r.stderr.split("\n").find((l) => l.startsWith("error:")) ?? r.stderr.trim() ?? r.stdout.trim()).replace(/^error: /, "");

/**
 * The coordinator's operator admits a local worker (on the coordinator's socket): a member
 * credential bound to its DID, unless the one it holds is still in force; a worker of that name
 * that is not live (its home was re-created) is replaced.
 */
async function admit(coordinatorHome: string, wHome: string, m: { did: string; name: string; endpoint: string }): Promise<Membership> {
  const held = readMemberCredential(wHome);
  const r = await request("POST", "/v1/fleet/join", { ...m, version: VERSION, replace: true, ...(held ? { credential_id: parseBearer(held)?.id } : {}) }, socketOf(coordinatorHome));
  if (r.status !== 200) throw new UserError(`[${m.name}] the coordinator did not admit it (HTTP ${r.status} ${r.body?.code ?? ""}): ${r.body?.message ?? ""}`.trim(), `see ${tilde(homePaths(coordinatorHome).log)}`);
  const membership = r.body as Membership;
  if (membership.credential) writeMemberCredential(wHome, membership.credential);
  return membership;
}

/** Starts one member detached; returns its pid. A start that fails is a UserError naming the member. */
async function startMember(name: string, home: string, port: number): Promise<number> {
  const r = await spl(home, ["serve", "--daemon", "--port", String(port)]);
  const pid = Number(/PID:\s+(\d+)/.exec(r.stdout)?.[1]);
  if (r.code !== 0 || !pid) {
    throw new UserError(`[${name}] did not start on :${port}: ${lastError(r)}`, `see ${tilde(homePaths(home).daemonOut)}; fix it and run 'spl fleet start' again (running members are kept)`);
  }
  return pid;
}

async function stopMember(home: string): Promise<{ pid: number | null; error?: string }> {
  const r = await spl(home, ["serve", "--stop"]);
  if (r.code !== 0) return { pid: null, error: lastError(r) };
  const pid = /pid (\d+)/i.exec(r.stdout)?.[1];
  return { pid: pid ? Number(pid) : null };
}

/**
 * Writes `[server] port = N` into a member's config.toml (keeping every other line), so the CLI run
 * from that home — and the daemon started there without --port — uses the port the member serves on.
 * Returns whether the file changed.
 */
export function setServerPort(configPath: string, port: number): boolean {
  const lines = readFileSync(configPath, "utf8").split("\n");
  let table = "";
  let at = -1;
  let header = -1;
  lines.forEach((line, i) => {
    const t = /^\s*\[([^\]]+)\]\s*(#.*)?$/.exec(line);
    if (t) table = t[1]!.trim();
    else if (table === "server" && /^\s*port\s*=/.test(line)) at = i;
    if (t && table === "server") header = i;
  });
  const want = `port = ${port}`;
  if (at >= 0) {
    if (lines[at]!.replace(/\s*#.*$/, "").trim() === want) return false;
    lines[at] = want;
  } else if (header >= 0) lines.splice(header + 1, 0, want);
  else lines.push("", "[server]", want);
  writeFileSync(configPath, lines.join("\n"), { mode: 0o600 });
  return true;
}

/** The routing rule a new worker gets for the fan-out children it is sent (README "Fan-out"): the echo adapter. */
const FANOUT_RULE = { topic: "routing_rule", name: "fanout-children", expression: "has(record.body.fanout)", target: DEFAULT_CHILD_TARGET, priority: -10 };

/** The coordinator's shared records plus the fan-out rule, unless the coordinator's config already names one. */
function withFanoutRule(records: any[], workerHome: string): any[] {
  if (records.some((r) => r.thread === ENGINE_CONFIG_THREAD && r.body?.topic === "routing_rule" && r.body?.name === FANOUT_RULE.name)) return records;
  const actor = loadConfig(homePaths(workerHome).config).identity.actor;
  return [...records, { thread: ENGINE_CONFIG_THREAD, actor, act: "LEARN", body: FANOUT_RULE, parents: [], created_at: Math.floor(Date.now() / 1000) }];
}


export interface StartOptions {
  workers: number;
  port: number;
  workerPort: number;
  heartbeatSecs: number | null;
  waitSecs: number;
  write: (line: string) => void;
}

/** `spl fleet start`: prints the runbook's lines as it goes; throws UserError when it cannot converge. */
export async function startFleet(o: StartOptions): Promise<void> {
  const home = homePaths().home;
  const coordinatorUrl = `http://127.0.0.1:${o.port}`;
  o.write(`Starting local fleet: 1 coordinator + ${o.workers} worker${o.workers === 1 ? "" : "s"}`);
  o.write("");

  // The coordinator: [fleet] without coordinator_url (it is its own), then running as such.
  ensureHome(homePaths(home));
  const cfg = homePaths(home).config;
  const current = existsSync(cfg) ? readConfigToml(cfg).fleet : undefined;
  if (current?.coordinator_url !== undefined && String(current.coordinator_url).replace(/\/+$/, "") !== coordinatorUrl) {
    throw new UserError(
      `${tilde(home)} is a worker of ${current.coordinator_url} ([fleet] coordinator_url in ${tilde(cfg)})`,
      "run 'spl fleet start' on the coordinator's home, or remove that line to make this home the coordinator",
    );
  }
  const heartbeat = o.heartbeatSecs ?? current?.heartbeat_interval_secs ?? LOCAL_HEARTBEAT_SECS;
  const changed = setFleetKeys(cfg, { coordinator_url: null, heartbeat_interval_secs: heartbeat });
  const expected: { name: string; did: string; endpoint: string; home: string }[] = [];
  let coord = await memberInfo(home);
  if (coord && (changed || coord.role !== "coordinator")) {
    // It must re-read config.toml to take the coordinator's role: say so, it was serving.
    const why = changed ? "[fleet] in its config.toml changed" : `it ran as a ${coord.role === "plain" ? "plain instance" : coord.role}`;
    const stopped = await stopMember(home);
    o.write(`  [coordinator] restarting${stopped.pid ? ` PID ${stopped.pid}` : ""} (${why})`);
    coord = null;
  }
  if (coord) o.write(`  [coordinator] running ${coord.endpoint} (home=${tilde(home)})`);
  else {
    const pid = await startMember("coordinator", home, o.port);
    o.write(`  [coordinator] spawned PID ${pid} on :${o.port} (home=${tilde(home)})`);
    coord = await memberInfo(home);
  }
  if (!coord) throw new UserError("the coordinator started but does not answer on its socket", `see ${tilde(homePaths(home).log)}`);
  expected.push({ name: "coordinator", did: coord.did, endpoint: coord.endpoint, home });

  for (let i = 0; i < o.workers; i++) {
    const name = workerName(i);
    const wHome = memberHome(home, name);
    const port = o.workerPort + i;
    const fresh = !existsSync(homePaths(wHome).store);
    if (fresh) {
      const r = await spl(wHome, ["init"]);
      if (r.code !== 0) throw new UserError(`[${name}] cannot create ${tilde(wHome)}: ${lastError(r)}`, "fix it and run 'spl fleet start' again");
    }
    let running = await memberInfo(wHome);
    const wChanged = setFleetKeys(homePaths(wHome).config, { coordinator_url: coordinatorUrl, heartbeat_interval_secs: heartbeat });
    setServerPort(homePaths(wHome).config, port);
    const membership = await admit(home, wHome, { did: running?.did ?? (await instanceDid(wHome)), name, endpoint: running?.endpoint ?? `http://127.0.0.1:${port}` });
    if (running && wChanged) {
      const stopped = await stopMember(wHome);
      o.write(`  [${name}]  restarting${stopped.pid ? ` PID ${stopped.pid}` : ""} ([fleet] in its config.toml changed)`);
      running = null;
    }
    if (!running) {
      if (fresh) await importRecords(wHome, withFanoutRule(Object.values(membership.records).flat(), wHome));
      const pid = await startMember(name, wHome, port);
      o.write(`  [${name}]  spawned PID ${pid} on :${port} (home=${tilde(wHome)})`);
      running = await memberInfo(wHome);
    } else o.write(`  [${name}]  running ${running.endpoint} (home=${tilde(wHome)})`);
    if (!running) throw new UserError(`[${name}] started but does not answer on its socket`, `see ${tilde(homePaths(wHome).log)}`);
    expected.push({ name, did: running.did, endpoint: running.endpoint, home: wHome });
  }

  o.write(`\nWaiting for fleet convergence (${expected.length} live)...`);
  const deadline = Date.now() + o.waitSecs * 1000;
  let missing = expected;
  for (;;) {
    try {
      const r = await request("GET", "/v1/fleet/status", undefined, socketOf(home), 3000);
      // Live, and heard from: a member just admitted (or recorded before a restart) has not beaten yet.
      const live = new Set<string>((r.body?.instances ?? []).filter((m: any) => m.status === "live" && m.health !== "unknown").map((m: any) => m.did));
      missing = expected.filter((m) => !live.has(m.did));
    } catch {}
    if (!missing.length) break;
    if (Date.now() > deadline) {
      const who = missing.map((m) => `${m.name} (${m.did}, ${m.endpoint})`).join(", ");
      const first = missing[0]!;
      throw new UserError(
        `fleet did not converge within ${o.waitSecs} s: ${who} did not register`,
        `see the runbook's "Worker not registering": SYNCROPEL_HOME=${tilde(first.home)} spl doctor`,
      );
    }
    await Bun.sleep(250);
  }
  o.write("  ✓ fleet converged\n\nFleet ready. Inspect with:\n  spl fleet list\n  spl fleet status");
}

/** Names of the local worker homes beside the coordinator's (<home>-worker-*), sorted. */
export function localWorkers(coordinatorHome: string): string[] {
  const prefix = `${basename(coordinatorHome)}-`;
  let names: string[] = [];
  try {
    names = readdirSync(dirname(coordinatorHome)).filter((n) => n.startsWith(`${prefix}worker-`) && existsSync(join(dirname(coordinatorHome), n, "config.toml")));
  } catch {}
  return names.map((n) => n.slice(prefix.length)).sort();
}

/** `spl fleet stop`: which members, then stops each (SIGTERM through `spl serve --stop`). */
export async function stopFleet(names: string[], write: (line: string) => void): Promise<boolean> {
  const home = homePaths().home;
  let ok = true;
  for (const name of names) {
    const h = memberHome(home, name);
    const tag = name === "coordinator" ? `[${name}]` : `[${name}] `;
    if (!(await memberInfo(h)) && !existsSync(homePaths(h).pidFile)) {
      write(`  ${tag} not running (home=${tilde(h)})`);
      continue;
    }
    const r = await stopMember(h);
    if (r.error) {
      ok = false;
      write(`  ${tag} could not stop: ${r.error}`);
    } else write(`  ${tag} stopped${r.pid ? ` PID ${r.pid}` : ""} (home=${tilde(h)})`);
  }
  // The homes stay fleet members: [fleet] in config.toml makes the next `spl serve` a coordinator
  // or a worker again. Say how to leave instead.
  const cfg = homePaths(home).config;
  if (names.includes("coordinator") && existsSync(cfg) && readConfigToml(cfg).fleet !== undefined) {
    write(
      [
        "",
        `The homes are still fleet members ([fleet] in their config.toml): 'spl serve' in ${tilde(home)} starts the coordinator again.`,
        `To leave the fleet, delete the [fleet] table from ${tilde(cfg)} (and from each ${tilde(home)}-worker-*/config.toml).`,
      ].join("\n"),
    );
  }
  return ok;
}

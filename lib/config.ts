// config.toml: the few settings that are files rather than records (identity, bind, store,
// backup retention). Runtime engine config lives in records on th_engine_config instead.
import { existsSync, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { parse } from "smol-toml";
import { UserError } from "./errors";
import { defaultDispatchConfig, type DispatchConfig, parseDispatchConfig } from "./dispatch/config";
import { defaultFleetConfig, type FleetConfig, parseFleetConfig } from "./fleet/config";
import { type OffsiteConfig, parseOffsiteConfig } from "./backup/offsite/config";

export interface SplConfig {
  identity: { actor: string };
  /** allowedHosts: DNS names besides localhost that TCP clients may use in Host (origin.ts). */
  server: { host: string; port: number; allowedHosts: string[] };
  store: { durability: "normal" | "full" };
  /** offsite: [backup.offsite], null when off-host backups are not configured. */
  backup: { keep: number; offsite: OffsiteConfig | null };
  /** aliasPrefix: minted task aliases are <prefix>-0001, <prefix>-0002... */
  tasks: { aliasPrefix: string };
  /** [dispatch]: the concurrency cap and per-target adapters (lib/dispatch/config.ts). */
  dispatch: DispatchConfig;
  /** [fleet]: coordinator, heartbeat interval, name (lib/fleet/config.ts). */
  fleet: FleetConfig;
  /** [metrics]: GET /metrics on (enabled) and served without a token (public). */
  metrics: { enabled: boolean; public: boolean };
  /** [log]: file = false keeps logs on stderr only (containers). */
  log: { file: boolean };
}

export const DEFAULT_PORT = 9100;
export const DEFAULT_HOST = "127.0.0.1";

export function defaultActor(): string {
  const name = process.env.USER || process.env.LOGNAME || osUserName();
  return `did:sync:user:${(name || "operator").replace(/[^A-Za-z0-9._-]/g, "_")}`;
}

/** The user this process runs as, from its uid (systemd and Docker set no USER). */
function osUserName(): string {
  const uid = process.getuid?.();
  if (uid === undefined) return "";
  try {
    for (const line of readFileSync("/etc/passwd", "utf8").split("\n")) {
      const [name, , id] = line.split(":");
      if (name && Number(id) === uid && id !== "") return name;
    }
  } catch {}
  try {
    const name = userInfo().username;
    if (name && name !== "unknown") return name;
  } catch {}
  return `uid${uid}`;
}

export function defaultConfig(): SplConfig {
  return {
    identity: { actor: defaultActor() },
    server: { host: DEFAULT_HOST, port: DEFAULT_PORT, allowedHosts: [] },
    store: { durability: "normal" },
    backup: { keep: 5, offsite: null },
    tasks: { aliasPrefix: "TSK" },
    dispatch: defaultDispatchConfig(),
    fleet: defaultFleetConfig(),
    metrics: { enabled: true, public: false },
    log: { file: true },
  };
}

export function renderConfig(c: SplConfig): string {
  return `# spl instance configuration. Runtime engine config (rules, permissions) lives in records.

[identity]
# The operator's actor: records emitted by this CLI, and the actor permission pre-flight checks.
actor = ${JSON.stringify(c.identity.actor)}

[server]
host = ${JSON.stringify(c.server.host)}
port = ${c.server.port}
# Names clients may use to reach this daemon over TCP besides IP addresses and localhost
# (requests with any other Host are refused, against DNS rebinding), e.g. ["spl.example.com"].
allowed_hosts = ${JSON.stringify(c.server.allowedHosts)}

[store]
# "normal" survives a crash of the daemon; "full" also survives power loss (slower writes).
durability = ${JSON.stringify(c.store.durability)}

[backup]
# Startup backups kept besides hub.db.bak (hub.db.bak.1 .. hub.db.bak.N).
keep = ${c.backup.keep}

# Off-host copies: committed records shipped continuously plus daily snapshots (README
# "Off-host backups in five minutes"). Credentials for s3:// come from the AWS chain (environment,
# AWS_PROFILE, roles) or <home>/secrets/s3.toml, never from this file.
# [backup.offsite]
# url = "s3://my-bucket/spl"        # or "file:///mnt/offsite/spl"
# endpoint = "https://s3.example.com"
# region = "us-east-1"
# continuous = true                 # false: snapshots only
# sync_interval = "1s"
# snapshot_every = "24h"
# keep_days = 14

[tasks]
# Tasks added without --alias get <alias_prefix>-0001, <alias_prefix>-0002...
alias_prefix = ${JSON.stringify(c.tasks.aliasPrefix)}

# Dispatch: routed INTENDs go to the target's adapter (README "Dispatch"). Targets not listed
# get the echo adapter. Example:
# [dispatch]
# concurrency = 4
# [dispatch.targets."did:sync:agent:builder"]
# adapter = "exec"
# command = ["/usr/local/bin/build-task"]
# timeout_secs = 600

# Prometheus metrics at GET /metrics: a token, like /v1/*, unless made public.
# [metrics]
# enabled = true
# public = false

# Log lines go to logs/spl.log, and to stderr when spl serve runs in the foreground;
# file = false keeps them on stderr only (containers).
# [log]
# file = true
`;
}

/** config.toml as parsed TOML; a syntax error is a one-line UserError naming the line and column. */
export function readConfigToml(path: string): Record<string, any> {
  try {
    return parse(readFileSync(path, "utf8"));
  } catch (err) {
    const e = err as Error & { line?: number; column?: number };
    const what = String(e.message).split("\n")[0]!.replace(/^Invalid TOML document: /, "");
    const where = e.line ? ` at line ${e.line}, column ${e.column}` : "";
    throw new UserError(`cannot parse ${path}${where}: ${what}`, "fix the TOML syntax, or run 'spl init --force' to rewrite it");
  }
}

/** Reads config.toml, filling defaults for anything missing. A broken file is a UserError. */
export function loadConfig(path: string): SplConfig {
  const c = defaultConfig();
  if (!existsSync(path)) return c;
  const raw = readConfigToml(path);
  const bad = (key: string, want: string): never => {
    throw new UserError(`${path}: ${key} must be ${want}`, "edit the file and try again");
  };
  if (raw.identity?.actor !== undefined) {
    if (typeof raw.identity.actor !== "string" || !raw.identity.actor.startsWith("did:")) bad("[identity] actor", "a DID string");
    c.identity.actor = raw.identity.actor;
  }
  if (raw.server?.host !== undefined) {
    if (typeof raw.server.host !== "string") bad("[server] host", "a string");
    c.server.host = raw.server.host;
  }
  if (raw.server?.port !== undefined) {
    const p = Number(raw.server.port);
    if (!Number.isInteger(p) || p < 1 || p > 65535) bad("[server] port", "an integer from 1 to 65535");
    c.server.port = p;
  }
  if (raw.server?.allowed_hosts !== undefined) {
    const h = raw.server.allowed_hosts;
    if (!Array.isArray(h) || !h.every((x: unknown) => typeof x === "string" && /^[A-Za-z0-9.-]+$/.test(x))) bad("[server] allowed_hosts", 'a list of host names, e.g. ["spl.example.com"]');
    c.server.allowedHosts = h.map((x: string) => x.toLowerCase());
  }
  if (raw.store?.durability !== undefined) {
    if (raw.store.durability !== "normal" && raw.store.durability !== "full") bad("[store] durability", '"normal" or "full"');
    c.store.durability = raw.store.durability;
  }
  if (raw.backup?.keep !== undefined) {
    const k = Number(raw.backup.keep);
    if (!Number.isInteger(k) || k < 0 || k > 1000) bad("[backup] keep", "an integer from 0 to 1000");
    c.backup.keep = k;
  }
  if (raw.tasks?.alias_prefix !== undefined) {
    const p = raw.tasks.alias_prefix;
    if (typeof p !== "string" || !/^[A-Za-z][A-Za-z0-9_]{0,15}$/.test(p)) bad("[tasks] alias_prefix", 'letters, digits and _ starting with a letter, e.g. "TSK"');
    c.tasks.aliasPrefix = p;
  }
  c.backup.offsite = parseOffsiteConfig(raw.backup?.offsite, path);
  for (const key of ["enabled", "public"] as const) {
    const v = raw.metrics?.[key];
    if (v === undefined) continue;
    if (typeof v !== "boolean") bad(`[metrics] ${key}`, "true or false");
    c.metrics[key] = v;
  }
  if (raw.log?.file !== undefined) {
    if (typeof raw.log.file !== "boolean") bad("[log] file", "true or false");
    c.log.file = raw.log.file;
  }
  c.dispatch = parseDispatchConfig(raw.dispatch, path);
  c.fleet = parseFleetConfig(raw.fleet, path);
  return c;
}

// config.toml: the few settings that are files rather than records. Every table is a ConfigSection
// declared once (name, keys, defaults, parsing, the lines `spl init` writes): the daemon's own
// (identity, server, store, backup, metrics, log) here, each capability's in its own module
// (ARCHITECTURE.md "Capabilities"). The same declarations drive parsing, the unknown-key
// warnings and `spl config show`. Runtime engine config lives in records on th_engine_config.
import { existsSync, readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { parse } from "smol-toml";
import { UserError } from "./errors";

/** A table of config.toml, declared once. */
export interface ConfigSection<T> {
  /** The table's name: "fleet", or "backup.offsite" for a sub-table. */
  readonly name: string;
  /** The keys it may hold; anything else is named in a WARN at start (a typo, a newer spl). */
  readonly keys: readonly string[];
  /** Keys whose values are tables a capability checks itself (their contents are not warned about). */
  readonly freeform?: readonly string[];
  /** Parses the table (undefined when absent); a bad value is a UserError naming the key and a fix. */
  parse(raw: Record<string, unknown> | undefined, file: string): T;
  /** Commented lines for the config.toml `spl init` writes (the values a new home gets). */
  template?(value: T): string;
  /** What `spl config show` prints of it; secrets never appear here. Default: the parsed value. */
  show?(value: T): unknown;
}

export const DEFAULT_PORT = 9100;
export const DEFAULT_HOST = "127.0.0.1";
/** [server] max_body_memory: request bodies in flight (lib/daemon/body-budget.ts). */
export const DEFAULT_BODY_MEMORY = 1024 * 1024 * 1024;

/** A table's value, or a UserError when `raw` is not a table. */
export function table(raw: unknown, file: string, name: string): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw new UserError(`${file}: [${name}] must be a table`, "edit the file and try again");
  return raw as Record<string, unknown>;
}

/** A UserError naming `[section] key` and what it must be. */
export function badValue(file: string, section: string, key: string, want: string, fix = "edit the file and try again"): never {
  throw new UserError(`${file}: [${section}] ${key} must be ${want}`, fix);
}

// ---- the daemon's own sections ----------------------------------------------------------------

export const identitySection: ConfigSection<{ actor: string }> = {
  name: "identity",
  keys: ["actor"],
  parse(raw, file) {
    if (raw?.actor === undefined) return { actor: defaultActor() };
    if (typeof raw.actor !== "string" || !raw.actor.startsWith("did:")) badValue(file, "identity", "actor", "a DID string");
    return { actor: raw.actor as string };
  },
  template: (v) => `[identity]
# The operator's actor: records emitted by this CLI, and the actor permission pre-flight checks.
actor = ${JSON.stringify(v.actor)}`,
};

export interface ServerConfig {
  host: string;
  port: number;
  /** DNS names besides localhost that TCP clients may use in Host (origin.ts). */
  allowedHosts: string[];
  /** Bytes of request bodies in flight before new ones get 503 (daemon/body-budget.ts). */
  maxBodyMemory: number;
  /** PEM certificate (chain) and key: the TCP listener serves HTTPS (the socket stays plain). */
  tlsCertFile: string | null;
  tlsKeyFile: string | null;
}

export const serverSection: ConfigSection<ServerConfig> = {
  name: "server",
  keys: ["host", "port", "allowed_hosts", "max_body_memory", "tls_cert_file", "tls_key_file"],
  parse(raw, file) {
    const c: ServerConfig = { host: DEFAULT_HOST, port: DEFAULT_PORT, allowedHosts: [], maxBodyMemory: DEFAULT_BODY_MEMORY, tlsCertFile: null, tlsKeyFile: null };
    if (raw?.host !== undefined) {
      if (typeof raw.host !== "string") badValue(file, "server", "host", "a string");
      c.host = raw.host as string;
    }
    if (raw?.port !== undefined) {
      const p = Number(raw.port);
      if (!Number.isInteger(p) || p < 1 || p > 65535) badValue(file, "server", "port", "an integer from 1 to 65535");
      c.port = p;
    }
    if (raw?.allowed_hosts !== undefined) {
      const h = raw.allowed_hosts;
      if (!Array.isArray(h) || !h.every((x: unknown) => typeof x === "string" && /^[A-Za-z0-9.-]+$/.test(x))) badValue(file, "server", "allowed_hosts", 'a list of host names, e.g. ["spl.example.com"]');
      c.allowedHosts = (h as string[]).map((x) => x.toLowerCase());
    }
    if (raw?.max_body_memory !== undefined) {
      const m = raw.max_body_memory;
      if (typeof m !== "number" || !Number.isSafeInteger(m) || m < 1024 * 1024) badValue(file, "server", "max_body_memory", "an integer number of bytes, at least 1048576 (1 MiB)");
      c.maxBodyMemory = m as number;
    }
    for (const key of ["tls_cert_file", "tls_key_file"] as const) {
      const v = raw?.[key];
      if (v === undefined) continue;
      if (typeof v !== "string" || !v) badValue(file, "server", key, "a file name", 'e.g. tls_cert_file = "/etc/spl/cert.pem" and tls_key_file = "/etc/spl/key.pem"');
      c[key === "tls_cert_file" ? "tlsCertFile" : "tlsKeyFile"] = v as string;
    }
    if ((c.tlsCertFile === null) !== (c.tlsKeyFile === null)) {
      badValue(file, "server", c.tlsCertFile ? "tls_key_file" : "tls_cert_file", "set too: HTTPS needs both tls_cert_file and tls_key_file", "add the missing one, or remove both for plain HTTP");
    }
    return c;
  },
  show: (v) => ({ host: v.host, port: v.port, allowed_hosts: v.allowedHosts, max_body_memory: v.maxBodyMemory, tls_cert_file: v.tlsCertFile, tls_key_file: v.tlsKeyFile }),
  template: (v) => `[server]
host = ${JSON.stringify(v.host)}
port = ${v.port}
# Names clients may use to reach this daemon over TCP besides IP addresses and localhost
# (requests with any other Host are refused, against DNS rebinding), e.g. ["spl.example.com"].
allowed_hosts = ${JSON.stringify(v.allowedHosts)}
# Memory for request bodies in flight; a body takes about 8x its size while it is handled, and
# past this the daemon answers 503 with Retry-After (default 1 GiB).
# max_body_memory = ${DEFAULT_BODY_MEMORY}
# HTTPS on the TCP listener (the Unix socket stays plain): a PEM certificate chain and its key.
# tls_cert_file = "/etc/spl/cert.pem"
# tls_key_file = "/etc/spl/key.pem"`,
};

export const storeSection: ConfigSection<{ durability: "normal" | "full" }> = {
  name: "store",
  keys: ["durability"],
  parse(raw, file) {
    const d = raw?.durability ?? "normal";
    if (d !== "normal" && d !== "full") badValue(file, "store", "durability", '"normal" or "full"');
    return { durability: d as "normal" | "full" };
  },
  template: (v) => `[store]
# "normal" survives a crash of the daemon; "full" also survives power loss (slower writes).
durability = ${JSON.stringify(v.durability)}`,
};

export const backupSection: ConfigSection<{ keep: number }> = {
  name: "backup",
  keys: ["keep"],
  parse(raw, file) {
    if (raw?.keep === undefined) return { keep: 5 };
    const k = Number(raw.keep);
    if (!Number.isInteger(k) || k < 0 || k > 1000) badValue(file, "backup", "keep", "an integer from 0 to 1000");
    return { keep: k };
  },
  template: (v) => `[backup]
# Startup backups kept besides hub.db.bak (hub.db.bak.1 .. hub.db.bak.N).
keep = ${v.keep}`,
};

function booleans<K extends string>(name: string, defaults: Record<K, boolean>): (raw: Record<string, unknown> | undefined, file: string) => Record<K, boolean> {
  return (raw, file) => {
    const c = { ...defaults };
    for (const key of Object.keys(defaults) as K[]) {
      const v = raw?.[key];
      if (v === undefined) continue;
      if (typeof v !== "boolean") badValue(file, name, key, "true or false");
      c[key] = v as boolean;
    }
    return c;
  };
}

export const metricsSection: ConfigSection<{ enabled: boolean; public: boolean }> = {
  name: "metrics",
  keys: ["enabled", "public"],
  parse: booleans("metrics", { enabled: true, public: false }),
  template: () => `# Prometheus metrics at GET /metrics: a token, like /v1/*, unless made public.
# [metrics]
# enabled = true
# public = false`,
};

export const logSection: ConfigSection<{ file: boolean; records_to_stderr: boolean }> = {
  name: "log",
  keys: ["file", "records_to_stderr"],
  parse: booleans("log", { file: true, records_to_stderr: false }),
  template: () => `# Log lines go to logs/spl.log, and to stderr when spl serve runs in the foreground;
# file = false keeps them on stderr only (containers). The line per ingested record stays in
# the file unless records_to_stderr = true (journald would rate-limit thousands a second).
# [log]
# file = true
# records_to_stderr = false`,
};

/** The daemon's own sections, in the order config.toml lists them. */
export const CORE_SECTIONS = [identitySection, serverSection, storeSection, backupSection, metricsSection, logSection] as const;

export interface SplConfig {
  identity: { actor: string };
  server: ServerConfig;
  store: { durability: "normal" | "full" };
  backup: { keep: number };
  metrics: { enabled: boolean; public: boolean };
  log: { file: boolean; records_to_stderr: boolean };
  /** The file these values came from (named in errors). */
  readonly file: string;
  /** Every table as parsed TOML, for the capabilities' sections (sectionOf). */
  readonly raw: Record<string, unknown>;
}

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

/** The raw table of a (possibly dotted) section name, e.g. "backup.offsite". */
function rawTable(raw: Record<string, unknown>, name: string, file: string): Record<string, unknown> | undefined {
  let at: unknown = raw;
  const parts = name.split(".");
  for (let i = 0; i < parts.length; i++) {
    if (at === undefined) return undefined;
    at = table(at, file, parts.slice(0, i).join(".") || name)?.[parts[i]!];
  }
  return table(at, file, name);
}

const parsed = new WeakMap<SplConfig, Map<ConfigSection<unknown>, unknown>>();

/** A section's value in `config` (parsed once per config, so a bad value throws at the first read). */
export function sectionOf<T>(config: SplConfig, section: ConfigSection<T>): T {
  let cache = parsed.get(config);
  if (!cache) parsed.set(config, (cache = new Map()));
  if (cache.has(section)) return cache.get(section) as T;
  const value = section.parse(rawTable(config.raw, section.name, config.file), config.file);
  cache.set(section, value);
  return value;
}

function fromRaw(raw: Record<string, unknown>, file: string): SplConfig {
  const c = { file, raw } as SplConfig;
  c.identity = sectionOf(c, identitySection);
  c.server = sectionOf(c, serverSection);
  c.store = sectionOf(c, storeSection);
  c.backup = sectionOf(c, backupSection);
  c.metrics = sectionOf(c, metricsSection);
  c.log = sectionOf(c, logSection);
  return c;
}

export function defaultConfig(file = "config.toml"): SplConfig {
  return fromRaw({}, file);
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

/**
 * Reads config.toml, filling defaults for anything missing; a broken file is a UserError. The
 * daemon's sections are parsed here; a capability's when it is first read (sectionOf) — the
 * daemon reads every one at start, so a bad value stops it there.
 */
export function loadConfig(path: string): SplConfig {
  return fromRaw(existsSync(path) ? readConfigToml(path) : {}, path);
}

/** The config.toml `spl init` writes: each section's template, in order. */
export function renderConfig(c: SplConfig, sections: readonly ConfigSection<any>[]): string {
  const parts = sections.filter((s) => s.template).map((s) => s.template!(sectionOf(c, s)));
  return `# spl instance configuration. Runtime engine config (rules, permissions) lives in records.\n\n${parts.join("\n\n")}\n`;
}

/** One sentence per unknown table or key of the file at `path` (none when it is absent). */
export function unknownConfigKeys(path: string, sections: readonly ConfigSection<any>[]): string[] {
  if (!existsSync(path)) return [];
  const raw = readConfigToml(path);
  const byName = new Map(sections.map((s) => [s.name, s]));
  const topLevel = [...new Set(sections.map((s) => s.name.split(".")[0]!))];
  const found: string[] = [];
  const walk = (value: Record<string, unknown>, name: string) => {
    const s = byName.get(name);
    const subTables = sections.filter((x) => x.name.startsWith(`${name}.`) && !x.name.slice(name.length + 1).includes(".")).map((x) => x.name.slice(name.length + 1));
    const known = [...(s?.keys ?? []), ...subTables];
    for (const [key, v] of Object.entries(value)) {
      if (subTables.includes(key) && v && typeof v === "object" && !Array.isArray(v)) walk(v as Record<string, unknown>, `${name}.${key}`);
      else if (!known.includes(key) && !s?.freeform?.includes(key)) found.push(`${path}: unknown key '${key}' in [${name}] is ignored — known keys there: ${known.join(", ")}`);
    }
  };
  for (const [name, value] of Object.entries(raw)) {
    const isTable = value !== null && typeof value === "object" && !Array.isArray(value);
    if (!topLevel.includes(name) || !isTable) {
      found.push(`${path}: unknown ${isTable ? `section [${name}]` : `key '${name}'`} is ignored — known sections: ${topLevel.join(", ")}`);
      continue;
    }
    walk(value as Record<string, unknown>, name);
  }
  return found;
}

/**
 * The text of a file a setting names (a PEM, a token, a password). One that cannot be read stops
 * what needs it with one line naming the setting, the file and why, and the fix.
 */
export function readSettingFile(setting: string, path: string, fix: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    throw new UserError(`${setting} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, fix);
  }
}

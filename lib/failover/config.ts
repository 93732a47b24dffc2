// [fleet.etcd] in config.toml (README "Automatic failover with etcd"): the etcd cluster the fleet
// elects its coordinator in, and where under it the fleet's keys live.
//   [fleet.etcd]
//   endpoints = ["https://etcd-1.example.com:2379", "https://etcd-2.example.com:2379", ...]
//   fleet_name = "prod"              # the keys live under /syncropel/<fleet_name> (default "default")
//   prefix = "/syncropel/prod"       # or name the prefix itself
//   ca_file, cert_file, key_file     # PEM files: the CA etcd's certificates come from, a client certificate
//   username, password_file          # etcd's own authentication (the password in a 0600 file)
//   lease_ttl_secs = 10              # how long a dead coordinator holds the key
// Without this table the fleet is as README "Fleet" describes (a coordinator by config).
import { type ConfigSection, readSettingFile } from "../config";
import { EtcdClient } from "../etcd/client";
import { UserError } from "../errors";

export interface EtcdConfig {
  endpoints: string[];
  /** Every key of the fleet starts with it (no trailing slash). */
  prefix: string;
  caFile: string | null;
  certFile: string | null;
  keyFile: string | null;
  username: string | null;
  passwordFile: string | null;
  leaseTtlSecs: number;
}

export const DEFAULT_LEASE_TTL_SECS = 10;
export const DEFAULT_FLEET_NAME = "default";
const KEYS = ["endpoints", "fleet_name", "prefix", "ca_file", "cert_file", "key_file", "username", "password_file", "lease_ttl_secs"];
const EXAMPLE = 'endpoints = ["http://10.0.0.1:2379", "http://10.0.0.2:2379", "http://10.0.0.3:2379"]';

export function parseEtcdConfig(raw: Record<string, unknown> | undefined, path: string): EtcdConfig | null {
  if (raw === undefined) return null;
  const bad = (key: string, want: string, fix = "edit the file and try again"): never => {
    throw new UserError(`${path}: [fleet.etcd] ${key} must be ${want}`, fix);
  };
  const e = raw.endpoints;
  if (!Array.isArray(e) || !e.length || !e.every((x) => typeof x === "string" && /^https?:\/\/[^/\s@]+\/?$/.test(x))) bad("endpoints", "a list of the etcd members' client URLs (http:// or https://, no path)", `e.g. ${EXAMPLE}`);
  const str = (key: string, fix: string): string | null => {
    const v = raw[key];
    if (v === undefined) return null;
    if (typeof v !== "string" || !v) bad(key, "a non-empty string", fix);
    return v as string;
  };
  const fleetName = str("fleet_name", 'e.g. fleet_name = "prod"') ?? DEFAULT_FLEET_NAME;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(fleetName)) bad("fleet_name", "1-64 letters, digits, '.', '_' or '-'", 'e.g. fleet_name = "prod"');
  const prefix = str("prefix", 'e.g. prefix = "/syncropel/prod"') ?? `/syncropel/${fleetName}`;
  if (!/^\/[\x21-\x7e]*[^/]$/.test(prefix)) bad("prefix", "a key prefix starting with '/', without spaces or a trailing '/'", 'e.g. prefix = "/syncropel/prod"');
  const c: EtcdConfig = {
    endpoints: (e as string[]).map((x) => x.replace(/\/+$/, "")),
    prefix,
    caFile: str("ca_file", 'e.g. ca_file = "/etc/spl/etcd-ca.pem"'),
    certFile: str("cert_file", 'e.g. cert_file = "/etc/spl/etcd-client.pem"'),
    keyFile: str("key_file", 'e.g. key_file = "/etc/spl/etcd-client.key"'),
    username: str("username", 'e.g. username = "spl"'),
    passwordFile: str("password_file", 'e.g. password_file = "/etc/spl/etcd-password" (mode 0600)'),
    leaseTtlSecs: DEFAULT_LEASE_TTL_SECS,
  };
  if ((c.certFile === null) !== (c.keyFile === null)) bad(c.certFile ? "key_file" : "cert_file", "set too: a client certificate needs both cert_file and key_file", "add the missing one, or remove both");
  if ((c.username === null) !== (c.passwordFile === null)) bad(c.username ? "password_file" : "username", "set too: etcd authentication needs both username and password_file", "add the missing one, or remove both");
  if (raw.lease_ttl_secs !== undefined) {
    const n = raw.lease_ttl_secs;
    if (typeof n !== "number" || !Number.isInteger(n) || n < 2 || n > 300) bad("lease_ttl_secs", "an integer from 2 to 300", `e.g. lease_ttl_secs = ${DEFAULT_LEASE_TTL_SECS}`);
    c.leaseTtlSecs = n as number;
  }
  return c;
}

/** A file a [fleet.etcd] key names; a UserError naming the key and the file when it cannot be read. */
const readKeyFile = (key: string, path: string | null, fix: string) => (path ? readSettingFile(`[fleet.etcd] ${key}`, path, fix) : undefined);

/** The password etcd authentication uses (the file's first line). */
const readEtcdPassword = (c: EtcdConfig): string | undefined =>
  readKeyFile("password_file", c.passwordFile, "point it at a file holding etcd's password for [fleet.etcd] username (mode 0600)")?.split("\n")[0]!.trim();

export const etcdSection: ConfigSection<EtcdConfig | null> = {
  name: "fleet.etcd",
  keys: KEYS,
  parse: (raw, file) => parseEtcdConfig(raw, file),
  show: (c) => c && { endpoints: c.endpoints, prefix: c.prefix, ca_file: c.caFile, cert_file: c.certFile, key_file: c.keyFile, username: c.username, password_file: c.passwordFile, lease_ttl_secs: c.leaseTtlSecs },
};

/** The etcd client a member (or the doctor) uses: per-call timeouts a sixth of the lease, so a renewal and two more tries fit in half of it. */
export function etcdClient(c: EtcdConfig): EtcdClient {
  return new EtcdClient({
    endpoints: c.endpoints,
    tls: {
      ca: readKeyFile("ca_file", c.caFile, "point it at the PEM of the CA that signed etcd's certificate"),
      cert: readKeyFile("cert_file", c.certFile, "point it at this member's client certificate (PEM) for etcd"),
      key: readKeyFile("key_file", c.keyFile, "point it at the key of [fleet.etcd] cert_file (PEM, mode 0600)"),
    },
    username: c.username ?? undefined,
    password: readEtcdPassword(c),
    timeoutMs: Math.min(3000, Math.max(500, (c.leaseTtlSecs * 1000) / 6)),
  });
}

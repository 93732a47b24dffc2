// [backup.offsite] in config.toml: where off-host copies go, how often, how long they are kept.
//   [backup.offsite]
//   url = "s3://bucket/prefix"     # or "file:///mnt/backups/spl" (an NFS or SFTP mount)
//   endpoint = "https://s3.example.com"   # S3-compatible endpoints; region = "us-east-1"
//   continuous = true              # ship committed records as segments (the default with a url)
//   sync_interval = "1s"           # a segment at most this long after a commit
//   snapshot_every = "24h"         # full snapshots ("every" is its older name)
//   keep_days = 14
// Credentials never live here: the AWS chain (environment, AWS_PROFILE, web identity, container
// and instance roles) or <home>/secrets/s3.toml (README "Off-host backups in five minutes").
import type { ConfigSection } from "../../config";
import { UserError } from "../../errors";

export interface OffsiteConfig {
  url: string;
  endpoint?: string;
  region?: string;
  /** Seconds between snapshot pushes (`snapshot_every`, or its older name `every`). */
  everySecs: number;
  keepDays: number;
  /** Ship committed records as segments between snapshots (README "Continuous replication"). */
  continuous: boolean;
  /** Seconds between two segments while records keep coming. */
  syncIntervalSecs: number;
}

const KEYS = ["url", "endpoint", "region", "every", "snapshot_every", "keep_days", "continuous", "sync_interval"];
export const DEFAULT_EVERY_SECS = 24 * 3600;
export const DEFAULT_KEEP_DAYS = 14;
export const DEFAULT_SYNC_INTERVAL_SECS = 1;

/** The line an operator adds to turn off-host backups on (doctor and errors print it). */
export const OFFSITE_EXAMPLE = `[backup.offsite] url = "file:///mnt/offsite/spl" (or "s3://bucket/prefix"), keep_days = 14`;

const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** "250ms", "90s", "30m", "24h", "7d" (or a number of seconds) → seconds; null when malformed. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === "number") return v > 0 ? v : null;
  if (typeof v !== "string") return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|[smhd])\s*$/.exec(v);
  if (!m) return null;
  const secs = Number(m[1]) * UNITS[m[2]!]!;
  return secs > 0 ? secs : null;
}

export function parseOffsiteConfig(raw: unknown, path: string): OffsiteConfig | null {
  if (raw === undefined) return null;
  const bad = (key: string, want: string, fix = "edit the file and try again"): never => {
    throw new UserError(`${path}: [backup.offsite] ${key} must be ${want}`, fix);
  };
  if (!raw || typeof raw !== "object" || Array.isArray(raw)) bad("", "a table");
  const o = raw as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!KEYS.includes(key)) bad(key, `one of ${KEYS.join(", ")} (unknown key)`, "remove it or fix its spelling");
  if (typeof o.url !== "string" || !/^(s3:\/\/[^/]+|file:\/\/\/)/.test(o.url)) {
    bad("url", 'an s3:// or file:/// URL', 'e.g. url = "s3://my-bucket/spl" or url = "file:///mnt/offsite/spl"');
  }
  if (/^s3:\/\/[^/]*@/.test(o.url as string)) bad("url", "free of credentials", "put them in the AWS environment or profile, or <home>/secrets/s3.toml");
  const c: OffsiteConfig = {
    url: (o.url as string).replace(/\/+$/, ""),
    everySecs: DEFAULT_EVERY_SECS,
    keepDays: DEFAULT_KEEP_DAYS,
    continuous: true,
    syncIntervalSecs: DEFAULT_SYNC_INTERVAL_SECS,
  };
  if (c.url === "file://") c.url = "file:///";
  if (o.endpoint !== undefined) {
    if (typeof o.endpoint !== "string" || !/^https?:\/\/[^@\s]+$/.test(o.endpoint)) bad("endpoint", "an http(s) URL without credentials", 'e.g. endpoint = "https://s3.eu-central-1.amazonaws.com"');
    c.endpoint = (o.endpoint as string).replace(/\/+$/, "");
  }
  if (o.region !== undefined) {
    if (typeof o.region !== "string" || !o.region) bad("region", "a region name", 'e.g. region = "us-east-1"');
    c.region = o.region as string;
  }
  if (o.every !== undefined && o.snapshot_every !== undefined && parseDuration(o.every) !== parseDuration(o.snapshot_every)) {
    bad("every", `left out when snapshot_every is set (every is snapshot_every's older name)`, "keep only snapshot_every");
  }
  for (const key of ["snapshot_every", "every"] as const) {
    if (o[key] === undefined) continue;
    const s = parseDuration(o[key]);
    if (s === null) bad(key, 'a duration such as "24h", "30m" or "7d"', `e.g. ${key} = "24h"`);
    c.everySecs = s!;
  }
  if (o.keep_days !== undefined) {
    if (typeof o.keep_days !== "number" || !(o.keep_days >= 0)) bad("keep_days", "a number of days >= 0", "e.g. keep_days = 14");
    c.keepDays = o.keep_days as number;
  }
  if (o.continuous !== undefined) {
    if (typeof o.continuous !== "boolean") bad("continuous", "true or false", "e.g. continuous = true");
    c.continuous = o.continuous as boolean;
  }
  if (o.sync_interval !== undefined) {
    const s = parseDuration(o.sync_interval);
    if (s === null || s < 0.01 || s > 3600) bad("sync_interval", 'a duration from "10ms" to "1h"', 'e.g. sync_interval = "1s"');
    c.syncIntervalSecs = s!;
  }
  return c;
}

/** The duration as the config writes it ("1s", "250ms", "24h"). */
export function showDuration(secs: number): string {
  if (secs < 1) return `${Math.round(secs * 1000)}ms`;
  for (const [unit, n] of [["d", 86400], ["h", 3600], ["m", 60]] as const) if (secs % n === 0) return `${secs / n}${unit}`;
  return `${secs}s`;
}

export const offsiteSection: ConfigSection<OffsiteConfig | null> = {
  name: "backup.offsite",
  keys: KEYS,
  parse: (raw, file) => parseOffsiteConfig(raw, file),
  show: (c) =>
    c && {
      url: c.url,
      endpoint: c.endpoint ?? null,
      region: c.region ?? null,
      continuous: c.continuous,
      sync_interval: showDuration(c.syncIntervalSecs),
      snapshot_every: showDuration(c.everySecs),
      keep_days: c.keepDays,
    },
  template: () => `# Off-host copies: committed records shipped continuously plus daily snapshots (README
# "Off-host backups in five minutes"). Credentials for s3:// come from the AWS chain (environment,
# AWS_PROFILE, roles) or <home>/secrets/s3.toml, never from this file.
# [backup.offsite]
# url = "s3://my-bucket/spl"        # or "file:///mnt/offsite/spl"
# endpoint = "https://s3.example.com"
# region = "us-east-1"
# continuous = true                 # false: snapshots only
# sync_interval = "1s"
# snapshot_every = "24h"
# keep_days = 14`,
};

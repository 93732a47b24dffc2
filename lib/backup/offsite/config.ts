// [backup.offsite] in config.toml: where off-host copies go, how often, how long they are kept.
//   [backup.offsite]
//   url = "s3://bucket/prefix"     # or "file:///mnt/backups/spl" (an NFS or SFTP mount)
//   endpoint = "https://s3.example.com"   # S3-compatible endpoints; region = "us-east-1"
//   every = "24h"
//   keep_days = 14
// Credentials never live here: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or <home>/secrets/s3.toml.
import type { ConfigSection } from "../../config";
import { UserError } from "../../errors";

export interface OffsiteConfig {
  url: string;
  endpoint?: string;
  region?: string;
  everySecs: number;
  keepDays: number;
}

const KEYS = ["url", "endpoint", "region", "every", "keep_days"];
export const DEFAULT_EVERY_SECS = 24 * 3600;
export const DEFAULT_KEEP_DAYS = 14;

/** The line an operator adds to turn off-host backups on (doctor and errors print it). */
export const OFFSITE_EXAMPLE = `[backup.offsite] url = "file:///mnt/offsite/spl" (or "s3://bucket/prefix"), every = "24h", keep_days = 14`;

const UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 };

/** "90s", "30m", "24h", "7d" (or a number of seconds) → seconds; null when malformed. */
export function parseDuration(v: unknown): number | null {
  if (typeof v === "number") return v > 0 ? v : null;
  if (typeof v !== "string") return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$/.exec(v);
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
  if (/^s3:\/\/[^/]*@/.test(o.url as string)) bad("url", "free of credentials", "put them in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or <home>/secrets/s3.toml");
  const c: OffsiteConfig = { url: (o.url as string).replace(/\/+$/, ""), everySecs: DEFAULT_EVERY_SECS, keepDays: DEFAULT_KEEP_DAYS };
  if (c.url === "file://") c.url = "file:///";
  if (o.endpoint !== undefined) {
    if (typeof o.endpoint !== "string" || !/^https?:\/\/[^@\s]+$/.test(o.endpoint)) bad("endpoint", "an http(s) URL without credentials", 'e.g. endpoint = "https://s3.eu-central-1.amazonaws.com"');
    c.endpoint = o.endpoint as string;
  }
  if (o.region !== undefined) {
    if (typeof o.region !== "string" || !o.region) bad("region", "a region name", 'e.g. region = "us-east-1"');
    c.region = o.region as string;
  }
  if (o.every !== undefined) {
    const s = parseDuration(o.every);
    if (s === null) bad("every", 'a duration such as "24h", "30m" or "7d"', 'e.g. every = "24h"');
    c.everySecs = s!;
  }
  if (o.keep_days !== undefined) {
    if (typeof o.keep_days !== "number" || !(o.keep_days >= 0)) bad("keep_days", "a number of days >= 0", "e.g. keep_days = 14");
    c.keepDays = o.keep_days as number;
  }
  return c;
}

export const offsiteSection: ConfigSection<OffsiteConfig | null> = {
  name: "backup.offsite",
  keys: KEYS,
  parse: (raw, file) => parseOffsiteConfig(raw, file),
  show: (c) => c && { url: c.url, endpoint: c.endpoint ?? null, region: c.region ?? null, every: `${c.everySecs}s`, keep_days: c.keepDays },
  template: () => `# Off-host copies, pushed on a schedule (README "Backups"). Credentials for s3:// come from
# AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or <home>/secrets/s3.toml, never from this file.
# [backup.offsite]
# url = "s3://my-bucket/spl"        # or "file:///mnt/offsite/spl"
# endpoint = "https://s3.example.com"
# region = "us-east-1"
# every = "24h"
# keep_days = 14`,
};

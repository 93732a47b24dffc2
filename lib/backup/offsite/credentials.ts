// S3 credentials, first found wins:
//   1. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (+ AWS_SESSION_TOKEN) in the environment;
//   2. <home>/secrets/s3.toml (access_key_id, secret_access_key, optional session_token);
//   3. the rest of the standard AWS chain through the AWS SDK's own provider (aws-chain.ts,
//      loaded only when an s3:// remote needs it): SSO, web identity (AWS_WEB_IDENTITY_TOKEN_FILE +
//      AWS_ROLE_ARN), AWS_PROFILE with ~/.aws/credentials and ~/.aws/config (and
//      credential_process), container credentials (ECS, EKS pod identity), EC2 instance metadata.
// Temporary credentials are refreshed before they expire. Values never leave this module except
// into the S3 client: errors and status name only where they came from (`source`).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors";
import type { HomePaths } from "../../paths";

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** When temporary credentials stop working (null: they do not expire). */
  expiresAt: number | null;
  /** Where they came from, for error messages (never the values). */
  source: string;
}

export const credentialFix = (secretsDir: string) =>
  `set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write them to ${secretsDir}/s3.toml as access_key_id = "..." and secret_access_key = "..." (mode 0600), ` +
  "or use AWS_PROFILE, a web identity token, or a container or instance role";

/** Refresh temporary credentials this long before they expire. */
const REFRESH_BEFORE_MS = 5 * 60_000;

function fromEnv(): S3Credentials | null {
  const id = process.env.AWS_ACCESS_KEY_ID;
  const secret = process.env.AWS_SECRET_ACCESS_KEY;
  if (!id || !secret) return null;
  return { accessKeyId: id, secretAccessKey: secret, sessionToken: process.env.AWS_SESSION_TOKEN || undefined, expiresAt: null, source: "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY" };
}

function fromSecretsFile(paths: HomePaths): S3Credentials | null {
  const file = join(paths.secretsDir, "s3.toml");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return null;
  }
  let raw: Record<string, unknown>;
  try {
    raw = Bun.TOML.parse(text) as Record<string, unknown>;
  } catch {
    throw new UserError(`${file} is not valid TOML`, credentialFix(paths.secretsDir));
  }
  if (typeof raw.access_key_id !== "string" || typeof raw.secret_access_key !== "string") {
    throw new UserError(`${file} lacks access_key_id or secret_access_key`, credentialFix(paths.secretsDir));
  }
  const token = typeof raw.session_token === "string" ? raw.session_token : undefined;
  return { accessKeyId: raw.access_key_id, secretAccessKey: raw.secret_access_key, sessionToken: token, expiresAt: null, source: file };
}

/** The rest of the AWS chain (aws-chain.ts in the CLI and the daemon; the replication thread asks the daemon). */
export type ChainLookup = () => Promise<S3Credentials | null>;

/** Resolves credentials (see the order above); a UserError naming every option when none exist. */
export async function resolveS3Credentials(paths: HomePaths, chain: ChainLookup): Promise<S3Credentials> {
  const found = fromEnv() ?? fromSecretsFile(paths) ?? (await chain());
  if (!found) throw new UserError("no S3 credentials for off-host backups", credentialFix(paths.secretsDir));
  return found;
}

/** Credentials that are renewed shortly before they expire (long-running replication). */
export class CredentialCache {
  private current: S3Credentials | null = null;
  constructor(
    private readonly paths: HomePaths,
    private readonly chain: ChainLookup,
  ) {}

  async get(): Promise<S3Credentials> {
    const c = this.current;
    if (c && (c.expiresAt === null || c.expiresAt - Date.now() > REFRESH_BEFORE_MS)) return c;
    this.current = await resolveS3Credentials(this.paths, this.chain);
    return this.current;
  }

  /** After S3 refused them: look again next time (a rotated key, a new role session). */
  forget(): void {
    this.current = null;
  }
}

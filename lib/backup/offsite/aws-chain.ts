// The standard AWS credential chain beyond the environment and <home>/secrets/s3.toml
// (credentials.ts): the AWS SDK's own provider, imported only when an s3:// remote has no other
// credentials. `remoteFor` is the one way the CLI and the daemon open a remote; the replication
// thread opens its own with a lookup that asks the daemon (so the SDK is bundled once).
import type { HomePaths } from "../../paths";
import type { ChainLookup, S3Credentials } from "./credentials";
import { openRemote, type Remote, type S3Options } from "./remote";

type Provider = () => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string; expiration?: Date }>;
let provider: Provider | null = null;

/** SSO, web identity, AWS_PROFILE (~/.aws files, credential_process), container, instance role. */
export const awsChain: ChainLookup = async (): Promise<S3Credentials | null> => {
  if (!provider) {
    const { defaultProvider } = await import("@aws-sdk/credential-provider-node");
    provider = defaultProvider({ timeout: 1000, maxRetries: 1 }) as Provider; // memoized; refreshes before expiry
  }
  try {
    const c = await provider();
    return { accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, sessionToken: c.sessionToken, expiresAt: c.expiration ? c.expiration.getTime() : null, source: chainSource() };
  } catch {
    provider = null; // nothing found (or a failed refresh): ask again next time
    return null;
  }
};

/** A name for what the chain most likely used (the SDK does not say), for error messages. */
function chainSource(): string {
  const e = process.env;
  if (e.AWS_WEB_IDENTITY_TOKEN_FILE) return "web identity token (AWS_WEB_IDENTITY_TOKEN_FILE)";
  if (e.AWS_PROFILE) return `AWS_PROFILE=${e.AWS_PROFILE} (~/.aws/credentials, ~/.aws/config)`;
  if (e.AWS_CONTAINER_CREDENTIALS_FULL_URI || e.AWS_CONTAINER_CREDENTIALS_RELATIVE_URI) return "container credentials";
  return "the AWS credential chain (~/.aws files, SSO, instance role)";
}

/** The remote that `url` (s3://bucket/prefix or file:///dir) names, with the full credential chain. */
export function remoteFor(url: string, paths: HomePaths, opts: S3Options = {}): Remote {
  return openRemote(url, paths, opts, awsChain);
}

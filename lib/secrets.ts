// Provider API keys in <home>/secrets/<provider>.key (dir 0700, files 0600). They live only
// here: never in the record log (so never in a backup of hub.db), never in a log line.
import { writePrivateFile } from "./private-file";
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, sep } from "node:path";
import { UsageError } from "./errors";

const PROVIDER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const SUFFIX = ".key";

/** The key file for a provider, refusing names that could leave the secrets directory. */
export function keyPath(secretsDir: string, provider: string): string {
  if (!PROVIDER.test(provider) || provider.includes("..")) {
    throw new UsageError(
      `provider name '${provider}' is not allowed: use letters, digits, '.', '_' or '-' (no paths)`,
      "e.g. spl config set-key anthropic <key>",
    );
  }
  const dir = resolve(secretsDir);
  const file = resolve(dir, `${provider}${SUFFIX}`);
  const rel = relative(dir, file);
  if (rel.startsWith("..") || rel.includes(sep)) throw new UsageError(`provider name '${provider}' escapes ${dir}`, "use a plain name such as 'openai'");
  return file;
}

export function ensureSecretsDir(secretsDir: string): void {
  if (!existsSync(secretsDir)) mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  chmodSync(secretsDir, 0o700);
}

export function writeKey(secretsDir: string, provider: string, key: string): string {
  const value = key.trim();
  if (!value) throw new UsageError("the key is empty", "pass it as an argument, or '-' to read it from stdin");
  if (/[\r\n]/.test(value)) throw new UsageError("the key contains a line break", "pass the key on a single line");
  const file = keyPath(secretsDir, provider);
  ensureSecretsDir(secretsDir);
  writePrivateFile(file, `${value}\n`);
  return file;
}

/** Shows enough to recognise a key, never enough to use it. */
export function maskKey(key: string): string {
  if (key.length < 12) return "*".repeat(Math.max(4, key.length));
  return `${key.slice(0, 4)}${"*".repeat(8)}${key.slice(-4)}`;
}

export interface KeyInfo {
  provider: string;
  path: string;
  masked: string;
  mode: string;
}

export function listKeys(secretsDir: string): KeyInfo[] {
  if (!existsSync(secretsDir)) return [];
  return readdirSync(secretsDir)
    .filter((f) => f.endsWith(SUFFIX) && PROVIDER.test(f.slice(0, -SUFFIX.length)))
    .sort()
    .map((f) => {
      const path = join(secretsDir, f);
      let masked = "(unreadable)";
      try {
        masked = maskKey(readFileSync(path, "utf8").trim());
      } catch {}
      return { provider: f.slice(0, -SUFFIX.length), path, masked, mode: (statSync(path).mode & 0o777).toString(8).padStart(4, "0") };
    });
}

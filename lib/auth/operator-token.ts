// The tokens an instance mints for itself: the operator's admin token in <home>/token (spl init,
// and the first daemon start on a fresh volume), and SPL_BOOTSTRAP_TOKEN (or the file named by
// SPL_BOOTSTRAP_TOKEN_FILE, as Docker/Kubernetes secrets are mounted) at boot. Both are
// idempotent: a token already in the registry is never minted twice.
import { writePrivateFile } from "../private-file";
import { existsSync, readFileSync } from "node:fs";
import { readSettingFile } from "../config";
import { UserError } from "../errors";
import { ENGINE_ACTOR } from "../instance";
import { prepareRecord } from "../records/envelope";
import type { RecordStore } from "../store/records";
import { AUTH_THREAD, hashSecret, mintToken, parseBearer, tokenRecordBody, TokenRegistry } from "./tokens";

export type TokenBody = ReturnType<typeof tokenRecordBody>;
/** Writes one token record on th_auth (the caller picks how: straight into the store, or via ingest). */
export type WriteTokenRecord = (body: TokenBody) => Promise<void> | void;

export function readTokenFile(path: string): string | null {
  if (!existsSync(path)) return null;
  try {
    return readFileSync(path, "utf8").trim() || null;
  } catch {
    return null;
  }
}

/** Writes the token file with mode 0600, atomically (never a half-written token). */
export function writeTokenFile(path: string, token: string): void {
  writePrivateFile(path, `${token}\n`);
}

export type OperatorTokenOutcome = "kept" | "minted";

/**
 * Makes sure <home>/token holds a token this store knows. A missing file, or one naming a token
 * the store has never seen (e.g. a fresh store beside an old file), gets a new admin token.
 * A token the operator revoked is left alone: revocation is a decision, not damage.
 */
export async function ensureOperatorToken(tokenPath: string, registry: TokenRegistry, actor: string, write: WriteTokenRecord): Promise<OperatorTokenOutcome> {
  const current = readTokenFile(tokenPath);
  const parsed = current ? parseBearer(current) : null;
  if (parsed && registry.has(parsed.id)) return "kept";
  const t = mintToken("local");
  await write(tokenRecordBody({ id: t.id, env: t.env, secretSha256: t.secretSha256, actor, scopes: ["admin"], name: "operator (<home>/token)" }));
  writeTokenFile(tokenPath, t.token);
  return "minted";
}

/** The bootstrap token from SPL_BOOTSTRAP_TOKEN or SPL_BOOTSTRAP_TOKEN_FILE (one of them), with the name it came from. */
export function bootstrapTokenFromEnv(env = process.env): { value: string; source: string } | null {
  const direct = env.SPL_BOOTSTRAP_TOKEN;
  const file = env.SPL_BOOTSTRAP_TOKEN_FILE;
  if (direct && file) {
    throw new UserError("both SPL_BOOTSTRAP_TOKEN and SPL_BOOTSTRAP_TOKEN_FILE are set", "unset one of them (the _FILE form keeps the token out of the environment)");
  }
  if (direct) return { value: direct, source: "SPL_BOOTSTRAP_TOKEN" };
  if (!file) return null;
  const text = readSettingFile("SPL_BOOTSTRAP_TOKEN_FILE", file, "point it at a readable file holding the token, e.g. a Docker secret at /run/secrets/<name>");
  return { value: text.trim(), source: `SPL_BOOTSTRAP_TOKEN_FILE ${file}` }; // secrets files often end in a newline
}

/** The bootstrap token: registers the given bearer (once) as an admin token for `actor`. */
export async function ensureBootstrapToken(value: string, registry: TokenRegistry, actor: string, write: WriteTokenRecord, source = "SPL_BOOTSTRAP_TOKEN"): Promise<OperatorTokenOutcome> {
  const parsed = parseBearer(value);
  if (!parsed) {
    throw new UserError(
      `${source} is not usable: the token must be 16-256 printable ASCII characters without spaces (or an spl_<env>_<id>_<secret> token)`,
      "set it to a long random string, e.g. SPL_BOOTSTRAP_TOKEN=$(openssl rand -hex 32)",
    );
  }
  if (registry.has(parsed.id)) return "kept";
  await write(
    tokenRecordBody({ id: parsed.id, env: parsed.env, secretSha256: hashSecret(parsed.secret), actor, scopes: ["admin"], name: "bootstrap (SPL_BOOTSTRAP_TOKEN)" }),
  );
  return "minted";
}

/** `spl init`: the same, straight into a store the CLI opened itself (th_auth is folded here). */
export async function ensureOperatorTokenInStore(store: RecordStore, tokenPath: string, actor: string): Promise<OperatorTokenOutcome> {
  const registry = new TokenRegistry();
  for (let after = 0; ; ) {
    const page = store.list({ thread: AUTH_THREAD, after, limit: 1000 });
    for (const rec of page.data) registry.apply(rec);
    if (!page.has_more) break;
    after = Number(page.next_cursor);
  }
  return ensureOperatorToken(tokenPath, registry, actor, (body) => {
    const p = prepareRecord({ thread: AUTH_THREAD, actor: ENGINE_ACTOR, act: "LEARN", body });
    store.transaction(() => store.insert(p, Math.floor(Date.now() / 1000)));
  });
}

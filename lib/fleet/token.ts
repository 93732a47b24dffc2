// The fleet token (README "Fleet"): one bearer shared by the members of a fleet, `spl_fleet_<id>_<secret>`,
// kept in <home>/secrets/fleet_token (0600) and registered on every member's th_auth (its hash
// only). It carries records:read, records:write and fleet:control, which alone may write the
// registry and control threads, and may relay records written by other actors. Never admin.
import { join } from "node:path";
import { readTokenFile, writeTokenFile, type WriteTokenRecord } from "../auth/operator-token";
import { hashSecret, mintToken, parseBearer, type Scope, tokenRecordBody, type TokenRegistry } from "../auth/tokens";

export const FLEET_ACTOR = "did:sync:system:fleet";
export const FLEET_SCOPES: readonly Scope[] = ["records:read", "records:write", "fleet:control"];

export const fleetTokenPath = (home: string) => join(home, "secrets", "fleet_token");

export function readFleetToken(home: string): string | null {
  return readTokenFile(fleetTokenPath(home));
}

export function mintFleetTokenFile(home: string): string {
  const t = mintToken("fleet");
  writeTokenFile(fleetTokenPath(home), t.token);
  return t.token;
}

/**
 * At start: a coordinator without a fleet token mints one; a member with one registers it (once).
 * Returns what happened, for the log (never the token).
 */
export async function ensureFleetToken(o: { home: string; role: string; registry: TokenRegistry; write: WriteTokenRecord }): Promise<"none" | "kept" | "registered" | "minted"> {
  let token = readFleetToken(o.home);
  let minted = false;
  if (!token) {
    if (o.role !== "coordinator") return "none";
    token = mintFleetTokenFile(o.home);
    minted = true;
  }
  const parsed = parseBearer(token);
  if (!parsed) return "none";
  if (o.registry.has(parsed.id)) return "kept";
  await o.write(
    tokenRecordBody({ id: parsed.id, env: parsed.env, secretSha256: hashSecret(parsed.secret), actor: FLEET_ACTOR, scopes: FLEET_SCOPES, name: "fleet (<home>/secrets/fleet_token)" }),
  );
  return minted ? "minted" : "registered";
}

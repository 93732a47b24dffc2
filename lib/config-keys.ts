// The sections and keys config.toml may hold. Anything else is named in a WARN at start
// (a typo, or a section from a newer spl) rather than silently ignored.
import { existsSync } from "node:fs";
import { readConfigToml } from "./config";
import { FLEET_KEYS } from "./fleet/config";

/** Keys per section; "any" for sections whose own module checks their keys. */
const KNOWN: Record<string, readonly string[] | "any"> = {
  identity: ["actor"],
  server: ["host", "port", "allowed_hosts", "max_body_memory"],
  store: ["durability"],
  backup: ["keep", "offsite"],
  dispatch: ["concurrency", "targets"],
  tasks: ["alias_prefix"],
  fleet: FLEET_KEYS,
  metrics: ["enabled", "public"],
  log: ["file"],
};

/** One sentence per unknown section or key of the file at `path` (none when it is absent). */
export function unknownConfigKeys(path: string): string[] {
  if (!existsSync(path)) return [];
  const raw = readConfigToml(path);
  const found: string[] = [];
  for (const [section, value] of Object.entries(raw)) {
    const keys = KNOWN[section];
    const isTable = value !== null && typeof value === "object" && !Array.isArray(value);
    if (!keys || !isTable) {
      found.push(`${path}: unknown ${isTable ? `section [${section}]` : `key '${section}'`} is ignored — known sections: ${Object.keys(KNOWN).join(", ")}`);
      continue;
    }
    if (keys === "any") continue;
    for (const key of Object.keys(value)) {
      if (!keys.includes(key)) found.push(`${path}: unknown key '${key}' in [${section}] is ignored — known keys there: ${keys.join(", ")}`);
    }
  }
  return found;
}

// Editing [fleet] in a home's config.toml (spl fleet start, spl fleet join): the keys given are
// set or removed, every other line of the file stays as the operator wrote it.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { readConfigToml } from "../config";

/**
 * Sets keys of [fleet] in a home's config.toml, keeping the rest of the file as it is.
 * Returns whether the file changed.
 */
export function setFleetKeys(configPath: string, keys: Record<string, string | number | null>): boolean {
  const text = existsSync(configPath) ? readFileSync(configPath, "utf8") : "";
  const current: Record<string, unknown> = existsSync(configPath) ? (readConfigToml(configPath).fleet ?? {}) : {};
  const merged: Record<string, unknown> = { ...current };
  for (const [k, v] of Object.entries(keys)) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  const hadSection = /^\s*\[fleet\]\s*(#.*)?$/m.test(text);
  if (hadSection && JSON.stringify(merged) === JSON.stringify(current)) return false;
  // Drop the old [fleet] table (up to the next table header), then append the new one.
  const lines = text.split("\n");
  const kept: string[] = [];
  let inFleet = false;
  for (const line of lines) {
    if (/^\s*\[/.test(line)) inFleet = /^\s*\[fleet\]\s*(#.*)?$/.test(line);
    if (!inFleet) kept.push(line);
  }
  const body = Object.entries(merged).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  const out = `${kept.join("\n").replace(/\n*$/, "\n")}\n[fleet]\n${body.join("\n")}${body.length ? "\n" : ""}`;
  writeFileSync(configPath, out, { mode: 0o600 });
  return true;
}

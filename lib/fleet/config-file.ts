// Editing a table of a home's config.toml (spl fleet start, join, coordinate): the keys given are
// set or removed, every other line of the file stays as the operator wrote it.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { readConfigToml } from "../config";

/** Sets keys of [fleet] in a home's config.toml, keeping the rest of the file as it is; whether it changed. */
export const setFleetKeys = (configPath: string, keys: Record<string, TomlValue>) => setTableKeys(configPath, "fleet", keys);

/** A value a key is set to (null removes the key). */
export type TomlValue = string | number | readonly string[] | null;

/** Sets keys of one top-level table, keeping the rest of the file as it is; whether the file changed. */
export function setTableKeys(configPath: string, table: string, keys: Record<string, TomlValue>): boolean {
  const text = existsSync(configPath) ? readFileSync(configPath, "utf8") : "";
  const current: Record<string, unknown> = existsSync(configPath) ? ((readConfigToml(configPath)[table] as Record<string, unknown>) ?? {}) : {};
  const merged: Record<string, unknown> = { ...current };
  for (const [k, v] of Object.entries(keys)) {
    if (v === null) delete merged[k];
    else merged[k] = v;
  }
  const header = new RegExp(`^\\s*\\[${table}\\]\\s*(#.*)?$`);
  const hadSection = new RegExp(header.source, "m").test(text);
  if (hadSection && JSON.stringify(merged) === JSON.stringify(current)) return false;
  // Drop the old table (up to the next table header), then append the new one.
  const lines = text.split("\n");
  const kept: string[] = [];
  let inTable = false;
  for (const line of lines) {
    if (/^\s*\[/.test(line)) inTable = header.test(line);
    if (!inTable) kept.push(line);
  }
  const body = Object.entries(merged).map(([k, v]) => `${k} = ${JSON.stringify(v)}`);
  const out = `${kept.join("\n").replace(/\n*$/, "\n")}\n[${table}]\n${body.join("\n")}${body.length ? "\n" : ""}`;
  writeFileSync(configPath, out, { mode: 0o600 });
  return true;
}

// `spl status|doctor --port N` (runbook: "run spl doctor + spl status locally against that
// instance's port"; README "Fleet"): act as the home whose daemon serves port N — named by its store
// lock while it runs, else by its config.toml — so its socket, store and token are used. With no
// such home, talk HTTP to 127.0.0.1:N with the CLI's own token.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { loadConfig } from "../config";
import { UsageError } from "../errors";
import { homePaths, splHome, userHome } from "../paths";
import { readLockHolder } from "./store-lock";

export const portArg = { port: { type: "string", description: "Inspect the local instance on this port (its home when one here serves it)" } } as const;

function candidateHomes(): string[] {
  const homes = [splHome()];
  try {
    for (const name of readdirSync(userHome()).sort()) if (name.startsWith(".syncro")) homes.push(join(userHome(), name));
  } catch {}
  return [...new Set(homes)].filter((h) => existsSync(homePaths(h).config) || existsSync(homePaths(h).store));
}

export function homeServingPort(port: number): string | null {
  const homes = candidateHomes();
  const byLock = homes.find((h) => readLockHolder(homePaths(h).store)?.port === port);
  if (byLock) return byLock;
  return (
    homes.find((h) => {
      try {
        return loadConfig(homePaths(h).config).server.port === port;
      } catch {
        return false;
      }
    }) ?? null
  );
}

/** Points this CLI run at the instance on `--port` (sets SYNCROPEL_HOME, or SPL_SERVE_URL). */
export function useInstanceOnPort(value: string | undefined): void {
  if (value === undefined) return;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) throw new UsageError(`--port must be a port number, got '${value}'`, "e.g. --port 9201");
  const home = homeServingPort(port);
  if (home) process.env.SYNCROPEL_HOME = home;
  else process.env.SPL_SERVE_URL = `http://127.0.0.1:${port}`;
}

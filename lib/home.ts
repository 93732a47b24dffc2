// Creating an instance home (spl init, and spl serve on an empty volume): directories with
// private modes and a default config.toml. Existing files are left alone unless forced.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from "node:fs";
import { CONFIG_SECTIONS } from "./capabilities";
import { defaultConfig, renderConfig } from "./config";
import type { HomePaths } from "./paths";

export interface HomeSetup {
  createdHome: boolean;
  wroteConfig: boolean;
}

export function ensureHome(p: HomePaths, opts: { forceConfig?: boolean } = {}): HomeSetup {
  const createdHome = !existsSync(p.home);
  for (const dir of [p.home, p.runDir, p.logsDir, p.secretsDir]) {
    if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
  }
  chmodSync(p.runDir, 0o700);
  chmodSync(p.secretsDir, 0o700);
  let wroteConfig = false;
  if (opts.forceConfig || !existsSync(p.config)) {
    writeFileSync(p.config, renderConfig(defaultConfig(), CONFIG_SECTIONS), { mode: 0o600 });
    chmodSync(p.config, 0o600);
    wroteConfig = true;
  }
  return { createdHome, wroteConfig };
}

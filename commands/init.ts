// spl init [--force]: create the home, config.toml and an empty store with its instance identity.
import { defineCommand } from "citty";
import { existsSync } from "node:fs";
import { out } from "../lib/cli/output";
import { ensureHome } from "../lib/home";
import { homePaths } from "../lib/paths";

export default defineCommand({
  meta: { name: "init", description: "Create the instance home (~/.syncro) with config and an empty store" },
  args: { force: { type: "boolean", description: "Rewrite config.toml (hub.db is never touched)" } },
  async run({ args }) {
    const p = homePaths();
    const hadStore = existsSync(p.store);
    const setup = ensureHome(p, { forceConfig: args.force });
    const { openStore } = await import("../lib/store/open");
    const { RecordStore } = await import("../lib/store/records");
    const { ensureInstanceDid } = await import("../lib/instance");
    // Not beside a restore or an unlock; beside a running daemon SQLite keeps these writes safe.
    const lock = (await import("../lib/daemonctl/store-lock")).lockUnlessServing(p.store, "init");
    const { db } = openStore(p.store, { check: false });
    try {
      const store = new RecordStore(db);
      const { did } = ensureInstanceDid(store);
      const { ensureOperatorTokenInStore } = await import("../lib/auth/operator-token");
      const { loadConfig } = await import("../lib/config");
      const actor = loadConfig(p.config).identity.actor;
      const token = await ensureOperatorTokenInStore(store, p.token, actor);
      const nothingNew = !setup.createdHome && !setup.wroteConfig && hadStore && token === "kept";
      out(
        [
          nothingNew ? `Already initialized: ${p.home} (nothing changed)` : `Initialized Syncropel home at ${p.home}`,
          `  config:   ${p.config}${setup.wroteConfig && !setup.createdHome && args.force ? " (rewritten)" : ""}`,
          `  store:    ${p.store} (${store.counts.records} records)`,
          `  instance: ${did}`,
          `  actor:    ${actor} (your records carry it; [identity] actor in config.toml)`,
          `  token:    ${p.token} (${token === "minted" ? "new admin token, mode 0600" : "kept"})`,
          "Next: spl serve --daemon",
        ].join("\n"),
      );
    } finally {
      db.close();
      lock?.release();
    }
  },
});

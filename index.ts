#!/usr/bin/env bun
// spl: CLI and daemon in one binary. `spl version` answers before anything heavy loads; every
// other verb loads only its own module (elysia, cel-js... are imported by the verbs that use them).
import { BUILD_TIME, COMMIT, VERSION } from "./lib/version";

const argv = process.argv.slice(2);
if (argv.length === 1 && (argv[0] === "version" || argv[0] === "--version" || argv[0] === "-V")) {
  process.stdout.write(`spl ${VERSION}\n`);
  process.exit(0);
}

// Stores, logs, backups and tokens are private to the operator.
process.umask(0o077);
// citty colours help text unless told otherwise; keep pipes and logs plain.
if (!process.stdout.isTTY) process.env.NO_COLOR ??= "1";
const { defineCommand } = await import("citty");
const { runCli } = await import("./lib/cli/run");
// The capability list: importing it makes its CEL functions (task(), fleet_*()...) known to every
// verb that checks a rule (config add-*, expr check, task fan-out --join) and to the daemon.
await import("./lib/capabilities");

// Each verb is its own chunk, imported only when run. (Literal paths so the bundler sees them.)
const def = (m: { default: any }) => m.default;

const main: ReturnType<typeof defineCommand> = defineCommand({
  // No meta.version: citty would add a second spelling ("spl v0.1.0") beside this one.
  meta: { name: "spl", description: `spl ${VERSION} — Syncropel instance daemon and CLI (commit ${COMMIT}, built ${BUILD_TIME})` },
  subCommands: {
    init: () => import("./commands/init").then(def),
    serve: () => import("./commands/serve").then(def),
    start: () => import("./commands/start").then(def),
    stop: () => import("./commands/stop").then(def),
    restart: () => import("./commands/restart").then(def),
    status: () => import("./commands/status").then(def),
    version: () => import("./commands/version").then(def),
    intend: () => import("./commands/intend").then(def),
    do: () => import("./commands/do").then(def),
    know: () => import("./commands/know").then(def),
    learn: () => import("./commands/learn").then(def),
    thread: () => import("./commands/thread").then(def),
    backup: () => import("./commands/backup").then(def),
    restore: () => import("./commands/restore").then(def),
    doctor: () => import("./commands/doctor").then(def),
    config: () => import("./commands/config").then(def),
    trust: () => import("./commands/trust").then(def),
    expr: () => import("./commands/expr").then(def),
    health: () => import("./commands/health").then(def),
    token: () => import("./commands/token").then(def),
    task: () => import("./commands/task").then(def),
    dispatch: () => import("./commands/dispatch").then(def),
    fleet: () => import("./commands/fleet").then(def),
    kill: () => import("./commands/kill").then(def),
    unkill: () => import("./commands/unkill").then(def),
    completion: () => import("./commands/completion").then((m) => m.completionCommand(main)),
  },
});

await runCli(main, argv);

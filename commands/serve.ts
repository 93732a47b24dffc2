// spl serve [--daemon | --stop | --restart] [--port N] [--host H]
import { defineCommand } from "citty";
import { UsageError } from "../lib/errors";
import { out } from "../lib/cli/output";

export const bindArgs = {
  port: { type: "string", description: "TCP port (default: [server] port in config.toml, else 9100)", valueHint: "9100" },
  host: { type: "string", description: "Bind address (default 127.0.0.1)", valueHint: "127.0.0.1" },
  "insecure-localhost": { type: "boolean", description: "No bearer token on TCP; binds loopback only (development)" },
} as const;

export function parsePort(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) {
    throw new UsageError(`--port must be a number from 1 to 65535, got '${value}'`, "e.g. --port 9100");
  }
  return port;
}

export async function startCommand(args: { port?: string; host?: string; insecureLocalhost?: boolean; extra?: string[] }) {
  parsePort(args.port);
  const { startDetached } = await import("../lib/daemonctl/start");
  const extra = args.extra ?? (args.insecureLocalhost ? ["--insecure-localhost"] : []);
  out(await startDetached({ port: args.port, host: args.host, extra }));
}

export async function stopCommand(args: { force?: boolean }) {
  const { stopDaemon } = await import("../lib/daemonctl/control");
  const r = await stopDaemon({ force: args.force });
  if (!r.stopped) out("spl serve is not running");
  else out(`Stopped spl serve (pid ${r.pid}${r.via === "pid file" ? "" : `, found via ${r.via}; its pid file was missing`})`);
}

export async function restartCommand(args: { port?: string; host?: string; force?: boolean; insecureLocalhost?: boolean }) {
  parsePort(args.port);
  const [{ findDaemon }, { runningFlags }] = await Promise.all([import("../lib/daemonctl/control"), import("../lib/daemonctl/start")]);
  const running = await findDaemon();
  const previous = running ? runningFlags(running.pid) : {};
  await stopCommand(args);
  const extra = args.insecureLocalhost ? ["--insecure-localhost"] : previous.extra;
  await startCommand({ port: args.port ?? previous.port, host: args.host ?? previous.host, extra });
}

export default defineCommand({
  meta: { name: "serve", description: "Run the daemon (foreground by default)" },
  args: {
    daemon: { type: "boolean", description: "Detach into the background and return once ready" },
    foreground: { type: "boolean", description: "Stay in the foreground (the default; for systemd and Docker)" },
    stop: { type: "boolean", description: "Stop the running daemon (SIGTERM, graceful)" },
    restart: { type: "boolean", description: "Stop, then start again with the same port and host" },
    force: { type: "boolean", description: "With --stop/--restart: SIGKILL if it does not stop within 15 s" },
    ...bindArgs,
  },
  async run({ args }) {
    const modes = [args.daemon, args.stop, args.restart].filter(Boolean).length;
    if (modes > 1) throw new UsageError("--daemon, --stop and --restart are exclusive", "pick one");
    if (args.foreground && (args.daemon || args.stop)) throw new UsageError("--foreground cannot be combined with --daemon or --stop");
    if (args.stop) return stopCommand(args);
    if (args.restart) return restartCommand(args);
    if (args.daemon) return startCommand(args);
    const port = parsePort(args.port);
    const { serve } = await import("../lib/daemon/serve");
    await serve({ port, host: args.host, insecureLocalhost: args.insecureLocalhost === true });
  },
});

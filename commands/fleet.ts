// spl fleet start|stop|list|status|show|ping|token|join: the fleet of the runbook's
// "Multi-instance fleet operations" (README "Fleet"). The work is in lib/fleet; this file parses flags.
import { defineCommand } from "citty";
import { out, outputArgs, printJson, wantsJson } from "../lib/cli/output";
import { urlArg } from "../lib/client";
import { UsageError, UserError } from "../lib/errors";

const intFlag = (value: string | undefined, flag: string, min: number, max: number, fallback: number): number => {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) throw new UsageError(`${flag} must be an integer from ${min} to ${max}, got '${value}'`, `e.g. ${flag} ${fallback}`);
  return n;
};

const start = defineCommand({
  meta: { name: "start", description: "Start the coordinator (this home) and N local workers (<home>-worker-a...), and wait until all are live" },
  args: {
    workers: { type: "string", description: "How many workers (default 2)", valueHint: "2" },
    port: { type: "string", description: "The coordinator's port (default: [server] port, 9100)" },
    "worker-port": { type: "string", description: "The first worker's port; the next ones follow (default 9201)" },
    heartbeat: { type: "string", description: "Heartbeat interval in seconds (default 5 for a local fleet)" },
    wait: { type: "string", description: "Seconds to wait for convergence (default 30)" },
  },
  async run({ args }) {
    const { loadConfig } = await import("../lib/config");
    const { homePaths } = await import("../lib/paths");
    const L = await import("../lib/fleet/launch");
    const port = intFlag(args.port, "--port", 1, 65535, loadConfig(homePaths().config).server.port);
    const workers = intFlag(args.workers, "--workers", 1, 26, 2);
    await L.startFleet({
      workers,
      port,
      workerPort: intFlag(args["worker-port"], "--worker-port", 1, 65535 - workers, L.DEFAULT_WORKER_PORT),
      heartbeatSecs: args.heartbeat === undefined ? null : intFlag(args.heartbeat, "--heartbeat", 1, 3600, L.LOCAL_HEARTBEAT_SECS),
      waitSecs: intFlag(args.wait, "--wait", 1, 3600, L.CONVERGENCE_SECS),
      write: out,
    });
  },
});

const stop = defineCommand({
  meta: { name: "stop", description: "Stop local fleet members: --workers (default), --all, or --instance NAME" },
  args: {
    workers: { type: "boolean", description: "Every local worker (<home>-worker-*)" },
    all: { type: "boolean", description: "The workers, then the coordinator" },
    instance: { type: "string", description: "One member by name: coordinator, worker-a..." },
  },
  async run({ args }) {
    const { homePaths } = await import("../lib/paths");
    const L = await import("../lib/fleet/launch");
    const home = homePaths().home;
    const workers = L.localWorkers(home);
    if ([args.workers, args.all, args.instance !== undefined].filter(Boolean).length > 1) throw new UsageError("give one of --workers, --all, --instance NAME");
    let names: string[];
    if (args.instance !== undefined) {
      const known = ["coordinator", ...workers];
      if (!known.includes(args.instance)) throw new UserError(`no local fleet member '${args.instance}'`, `members here: ${known.join(", ")}`);
      names = [args.instance];
    } else names = args.all ? [...workers, "coordinator"] : workers;
    if (!names.length) return out(`no local workers beside ${L.tilde(home)} — start some with 'spl fleet start --workers N'`);
    if (!(await L.stopFleet(names, out))) process.exitCode = 1;
  },
});

const list = defineCommand({
  meta: { name: "list", description: "Every registered instance: endpoint, status, version, uptime, health" },
  args: { ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const V = await import("../lib/fleet/view");
    const s = await V.fetchStatus(await V.coordinatorTarget(args.url));
    if (json) return printJson(s.instances);
    out(V.renderList(s));
  },
});

const status = defineCommand({
  meta: { name: "status", description: "Coordinator, heartbeat, live/stale/archived counts, freezes, emergency stop" },
  args: { live: { type: "boolean", description: "Keep refreshing (every second on a terminal; every heartbeat when piped) until Ctrl-C" }, ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const V = await import("../lib/fleet/view");
    const target = await V.coordinatorTarget(args.url);
    const render = async () => {
      const s = await V.fetchStatus(target);
      return { text: json ? JSON.stringify(s, null, 2) : args.live ? V.renderLive(s) : V.renderStatus(s), interval: s.heartbeat_interval_secs };
    };
    if (!args.live) return out((await render()).text);
    const { watch } = await import("../lib/fleet/live");
    await watch(render, Boolean(process.stdout.isTTY) && !json);
  },
});

const show = defineCommand({
  meta: { name: "show", description: "One instance in detail (by DID, its 16-hex tail, or name)" },
  args: { member: { type: "positional", description: "DID, tail or name (worker-a)", required: true }, ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const V = await import("../lib/fleet/view");
    const m = V.pickMember(await V.fetchStatus(await V.coordinatorTarget(args.url)), args.member);
    if (json) return printJson(m);
    out(V.renderShow(m));
  },
});

const ping = defineCommand({
  meta: { name: "ping", description: "Reachability and latency of one instance via its /health" },
  args: { member: { type: "positional", description: "DID, tail or name (worker-a)", required: true }, ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const V = await import("../lib/fleet/view");
    const p = await V.ping(V.pickMember(await V.fetchStatus(await V.coordinatorTarget(args.url)), args.member));
    if (json) printJson(p);
    else out(V.renderPing(p));
    if (!p.reachable) process.exitCode = 1;
  },
});

const token = defineCommand({
  meta: { name: "token", description: "Print this coordinator's fleet token (for 'spl fleet join' on a host set up by hand)" },
  args: { ...outputArgs },
  async run({ args }) {
    const json = wantsJson(args);
    const { homePaths } = await import("../lib/paths");
    const T = await import("../lib/fleet/token");
    const home = homePaths().home;
    const t = T.readFleetToken(home);
    if (!t) throw new UserError(`no fleet token at ${T.fleetTokenPath(home)}`, "the coordinator mints it when it starts with a [fleet] section: add [fleet] to config.toml (or run 'spl fleet start') and restart");
    if (json) return printJson({ token: t, path: T.fleetTokenPath(home) });
    out(t);
  },
});

const join = defineCommand({
  meta: { name: "join", description: "Make this home a worker of the coordinator at URL, with the fleet token in FILE" },
  args: {
    coordinator: { type: "positional", description: "The coordinator's URL, e.g. http://coordinator.example.com:9100", required: true },
    "token-file": { type: "string", description: "A file holding the coordinator's fleet token ('spl fleet token' there)", required: true },
    advertise: { type: "string", description: "The URL the coordinator reaches this member by (default http://<host>:<port>)" },
  },
  async run({ args }) {
    const { readFileSync } = await import("node:fs");
    const { homePaths } = await import("../lib/paths");
    const { normaliseUrl } = await import("../lib/fleet/config");
    const { parseBearer } = await import("../lib/auth/tokens");
    const T = await import("../lib/fleet/token");
    const { writeTokenFile } = await import("../lib/auth/operator-token");
    const { setFleetKeys } = await import("../lib/fleet/config-file");
    const { ensureHome } = await import("../lib/home");
    const url = normaliseUrl(args.coordinator, "the coordinator URL", "e.g. spl fleet join http://coordinator.example.com:9100 --token-file fleet_token");
    let tok = "";
    try {
      tok = readFileSync(args["token-file"], "utf8").trim();
    } catch (err) {
      throw new UserError(`cannot read ${args["token-file"]}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, "copy the output of 'spl fleet token' on the coordinator into that file");
    }
    if (parseBearer(tok)?.env !== "fleet") throw new UserError(`${args["token-file"]} does not hold a fleet token (spl_fleet_<id>_<secret>)`, "copy the output of 'spl fleet token' on the coordinator");
    const p = homePaths();
    ensureHome(p);
    const advertised: Record<string, string> = args.advertise === undefined ? {} : { advertised_endpoint: normaliseUrl(args.advertise, "--advertise", "e.g. --advertise http://worker-a.example.com:9100") };
    setFleetKeys(p.config, { coordinator_url: url, ...advertised });
    writeTokenFile(T.fleetTokenPath(p.home), tok);
    out(`Joined the fleet of ${url}: [fleet] coordinator_url in ${p.config}, the fleet token in ${T.fleetTokenPath(p.home)} (0600)\nRestart to apply: spl restart (or spl serve --daemon)`);
  },
});

export default defineCommand({
  meta: { name: "fleet", description: "Multi-instance fleet: start, stop, list, status, show, ping, token, join" },
  subCommands: { start, stop, list, status, show, ping, token, join },
});

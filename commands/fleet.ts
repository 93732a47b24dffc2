// spl fleet start|stop|list|status|show|ping|token|join|forget|coordinate: the fleet of the runbook's
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
  meta: { name: "token", description: "Print the coordinator's join credential (minted when none is valid); --rotate mints a new one" },
  args: {
    rotate: { type: "boolean", description: "Mint a new join credential; the previous one stays valid for --grace" },
    grace: { type: "string", description: "Seconds the previous credential stays valid after --rotate (default 3600)" },
    ttl: { type: "string", description: "Lifetime of a new join credential in seconds (default 86400)" },
    ...outputArgs,
  },
  async run({ args }) {
    const json = wantsJson(args);
    const { call } = await import("../lib/client");
    if (!args.rotate && args.grace !== undefined) throw new UsageError("--grace applies to --rotate", "spl fleet token --rotate --grace 600");
    const body = {
      rotate: args.rotate === true,
      ...(args.grace === undefined ? {} : { grace_secs: intFlag(args.grace, "--grace", 0, 31_536_000, 3600) }),
      ...(args.ttl === undefined ? {} : { ttl_secs: intFlag(args.ttl, "--ttl", 60, 31_536_000, 86_400) }),
    };
    const t = await call("POST", "/v1/fleet/token", body);
    if (json) return printJson(t);
    out(t.token);
    const until = (s: number) => new Date(s * 1000).toISOString();
    process.stderr.write(`join credential valid until ${until(t.expires_at)} (rotate: spl fleet token --rotate)${t.previous_valid_until ? `; the previous one until ${until(t.previous_valid_until)}` : ""}\n`);
  },
});

const join = defineCommand({
  meta: { name: "join", description: "Make this home a member of the fleet at URL: a member credential for the join credential in FILE" },
  args: {
    coordinator: { type: "positional", description: "The coordinator's URL, e.g. https://coordinator.example.com:9100", required: true },
    name: { type: "string", description: "This member's name in the fleet, unique (default: [fleet] name, else the host's name)" },
    "token-file": { type: "string", description: "A file holding the coordinator's join credential ('spl fleet token' there); default: read from stdin" },
    advertise: { type: "string", description: "The URL the coordinator reaches this member by (default http(s)://<host>:<port>)" },
    "ca-file": { type: "string", description: "The CA that signed the members' certificates (written to [fleet] ca_file)" },
    // --no-engine-config keeps this home's own (citty reads --no-X as X = false).
    "engine-config": { type: "boolean", default: true, description: "Copy the coordinator's engine config (routing rules, adapters) into this home; --no-engine-config keeps its own" },
  },
  async run({ args }) {
    const { enrolByHand } = await import("../lib/fleet/enrol");
    out(await enrolByHand({ url: args.coordinator, name: args.name, tokenFile: args["token-file"], advertise: args.advertise, caFile: args["ca-file"], engineConfig: args["engine-config"] !== false }));
  },
});

const forget = defineCommand({
  meta: { name: "forget", description: "Remove a member for good (by DID, its 16-hex tail, or name) and revoke its credential" },
  args: { member: { type: "positional", description: "DID, tail or name (worker-b)", required: true }, ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const V = await import("../lib/fleet/view");
    const { call } = await import("../lib/client");
    const r = await call("POST", "/v1/fleet/forget", { member: args.member }, await V.coordinatorTarget(args.url));
    if (json) return printJson(r);
    out(`✓ forgot ${r.name} (${r.did}): its credential is revoked, and its name is free`);
  },
});

const coordinate = defineCommand({
  meta: { name: "coordinate", description: "Make this home the coordinator of a fleet across hosts, reachable at URL; prints what to run on each worker" },
  args: {
    advertise: { type: "string", description: "The URL members reach this host by, e.g. https://coordinator.example.com:9100", required: true },
    heartbeat: { type: "string", description: "Heartbeat interval in seconds, adopted by every member (default 15)" },
    "ca-file": { type: "string", description: "The CA that signed the members' certificates, for this host's calls to them (written to [fleet] ca_file)" },
  },
  async run({ args }) {
    const { becomeCoordinator } = await import("../lib/fleet/enrol");
    const heartbeat = args.heartbeat === undefined ? undefined : intFlag(args.heartbeat, "--heartbeat", 1, 3600, 15);
    out(await becomeCoordinator({ advertise: args.advertise, heartbeatSecs: heartbeat, caFile: args["ca-file"] }));
  },
});

export default defineCommand({
  meta: { name: "fleet", description: "Multi-instance fleet: start, stop, list, status, show, ping, token, join, forget, coordinate" },
  subCommands: { start, stop, list, status, show, ping, token, join, forget, coordinate },
});

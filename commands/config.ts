// spl config: engine config (LEARN records on th_engine_config), permission enforcement, provider keys.
import { defineCommand } from "citty";
import { call, DaemonError, request, resolveTarget, urlArg } from "../lib/client";
import { out, outputArgs, printJson, table, wantsJson } from "../lib/cli/output";
import { UsageError, UserError } from "../lib/errors";
import { homePaths } from "../lib/paths";
import { addRuleCommand, lockoutHint, operatorActor, requireFlag, writeConfig } from "../lib/cli/engine-config";
import { permissionRuleCommand } from "../lib/cli/rule-command";
import { isRuleTopic, RULE_KINDS, RULE_TOPICS, type RuleTopic } from "../lib/engine/rule-kinds";

const TOPICS = RULE_TOPICS.join(", ");

function topicFlag(value: string | undefined): RuleTopic | undefined {
  if (value !== undefined && !isRuleTopic(value)) throw new UsageError(`unknown --topic '${value}'`, `use one of ${TOPICS}`);
  return value;
}

const removeRule = defineCommand({
  meta: { name: "remove-rule", description: "Remove a rule (writes enabled:false for its name)" },
  args: { name: { type: "string", description: "Rule name" }, topic: { type: "string", description: `One of ${TOPICS}` }, ...urlArg },
  async run({ args }) {
    const name = requireFlag(args.name, "--name", "admin-self");
    let topic = topicFlag(args.topic);
    if (topic === undefined) {
      const rows = (await call("GET", "/v1/config/rules", undefined, resolveTarget(args.url)).catch(lockoutHint)).data as any[];
      const topics = [...new Set(rows.filter((r) => r.name === name).map((r) => r.topic))];
      if (!topics.length) throw new UserError(`no rule named "${name}"`, "'spl config list-rules' shows the rules");
      if (topics.length > 1) throw new UsageError(`"${name}" names rules in ${topics.join(" and ")}`, "pick one with --topic");
      topic = topics[0];
    }
    const rec = await writeConfig({ topic, name, enabled: false }, args.url).catch(lockoutHint);
    out(`removed ${topic} "${name}" — record ${rec.id}`);
  },
});

function ruleTable(rows: any[], withTopic: boolean): string {
  const header = [...(withTopic ? ["TOPIC"] : []), "NAME", "STATUS", "PRIORITY", "EFFECT", "EXPRESSION"];
  return table(
    header,
    rows.map((r) => [
      ...(withTopic ? [r.topic] : []),
      r.name || "(no name)",
      r.status,
      r.priority ?? "-",
      r.status === "REFUSED" ? "-" : r.effect,
      r.status === "REFUSED" ? `error: ${r.error}` : r.expression,
    ]),
  );
}

const listRules = defineCommand({
  meta: { name: "list-rules", description: "List active and REFUSED rules (latest per name)" },
  args: { topic: { type: "string", description: `Only one of ${TOPICS}` }, ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    topicFlag(args.topic);
    const q = args.topic ? `?topic=${encodeURIComponent(args.topic)}` : "";
    const { data } = await call("GET", `/v1/config/rules${q}`, undefined, resolveTarget(args.url));
    if (json) return printJson(data);
    if (!data.length) return out(`no rules${args.topic ? ` of topic ${args.topic}` : ""} — add one with 'spl config add-rule' (or add-permission-rule, add-health, ...)`);
    out(ruleTable(data, true));
  },
});

const listPermissionRules = defineCommand({
  meta: { name: "list-permission-rules", description: "List permission rules in evaluation order, and whether enforcement is on" },
  args: { ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const r = await call("GET", "/v1/config/permission-rules", undefined, resolveTarget(args.url));
    if (json) return printJson({ permissions_enabled: r.permissions_enabled, rules: r.data });
    out(`Enforcement: ${r.permissions_enabled ? "on" : "off"}`);
    out(r.data.length ? ruleTable(r.data, false) : "no permission rules");
  },
});

/** One table's values on one line: `key = value, ...`, or "(not set)". */
function showSection(value: unknown): string {
  if (value === null || value === undefined) return "(not set)";
  if (typeof value !== "object") return JSON.stringify(value);
  const pairs = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== null && v !== undefined);
  return pairs.length ? pairs.map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(", ") : "(defaults)";
}

const show = defineCommand({
  meta: { name: "show", description: "Summary of the engine config the daemon has folded" },
  args: { ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const c = await call("GET", "/v1/config", undefined, resolveTarget(args.url));
    if (json) return printJson(c);
    const t = c.trust_params;
    const r = c.rules;
    out(
      [
        `Identity:     ${c.identity_actor}`,
        `Permissions:  ${c.permissions_enabled ? "enforced" : "off"}`,
        `Auth (TCP):   ${c.tcp_auth_required ? "bearer token required" : c.insecure_localhost ? "off (--insecure-localhost, loopback only)" : "off (auth_required=false, loopback only)"}`,
        `Tokens:       ${c.tokens_active} active`,
        `Trust:        prior ${t.prior_success}/${t.prior_failure}, z ${t.z}, half-life ${t.half_life_days} d`,
        `Rules:        ${RULE_TOPICS.map((t) => `${RULE_KINDS[t].label} ${r[t]}`).join(", ")}`,
        `Refused:      ${c.refused}${c.refused ? " (see 'spl config list-rules')" : ""}`,
        `Skipped:      ${c.skipped} LEARN(s) on th_engine_config without a known topic`,
        "",
        "config.toml, as the daemon read it:",
        ...Object.entries(c.sections ?? {}).map(([name, value]) => `  [${name}] ${showSection(value)}`),
      ].join("\n"),
    );
  },
});

const permissionsEnable = defineCommand({
  meta: { name: "permissions-enable", description: "Turn permission enforcement on (after a lockout pre-flight)" },
  args: { ...urlArg },
  async run({ args }) {
    const target = resolveTarget(args.url);
    const actor = operatorActor();
    const pf = await call("GET", `/v1/config/permissions/preflight?actor=${encodeURIComponent(actor)}`, undefined, target).catch(lockoutHint);
    if (!pf.ok) {
      process.stderr.write(
        `error: refusing to enable permission enforcement: the rules would not allow ${actor} ${pf.missing.join(", ")}, ` +
          "so 'spl status' and 'spl config permissions-disable' would refuse once it is on — add this rule first, then retry:\n" +
          `  ${permissionRuleCommand(pf.fix_rule)}\n`,
      );
      process.exitCode = 1;
      return;
    }
    const rec = await writeConfig({ topic: "permissions_enabled", enabled: true }, args.url).catch(lockoutHint);
    out(`Permission enforcement is on (record ${rec.id}). ${actor} keeps ${pf.required.join(", ")}.`);
  },
});

const permissionsDisable = defineCommand({
  meta: { name: "permissions-disable", description: "Turn permission enforcement off (needs thread_read, record_write, config_read)" },
  args: { ...urlArg },
  async run({ args }) {
    const target = resolveTarget(args.url);
    // The documented path: read last_clock (thread_read), write the next LEARN (record_write), confirm (config_read).
    const st = await request("GET", "/v1/threads/th_engine_config/state", undefined, target);
    if (st.status !== 200 && st.status !== 404) lockoutHint(DaemonError.fromReply(st));
    const clock = st.status === 200 && st.body.last_clock !== null ? st.body.last_clock + 1 : 0;
    const rec = await writeConfig({ topic: "permissions_enabled", enabled: false }, args.url, clock).catch(lockoutHint);
    const now = await call("GET", "/v1/config/permission-rules", undefined, target).catch(lockoutHint);
    if (now.permissions_enabled) throw new UserError("wrote the disabling LEARN but the daemon still enforces", "check 'spl config list-rules' and the log");
    out(`Permission enforcement is off (record ${rec.id}).`);
  },
});

const permissionsUnlock = defineCommand({
  meta: { name: "permissions-unlock", description: "Emergency: write permissions_enabled=false straight into the stopped store" },
  args: { force: { type: "boolean", description: "Write even though the daemon runs (it takes effect at its next restart)" } },
  async run({ args }) {
    const p = homePaths();
    const { findDaemon } = await import("../lib/daemonctl/control");
    const running = await findDaemon(p);
    if (running && !args.force) {
      throw new UserError(
        `spl serve is running (pid ${running.pid}); it caches the config in memory and would shadow this write`,
        "stop it first: spl serve --stop; spl config permissions-unlock; spl serve --daemon (or pass --force and restart)",
      );
    }
    const { writeUnlockRecord } = await import("../lib/engine/unlock");
    const r = writeUnlockRecord(p.store, operatorActor(), { force: args.force });
    out(`wrote permissions_enabled=false to ${p.store} (record ${r.id}, clock ${r.clock}; ${r.records} records in the store)`);
    out(running ? "The daemon is still running with the old config: restart it (spl serve --restart) for this to take effect." : "Start the daemon: spl serve --daemon — enforcement will be off.");
  },
});

const setKey = defineCommand({
  meta: { name: "set-key", description: "Save a provider API key in <home>/secrets/<provider>.key (0600)" },
  args: {
    provider: { type: "positional", required: true, description: "Provider name, e.g. anthropic" },
    key: { type: "positional", required: true, description: "The key, or '-' to read it from stdin" },
  },
  async run({ args }) {
    const { writeKey, maskKey } = await import("../lib/secrets");
    const key = args.key === "-" ? await Bun.stdin.text() : args.key;
    const file = writeKey(homePaths().secretsDir, args.provider, key);
    out(`saved ${args.provider} key ${maskKey(key.trim())} to ${file}`);
  },
});

const listKeys = defineCommand({
  meta: { name: "list-keys", description: "List saved provider keys (masked)" },
  args: { ...outputArgs },
  async run({ args }) {
    const json = wantsJson(args);
    const { listKeys: list } = await import("../lib/secrets");
    const keys = list(homePaths().secretsDir);
    if (json) return printJson(keys.map(({ provider, masked, path, mode }) => ({ provider, masked, path, mode })));
    if (!keys.length) return out("no provider keys — add one with 'spl config set-key <provider> <key>'");
    out(table(["PROVIDER", "KEY", "MODE", "PATH"], keys.map((k) => [k.provider, k.masked, k.mode, k.path])));
  },
});

export default defineCommand({
  meta: { name: "config", description: "Engine config: rules, permission enforcement, provider keys" },
  subCommands: {
    show,
    "list-rules": listRules,
    ...Object.fromEntries(RULE_TOPICS.map((t) => [RULE_KINDS[t].verb, addRuleCommand(t)])),
    "remove-rule": removeRule,
    "list-permission-rules": listPermissionRules,
    "permissions-enable": permissionsEnable,
    "permissions-disable": permissionsDisable,
    "permissions-unlock": permissionsUnlock,
    "set-key": setKey,
    "list-keys": listKeys,
  },
});

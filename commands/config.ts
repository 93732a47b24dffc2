// spl config: engine config (LEARN records on th_engine_config), permission enforcement, provider keys.
import { defineCommand } from "citty";
import { call, request, resolveTarget } from "../lib/client";
import { out, outputArgs, printJson, table, wantsJson } from "../lib/cli/output";
import { UsageError, UserError } from "../lib/errors";
import { homePaths } from "../lib/paths";
import { lockoutHint, operatorActor, parsePriority, requireFlag, validateRule, writeConfig } from "../lib/cli/engine-config";

const urlArg = { url: { type: "string", description: "Daemon URL (default: the local socket; or SPL_SERVE_URL)" } } as const;
const ruleArgs = {
  name: { type: "string", description: "Rule name (the latest LEARN per name wins)" },
  expression: { type: "string", description: "CEL expression (must type-check to bool)", valueHint: "cel" },
  priority: { type: "string", description: "Higher is evaluated first (default 0)", valueHint: "int" },
  ...urlArg,
} as const;
const RULE_TOPICS = ["permission_rule", "routing_rule", "fold_rule", "health_check", "aitl_rule"];

async function add(topic: any, body: Record<string, unknown>, url: string | undefined, describe: string) {
  validateRule(topic, body);
  const rec = await writeConfig({ topic, ...body }, url).catch(lockoutHint);
  out(`added ${topic} "${body.name}" (${describe}) — record ${rec.id}`);
}

const addPermissionRule = defineCommand({
  meta: { name: "add-permission-rule", description: "Add or replace a permission rule (allow|deny)" },
  args: { ...ruleArgs, action: { type: "string", description: "allow or deny", valueHint: "allow|deny" } },
  async run({ args }) {
    const name = requireFlag(args.name, "--name", "admin-self");
    const action = requireFlag(args.action, "--action", "allow");
    const expression = requireFlag(args.expression, "--expression", `'current_actor() == "did:sync:user:you"'`);
    const priority = parsePriority(args.priority);
    await add("permission_rule", { name, action, priority, expression }, args.url, `${action}, priority ${priority}`);
  },
});

const addRule = defineCommand({
  meta: { name: "add-rule", description: "Add or replace a routing rule (--expression, or --domain/--act)" },
  args: {
    ...ruleArgs,
    target: { type: "string", description: "Actor DID to dispatch matching records to", valueHint: "did" },
    domain: { type: "string", description: "Match record.body.domain (instead of --expression)" },
    act: { type: "string", description: "Match record.act (instead of --expression)" },
  },
  async run({ args }) {
    const name = requireFlag(args.name, "--name", "code-to-claude");
    const target = requireFlag(args.target, "--target", "did:sync:agent:claude");
    let expression = args.expression;
    if (expression === undefined) {
      const parts: string[] = [];
      if (args.act !== undefined) parts.push(`record.act == ${JSON.stringify(args.act)}`);
      if (args.domain !== undefined) parts.push(`has(record.body.domain) && record.body.domain == ${JSON.stringify(args.domain)}`);
      if (!parts.length) throw new UsageError("give --expression, or --domain and/or --act", "e.g. --domain code --act INTEND");
      expression = parts.join(" && ");
    } else if (args.domain !== undefined || args.act !== undefined) {
      throw new UsageError("--expression cannot be combined with --domain/--act", "use one form");
    }
    const priority = parsePriority(args.priority);
    await add("routing_rule", { name, expression, target, priority }, args.url, `-> ${target}, priority ${priority}`);
  },
});

const addHealth = defineCommand({
  meta: { name: "add-health", description: "Add or replace a health check (an invariant: true = healthy)" },
  args: {
    ...ruleArgs,
    severity: { type: "string", description: "warn or critical", valueHint: "warn|critical" },
    description: { type: "string", description: "What the check guards" },
  },
  async run({ args }) {
    const name = requireFlag(args.name, "--name", "store-not-empty");
    const severity = requireFlag(args.severity, "--severity", "critical");
    const expression = requireFlag(args.expression, "--expression", "'system.records_total > 0'");
    const body = { name, severity, description: args.description ?? "", expression, priority: parsePriority(args.priority) };
    await add("health_check", body, args.url, severity);
  },
});

const addAitlRule = defineCommand({
  meta: { name: "add-aitl-rule", description: "Add or replace an AITL decision rule (auto_apply|present)" },
  args: { ...ruleArgs, action: { type: "string", description: "auto_apply or present", valueHint: "auto_apply|present" } },
  async run({ args }) {
    const name = requireFlag(args.name, "--name", "confident");
    const action = requireFlag(args.action, "--action", "present");
    const expression = requireFlag(args.expression, "--expression", "'proposal_confidence > 0.9'");
    const priority = parsePriority(args.priority);
    await add("aitl_rule", { name, action, priority, expression }, args.url, `${action}, priority ${priority}`);
  },
});

const addFoldRule = defineCommand({
  meta: { name: "add-fold-rule", description: "Add or replace a fold rule (forces a task status when it matches)" },
  args: { ...ruleArgs, id: { type: "string", description: "Same as --name" }, status: { type: "string", description: "Status the rule yields" } },
  async run({ args }) {
    if (args.id !== undefined && args.name !== undefined && args.id !== args.name) throw new UsageError("--id and --name differ", "give one of them");
    const name = requireFlag(args.name ?? args.id, "--name", "default");
    const status = requireFlag(args.status, "--status", "active");
    const expression = requireFlag(args.expression, "--expression", "'true'");
    const priority = parsePriority(args.priority);
    await add("fold_rule", { name, status, priority, expression }, args.url, `status=${status}, priority ${priority}`);
  },
});

const removeRule = defineCommand({
  meta: { name: "remove-rule", description: "Remove a rule (writes enabled:false for its name)" },
  args: { name: { type: "string", description: "Rule name" }, topic: { type: "string", description: `One of ${RULE_TOPICS.join(", ")}` }, ...urlArg },
  async run({ args }) {
    const name = requireFlag(args.name, "--name", "admin-self");
    let topic = args.topic;
    if (topic !== undefined && !RULE_TOPICS.includes(topic)) throw new UsageError(`unknown --topic '${topic}'`, `use one of ${RULE_TOPICS.join(", ")}`);
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
  args: { topic: { type: "string", description: `Only one of ${RULE_TOPICS.join(", ")}` }, ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    if (args.topic !== undefined && !RULE_TOPICS.includes(args.topic)) throw new UsageError(`unknown --topic '${args.topic}'`, `use one of ${RULE_TOPICS.join(", ")}`);
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
        `Rules:        permission ${r.permission_rule}, routing ${r.routing_rule}, fold ${r.fold_rule}, health ${r.health_check}, aitl ${r.aitl_rule}`,
        `Refused:      ${c.refused}${c.refused ? " (see 'spl config list-rules')" : ""}`,
        `Skipped:      ${c.skipped} LEARN(s) on th_engine_config without a known topic`,
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
          "so 'spl config permissions-disable' could never turn it off again — add this rule first, then retry:\n" +
          `  ${pf.fix_command}\n`,
      );
      process.exitCode = 1;
      return;
    }
    const rec = await writeConfig({ topic: "permissions_enabled", enabled: true }, args.url).catch(lockoutHint);
    out(`Permission enforcement is on (record ${rec.id}). ${actor} keeps record_write, thread_read and config_read.`);
  },
});

const permissionsDisable = defineCommand({
  meta: { name: "permissions-disable", description: "Turn permission enforcement off (needs thread_read, record_write, config_read)" },
  args: { ...urlArg },
  async run({ args }) {
    const target = resolveTarget(args.url);
    // The documented path: read last_clock (thread_read), write the next LEARN (record_write), confirm (config_read).
    const st = await request("GET", "/v1/threads/th_engine_config/state", undefined, target);
    if (st.status !== 200 && st.status !== 404) {
      lockoutHint(new UserError(`${st.body?.message ?? `daemon answered HTTP ${st.status}`}${st.body?.code ? ` [${st.body.code}]` : ""}`));
    }
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
    "add-rule": addRule,
    "add-permission-rule": addPermissionRule,
    "add-health": addHealth,
    "add-aitl-rule": addAitlRule,
    "add-fold-rule": addFoldRule,
    "remove-rule": removeRule,
    "list-permission-rules": listPermissionRules,
    "permissions-enable": permissionsEnable,
    "permissions-disable": permissionsDisable,
    "permissions-unlock": permissionsUnlock,
    "set-key": setKey,
    "list-keys": listKeys,
  },
});

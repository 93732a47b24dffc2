// spl task add|list|show|tree|start|done|fail|approve|reject|block|defer|cancel|reopen|comment|handoff|edit
// Every write is an ordinary record on the task's thread (so permissions apply); the daemon's
// task fold refuses transitions the status machine does not allow. `done` checks the git work
// tree here, in the operator's process, before anything is written.
import { defineCommand } from "citty";
import { randomBytes } from "node:crypto";
import { call, DaemonError, resolveTarget, urlArg, type Target } from "../lib/client";
import { out, outputArgs, printJson, table, wantsJson } from "../lib/cli/output";
import { loadConfig } from "../lib/config";
import { UsageError } from "../lib/errors";
import { homePaths } from "../lib/paths";
import { sha256Hex } from "../lib/records/id";
import type { Task } from "../lib/tasks/fold";
import { PRIORITIES, REASON_REQUIRED, type TaskVerb } from "../lib/tasks/lifecycle";
import { fanoutCommands } from "./task-fanout";
import { repeated } from "../lib/cli/repeated";

const actorArg = { actor: { type: "string", description: "Actor DID (default: [identity] actor in config.toml)" } } as const;
const refArg = { ref: { type: "positional", required: true, description: "Task alias (TSK-0001) or thread id" } } as const;

const actorOf = (flag: string | undefined) => flag ?? loadConfig(homePaths().config).identity.actor;
const dash = (v: string | null | undefined) => (v ? v : "—");
const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 3)}...` : s);
const when = (secs: number) => new Date(secs * 1000).toISOString().replace(".000Z", "Z");

/** A list option that may be repeated or comma-separated: --label a --label b,c → [a, b, c]. */
const listFlag = (rawArgs: string[], name: string): string[] =>
  repeated(rawArgs, name).flatMap((x) => x.split(",")).map((s) => s.trim()).filter(Boolean);

async function getTask(ref: string, target: Target): Promise<Task> {
  return call("GET", `/v1/tasks/${encodeURIComponent(ref)}`, undefined, target);
}

const add = defineCommand({
  meta: { name: "add", description: "Create a task (an INTEND with body.task = true on a new thread)" },
  args: {
    goal: { type: "positional", required: true, description: "What should be done" },
    priority: { type: "string", description: `Priority: ${PRIORITIES.join("|")} (default medium)` },
    label: { type: "string", description: "Label (repeat, or comma-separate)" },
    assign: { type: "string", description: "Assignee DID (a leading @ is dropped)" },
    alias: { type: "string", description: "Alias instead of the next TSK-NNNN" },
    domain: { type: "string", description: "Domain for trust evidence (default general)" },
    namespace: { type: "string", description: "Namespace (default default)" },
    criteria: { type: "string", description: "Acceptance criteria" },
    "depends-on": { type: "string", description: "Aliases this task waits for (comma-separated)" },
    ...actorArg,
    ...urlArg,
    ...outputArgs,
  },
  async run({ args, rawArgs }) {
    const json = wantsJson(args);
    if (args.priority !== undefined && !(PRIORITIES as readonly string[]).includes(args.priority)) {
      throw new UsageError(`invalid priority '${args.priority}'`, `use one of ${PRIORITIES.join(", ")}`);
    }
    const actor = actorOf(args.actor);
    const body: Record<string, unknown> = { task: true, goal: args.goal, text: args.goal };
    if (args.priority) body.priority = args.priority;
    if (args.alias) body.alias = args.alias;
    if (args.assign) body.assignee = args.assign.replace(/^@/, "");
    if (args.domain) body.domain = args.domain;
    if (args.namespace) body.namespace = args.namespace;
    if (args.criteria) body.criteria = args.criteria;
    const labels = listFlag(rawArgs, "label");
    if (labels.length) body.labels = labels;
    const deps = listFlag(rawArgs, "depends-on");
    if (deps.length) body.depends_on = deps;
    const thread = `th_${sha256Hex(`${actor}\n${args.goal}\n${randomBytes(16).toString("hex")}`)}`;
    const target = resolveTarget(args.url);
    await call("POST", "/v1/records", { act: "INTEND", actor, thread, body }, target);
    const task = await getTask(thread, target);
    if (json) return printJson(task);
    out(`◇ Task created: ${task.goal}\n  thread: ${task.thread}\n  alias:  ${task.alias}`);
  },
});

const list = defineCommand({
  meta: { name: "list", alias: "ls", description: "List open tasks (--all includes approved and cancelled)" },
  args: { all: { type: "boolean", description: "Include approved and cancelled tasks" }, ...urlArg, ...outputArgs },
  async run({ args }) {
    const json = wantsJson(args);
    const page = await call("GET", `/v1/tasks${args.all ? "?all=true" : ""}`, undefined, resolveTarget(args.url));
    const tasks = page.data as Task[];
    if (json) return printJson(tasks);
    if (!tasks.length) return out(args.all ? "no tasks yet — create one with 'spl task add \"...\"'" : "no open tasks (see --all) — create one with 'spl task add \"...\"'");
    out(table(["ID", "STATUS", "PRI", "GOAL", "ASSIGN"], tasks.map((t) => [t.alias, t.status, t.priority, clip(t.goal, 60), dash(t.assignee)])));
  },
});

const show = defineCommand({
  meta: { name: "show", description: "Show a task and its history" },
  args: { ...refArg, ...urlArg, ...outputArgs },
  async run({ args }) {
    const json = wantsJson(args);
    const t = await getTask(String(args.ref), resolveTarget(args.url));
    if (json) return printJson(t);
    const lines = [
      `${t.alias}  ${t.goal}`,
      `  status:    ${t.status}`,
      `  priority:  ${t.priority}`,
      `  assignee:  ${dash(t.assignee)}`,
      `  domain:    ${t.domain}`,
      `  labels:    ${t.labels.length ? t.labels.join(", ") : "—"}`,
      `  thread:    ${t.thread}`,
    ];
    if (t.criteria) lines.push(`  criteria:  ${t.criteria}`);
    if (t.depends_on.length) lines.push(`  depends:   ${t.depends_on.join(", ")}`);
    if (t.commit) lines.push(`  commit:    ${t.commit}${t.repo ? ` (${t.repo})` : ""}`);
    if (t.forced) lines.push("  forced:    done with --force (completion gate skipped)");
    lines.push("  history:");
    for (const h of t.history) {
      const move = h.from === null ? h.to : h.from === h.to ? h.to : `${h.from} → ${h.to}`;
      lines.push(`    ${when(h.at)}  ${h.event.padEnd(8)} ${move.padEnd(20)} ${h.actor}${h.note ? `  ${h.note}` : ""}`);
    }
    out(lines.join("\n"));
  },
});

const tree = defineCommand({
  meta: { name: "tree", description: "Show a task with the tasks it depends on" },
  args: { ...refArg, ...urlArg, ...outputArgs },
  async run({ args }) {
    const target = resolveTarget(args.url);
    const seen = new Set<string>();
    const walk = async (ref: string, depth: number): Promise<any> => {
      let t: Task;
      try {
        t = await getTask(ref, target);
      } catch (err) {
        // A dependency that names no task is shown as such; the root, or a daemon error, is an error.
        if (depth === 0 || !(err instanceof DaemonError) || err.code !== "TASK_NOT_FOUND") throw err;
        return { alias: ref, missing: true, depends_on: [] };
      }
      if (seen.has(t.thread)) return { alias: t.alias, status: t.status, goal: t.goal, cycle: true, depends_on: [] };
      seen.add(t.thread);
      const deps = depth < 16 ? await Promise.all(t.depends_on.map((d) => walk(d, depth + 1))) : [];
      return { alias: t.alias, status: t.status, goal: t.goal, depends_on: deps };
    };
    const root = await walk(String(args.ref), 0);
    if (wantsJson(args)) return printJson(root);
    const lines: string[] = [];
    const draw = (n: any, prefix: string, last: boolean, top: boolean) => {
      const label = n.missing ? `${n.alias}  (no such task)` : `${n.alias}  ${n.status}  ${clip(n.goal, 60)}${n.cycle ? "  (cycle)" : ""}`;
      lines.push(top ? label : `${prefix}${last ? "└─ " : "├─ "}${label}`);
      const next = top ? "" : prefix + (last ? "   " : "│  ");
      n.depends_on.forEach((c: any, i: number) => draw(c, next, i === n.depends_on.length - 1, false));
    };
    draw(root, "", true, true);
    out(lines.join("\n"));
  },
});

interface VerbSpec {
  verb: TaskVerb;
  description: string;
  args?: Record<string, any>;
  /** Body fields from the flags alone, worked out before the daemon is asked anything; may throw. */
  fromFlags?: (args: any, rawArgs: string[]) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Body fields that depend on the task as it stands (a verdict names who ran done). */
  fromTask?: (args: any, task: Task) => Record<string, unknown>;
}

const reasonArg = { reason: { type: "string", description: "Why (kept in the task's history)" } } as const;

/** One status verb: resolve the task, write the event record, print the new status. */
function verbCommand(spec: VerbSpec) {
  const needsReason = REASON_REQUIRED.has(spec.verb);
  return defineCommand({
    meta: { name: spec.verb, description: spec.description },
    args: { ...refArg, ...(needsReason ? reasonArg : {}), ...(spec.args ?? {}), ...actorArg, ...urlArg, ...outputArgs },
    async run({ args, rawArgs }) {
      const json = wantsJson(args);
      if (needsReason && !args.reason) throw new UsageError(`'task ${spec.verb}' needs a reason`, `pass --reason "..."`);
      const flagged = await spec.fromFlags?.(args, rawArgs);
      const target = resolveTarget(args.url);
      const actor = actorOf(args.actor);
      const task = await getTask(String(args.ref), target);
      const body: Record<string, unknown> = { task_event: spec.verb, ...(args.reason ? { reason: args.reason } : {}), ...flagged, ...spec.fromTask?.(args, task) };
      const verdict = spec.verb === "approve" || spec.verb === "reject";
      const done = verdict ? [...task.history].reverse().find((h) => h.event === "done") : undefined;
      const record = {
        act: verdict ? "KNOW" : "DO",
        actor,
        thread: task.thread,
        body,
        ...(done ? { judged_by: done.record, parents: [done.record] } : {}),
      };
      await call("POST", "/v1/records", record, target);
      const after = await getTask(task.thread, target);
      if (json) return printJson(after);
      const gate = spec.verb === "done" ? (after.forced ? "  (--force: completion gate skipped)" : after.commit ? `  (commit ${after.commit.slice(0, 12)})` : "") : "";
      out(`${after.alias}: ${task.status} → ${after.status}${gate}`);
    },
  });
}

async function completionGate(args: { force?: boolean; repo?: string }): Promise<Record<string, unknown>> {
  const { inspectTree, uncommittedError } = await import("../lib/tasks/git-gate");
  const dir = args.repo ?? process.cwd();
  if (args.force) {
    // --force skips the check, but a commit we can read is still worth recording.
    try {
      const s = inspectTree(dir);
      return { forced: true, ...(s.inRepo ? { repo: s.repo, ...(s.commit ? { commit: s.commit } : {}) } : {}) };
    } catch {
      return { forced: true };
    }
  }
  const s = inspectTree(dir);
  if (!s.inRepo) return {};
  if (s.changed.length) throw uncommittedError(s);
  if (s.untracked.length) process.stderr.write(`note: ${s.untracked.length} untracked file(s) in ${s.repo} do not block 'done'\n`);
  return { repo: s.repo, ...(s.commit ? { commit: s.commit } : {}) };
}

function parseSet(pairs: string[]): Record<string, unknown> {
  const set: Record<string, unknown> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq < 1) throw new UsageError(`--set '${pair}' is not key=value`, "e.g. --set priority=high --set goal='New goal'");
    const key = pair.slice(0, eq);
    const value = pair.slice(eq + 1);
    if (key === "labels") set.labels = value.split(",").map((s) => s.trim()).filter(Boolean);
    else if (key === "assignee") set.assignee = value === "" ? null : value.replace(/^@/, "");
    else if (["goal", "priority", "domain", "criteria"].includes(key)) set[key] = value;
    else throw new UsageError(`--set cannot change '${key}'`, "editable fields: goal, priority, labels, assignee, domain, criteria");
  }
  if (set.priority !== undefined && !(PRIORITIES as readonly string[]).includes(set.priority as string)) {
    throw new UsageError(`invalid priority '${set.priority}'`, `use one of ${PRIORITIES.join(", ")}`);
  }
  return set;
}

const VERBS: VerbSpec[] = [
  { verb: "start", description: "Start work on a task (inbox/blocked/deferred → active)" },
  {
    verb: "done",
    description: "Submit a task for review (active → review); refuses while the git tree has uncommitted changes",
    args: {
      summary: { type: "string", description: "What was done" },
      domain: { type: "string", description: "Domain of the work (default: the task's)" },
      force: { type: "boolean", description: "Skip the uncommitted-changes check (recorded on the task)" },
      repo: { type: "string", description: "Git work tree to check (default: the current directory)" },
    },
    fromFlags: async (a) => ({ ...(a.summary ? { summary: a.summary } : {}), ...(a.domain ? { domain: a.domain } : {}), ...(await completionGate(a)) }),
  },
  { verb: "fail", description: "Mark a task failed (needs --reason)" },
  {
    verb: "approve",
    description: "Accept a task in review (another actor than the one who ran done)",
    args: { domain: { type: "string", description: "Trust domain (default: the task's)" }, notes: { type: "string", description: "Review notes" } },
    fromTask: (a, t) => ({ verdict: "accept", domain: a.domain ?? t.domain, ...(t.done_by ? { subject: t.done_by } : {}), ...(a.notes ? { notes: a.notes } : {}) }),
  },
  {
    verb: "reject",
    description: "Reject a task in review (needs --reason)",
    args: { domain: { type: "string", description: "Trust domain (default: the task's)" } },
    fromTask: (a, t) => ({ verdict: "reject", domain: a.domain ?? t.domain, ...(t.done_by ? { subject: t.done_by } : {}) }),
  },
  { verb: "block", description: "Block a task (needs --reason)" },
  { verb: "defer", description: "Defer a task (needs --reason)" },
  { verb: "cancel", description: "Cancel a task (needs --reason)" },
  { verb: "reopen", description: "Reopen a finished task (needs --reason)" },
  {
    verb: "comment",
    description: "Add a comment to a task's history",
    args: { text: { type: "positional", required: true, description: "The comment" } },
    fromFlags: (a) => ({ text: a.text }),
  },
  {
    verb: "handoff",
    description: "Hand a task to another actor (it becomes the assignee)",
    args: { to: { type: "string", required: true, description: "The new assignee's DID (a leading @ is dropped)" } },
    fromFlags: (a) => ({ to: String(a.to).replace(/^@/, "") }),
  },
  {
    verb: "edit",
    description: "Change a task's fields: --set key=value (goal, priority, labels, assignee, domain, criteria)",
    args: { set: { type: "string", description: "key=value (repeat)", required: true } },
    fromFlags: (_, rawArgs) => ({ set: parseSet(repeated(rawArgs, "set")) }),
  },
];

export default defineCommand({
  meta: { name: "task", description: "Tasks: threads with a status, a completion gate and a reviewer" },
  subCommands: {
    add,
    list,
    show,
    tree,
    ...Object.fromEntries(VERBS.map((v) => [v.verb, verbCommand(v)])),
    ...fanoutCommands,
  },
});

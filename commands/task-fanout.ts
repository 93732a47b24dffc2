// spl task fan-out|fan-out cancel|join-status|retry (README "Fan-out"): everything is checked here before the
// one parent INTEND is written (descriptors, depends= cycles, targets against the fleet registry,
// the join type-checked in the `join` CEL context), so bad input never leaves a partial fan-out.
// The coordinator's fan-out service does the rest: spawn, collect reports, write the join.
import { defineCommand } from "citty";
import { call, DaemonError, resolveTarget, urlArg, type Target } from "../lib/client";
import { out, outputArgs, printJson, wantsJson } from "../lib/cli/output";
import { loadConfig } from "../lib/config";
import { UsageError, UserError } from "../lib/errors";
import { homePaths } from "../lib/paths";
import type { Task } from "../lib/tasks/fold";
import type { Child } from "../lib/fanout/fold";
import { joinExpression, parseSubtasks, pickWorker } from "../lib/fanout/spec";
import { CANCEL, RETRY } from "../lib/fanout/fold";
import { repeated } from "../lib/cli/repeated";

const refArg = { ref: { type: "positional", required: true, description: "The parent task's alias (TSK-0001) or thread id" } } as const;
const actorArg = { actor: { type: "string", description: "Actor DID (default: [identity] actor in config.toml)" } } as const;
const actorOf = (flag: string | undefined) => flag ?? loadConfig(homePaths().config).identity.actor;
const short = (thread: string) => `${thread.slice(0, 11)}…`;

async function checkJoin(join: string): Promise<void> {
  if (/^k_of_n:/.test(join) && !/^k_of_n:[1-9]\d*$/.test(join)) throw new UsageError(`--join '${join}' needs a positive K`, "e.g. --join k_of_n:2");
  const { checkExpression } = await import("../lib/engine/cel");
  const checked = checkExpression("join", joinExpression(join));
  if (!checked.ok) throw new UsageError(`--join '${join}' does not type-check: ${checked.error}`, `use all, any, k_of_n:K, or a bool CEL expression over children and parent, e.g. 'children.filter(c, c.verdict == "accept").size() >= 2'`);
}

async function getFanout(ref: string, target: Target): Promise<{ task: Task; fanout: any }> {
  const task: Task = await call("GET", `/v1/tasks/${encodeURIComponent(ref)}`, undefined, target);
  try {
    return { task, fanout: await call("GET", `/v1/fanouts/${encodeURIComponent(task.thread)}`, undefined, target) };
  } catch (err) {
    if (err instanceof DaemonError && err.code === "FANOUT_NOT_FOUND") throw new UserError(`task ${task.alias} has no fan-out`, `start one: spl task fan-out ${task.alias} --subtask 'goal=...,target=least-loaded-worker'`);
    throw err;
  }
}

const fanOut = defineCommand({
  meta: { name: "fan-out", description: "Split a task into subtasks run on fleet workers, closed by a join" },
  args: {
    ...refArg,
    subtask: { type: "string", required: true, description: "'goal=..,target=..,budget=..,timeout=..,depends=0+1' (repeat; target: worker-<name>, specific:<did>, least-loaded-worker, round-robin)" },
    join: { type: "string", description: "all (default), any, k_of_n:K, or a CEL expression over children and parent" },
    ...actorArg,
    ...urlArg,
    ...outputArgs,
  },
  async run({ args, rawArgs }) {
    const json = wantsJson(args);
    const subtasks = parseSubtasks(repeated(rawArgs, "subtask"));
    const join = args.join ?? "all";
    await checkJoin(join);
    const target = resolveTarget(args.url);
    const task: Task = await call("GET", `/v1/tasks/${encodeURIComponent(String(args.ref))}`, undefined, target);
    const fleet = await call("GET", "/v1/fleet/status", undefined, target);
    subtasks.forEach((s, i) => {
      const picked = pickWorker(s.target, fleet.instances, String(i));
      if (typeof picked === "string") throw new UserError(`--subtask ${i}: ${picked}`);
    });
    const body = { subtasks, join, namespace: task.namespace || "default", goal: task.goal, text: `fan-out: ${task.goal}` };
    const rec = await call("POST", "/v1/records", { act: "INTEND", actor: actorOf(args.actor), thread: task.thread, body, parents: [] }, target);
    if (json) return printJson({ object: "fanout", thread: task.thread, record: rec.id, subtasks: subtasks.length, join });
    out(
      [
        "◇ Fan-out parent INTEND created",
        `  thread:   ${task.thread}`,
        `  record:   ${rec.id}`,
        `  subtasks: ${subtasks.length}`,
        `  join:     ${join}`,
        "",
        "  The engine spawns a child INTEND per subtask on its worker and",
        "  writes the fulfilling KNOW when the join holds.",
        "",
        `Watch progress: spl task join-status ${task.alias}`,
      ].join("\n"),
    );
  },
});

type ShownChild = Child & { attempts: Array<Child["attempts"][number] & { send: { state: string; tries: number; next_at: number | null; error: string | null } | null }> };

/** What join-status says of one subtask: its result, how its attempt is going, or what it waits for. */
function childLines(c: ShownChild, all: Child[]): string[] {
  const r = c.result;
  if (r) {
    const where = r.worker === c.attempts[r.attempt - 1]?.worker && c.attempts[r.attempt - 1]?.name ? ` on ${c.attempts[r.attempt - 1]!.name}` : "";
    if (r.verdict === "unrouted" || r.verdict === "cancelled") return [`${r.verdict}${where}: ${r.reason ?? r.summary}`, ...(r.fix ? [`fix: ${r.fix}`] : [])];
    return [`${r.verdict} ($${r.cost_usd.toFixed(2)}, ${r.wall_time_secs}s)${r.verdict !== "accept" && r.reason ? `: ${r.reason}` : ""}`];
  }
  const a = c.attempts[c.attempts.length - 1];
  if (c.spawned && a) {
    const n = a.n > 1 ? ` (attempt ${a.n})` : "";
    const s = a.send;
    if (s?.state === "sending" && s.tries > 0) {
      const next = s.next_at === null ? "" : `, next try in ${Math.max(0, s.next_at - Math.floor(Date.now() / 1000))}s`;
      return [`sending to ${a.name || a.worker}${n}: ${s.tries} tr${s.tries === 1 ? "y" : "ies"} failed${next}`, `last error: ${s.error}`];
    }
    return [`in progress${n}`];
  }
  const waiting = c.depends_on.filter((d) => all[d]?.result?.verdict !== "accept");
  return [waiting.length ? `pending spawn (after ${waiting.join(", ")})` : "pending spawn"];
}

const joinStatus = defineCommand({
  meta: { name: "join-status", description: "Show a fan-out's subtasks, their workers and the join" },
  args: { ...refArg, ...urlArg, ...outputArgs },
  async run({ args }) {
    const { fanout: f } = await getFanout(String(args.ref), resolveTarget(args.url));
    if (wantsJson(args)) return printJson(f);
    const children = f.children as ShownChild[];
    const lines = [
      `Fan-out join status: ${short(f.thread)}`,
      `  Subtasks:        ${children.length}`,
      `  Spawned:         ${children.filter((c) => c.spawned || c.result).length} / ${children.length}`,
      `  Completed:       ${children.filter((c) => c.result).length} / ${children.length}`,
      `  Join predicate:  ${f.join}`,
      `  Join complete:   ${f.complete ? `yes (${f.complete.verdict})` : f.cancel ? "cancelling" : "no"}`,
      "",
      "  Per-subtask:",
    ];
    for (const c of children) {
      const worker = c.result?.worker || c.spawned?.worker;
      lines.push(`    [${c.index}] ${c.goal} → ${worker ? `specific:${worker}` : c.target}`, ...childLines(c, children).map((l) => `        ${l}`));
    }
    out(lines.join("\n"));
  },
});

const retry = defineCommand({
  meta: { name: "retry", description: "Send one subtask of a fan-out again (to the least-loaded live worker)" },
  args: {
    ...refArg,
    subtask: { type: "string", required: true, description: "The subtask's index (see join-status)" },
    hint: { type: "string", description: "A note kept with the retry" },
    ...actorArg,
    ...urlArg,
    ...outputArgs,
  },
  async run({ args }) {
    const index = Number(args.subtask);
    const target = resolveTarget(args.url);
    const { task, fanout: f } = await getFanout(String(args.ref), target);
    if (!Number.isInteger(index) || index < 0 || index >= f.children.length) throw new UsageError(`--subtask ${args.subtask} is not a subtask of ${task.alias}`, `give an index from 0 to ${f.children.length - 1} (spl task join-status ${task.alias})`);
    if (f.complete) throw new UserError(`the fan-out on ${task.alias} is already joined (${f.complete.verdict})`, `start a new one with spl task fan-out`);
    const body = { topic: RETRY, parent_record_id: f.record, index, ...(args.hint ? { hint: args.hint } : {}) };
    await call("POST", "/v1/records", { act: "LEARN", actor: actorOf(args.actor), thread: f.thread, body }, target);
    if (wantsJson(args)) return printJson({ object: "fanout_retry", thread: f.thread, index });
    out(`◇ Retry requested for subtask ${index} on ${short(f.thread)}\nWatch progress: spl task join-status ${task.alias}`);
  },
});

const cancel = defineCommand({
  meta: { name: "cancel", description: "Cancel a fan-out: pending sends end, workers stop its children, the join closes cancelled" },
  args: { ...refArg, reason: { type: "string", description: "Why (kept on the parent thread)" }, ...actorArg, ...urlArg, ...outputArgs },
  async run({ args }) {
    const target = resolveTarget(args.url);
    const { task, fanout: f } = await getFanout(String(args.ref), target);
    if (f.complete) throw new UserError(`the fan-out on ${task.alias} is already joined (${f.complete.verdict})`, "nothing to cancel");
    const body = { topic: CANCEL, parent_record_id: f.record, reason: args.reason ?? "cancelled by spl task fan-out cancel" };
    await call("POST", "/v1/records", { act: "LEARN", actor: actorOf(args.actor), thread: f.thread, body }, target);
    if (wantsJson(args)) return printJson({ object: "fanout_cancel", thread: f.thread, record: f.record });
    out(`◇ Cancel requested for the fan-out on ${short(f.thread)}\nWatch progress: spl task join-status ${task.alias}`);
  },
});

export const fanoutCommands = { "fan-out": { ...fanOut, subCommands: { cancel } }, "join-status": joinStatus, retry };

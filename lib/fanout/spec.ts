// What a fan-out is, before anything is written (README "Fan-out"): the `--subtask` descriptors, their
// `depends=` order (refused when it loops), the join predicate as CEL over `children`/`parent`,
// the content-addressed child thread and the pick of a worker for a target.
import { UsageError } from "../errors";
import { sha256Hex } from "../records/id";

export interface Subtask {
  goal: string;
  target: string;
  budget_usd: number | null;
  timeout_secs: number;
  depends_on: number[];
}

export const DEFAULT_TIMEOUT_SECS = 600;
/** Limits (README "Fan-out"): a parent INTEND over them is refused with 400 and nothing is written. */
export const MAX_SUBTASKS = 1000;
export const MAX_GOAL_BYTES = 256 * 1024;
export const MAX_TIMEOUT_SECS = 7 * 86_400;
const MAX_TARGET_CHARS = 256;
const MAX_JOIN_CHARS = 4096;
/** A child with no report this long after its timeout is resolved `timeout` by the coordinator. */
export const REPORT_GRACE_SECS = 30;
export const STRATEGIES = ["least-loaded-worker", "round-robin"] as const;
/** The target of the rule `spl fleet start` gives new workers for fan-out children (echo adapter). */
export const DEFAULT_CHILD_TARGET = "did:sync:agent:echo";
const SUBTASK_KEYS = ["goal", "target", "budget", "timeout", "depends"];
const EXAMPLE = `--subtask 'goal=Write section A,target=least-loaded-worker,timeout=600,depends=0+1'`;

/** One `--subtask 'k=v,...'` (index = its position); throws a UsageError naming the fix. */
export function parseSubtask(text: string, index: number, count: number): Subtask {
  const fields: Record<string, string> = {};
  for (const part of text.split(",")) {
    const eq = part.indexOf("=");
    const key = part.slice(0, eq).trim();
    if (eq < 1 || !SUBTASK_KEYS.includes(key)) throw new UsageError(`--subtask ${index} '${text}': '${part}' is not one of ${SUBTASK_KEYS.join("|")}=value`, `e.g. ${EXAMPLE}`);
    if (key in fields) throw new UsageError(`--subtask ${index} gives '${key}' twice`, `e.g. ${EXAMPLE}`);
    fields[key] = part.slice(eq + 1).trim();
  }
  if (!fields.goal) throw new UsageError(`--subtask ${index} has no goal`, `e.g. ${EXAMPLE}`);
  const tooBig = goalTooBig(fields.goal);
  if (tooBig) throw new UsageError(`--subtask ${index}: ${tooBig}`, GOAL_FIX);
  if (!fields.target) throw new UsageError(`--subtask ${index} has no target`, `use worker-<name>, specific:<did>, ${STRATEGIES.join(" or ")}`);
  const number = (key: string, v: string, integer: boolean) => {
    const n = Number(v);
    if (v === "" || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new UsageError(`--subtask ${index}: ${key}=${v} is not a positive ${integer ? "whole " : ""}number`, `e.g. ${key}=${key === "budget" ? "0.50" : "600"}`);
    return n;
  };
  const depends = fields.depends ? fields.depends.split("+").map((d) => d.trim()) : [];
  const depends_on = depends.map((d) => {
    const n = Number(d);
    if (d === "" || !Number.isInteger(n) || n < 0 || n >= count || n === index) throw new UsageError(`--subtask ${index}: depends=${fields.depends} names no other subtask`, `give 0-based indices of other --subtask flags joined by +, e.g. depends=0+1`);
    return n;
  });
  const timeout = fields.timeout ? number("timeout", fields.timeout, true) : DEFAULT_TIMEOUT_SECS;
  if (timeout > MAX_TIMEOUT_SECS) throw new UsageError(`--subtask ${index}: timeout=${fields.timeout} is more than the limit of ${MAX_TIMEOUT_SECS} s (7 days)`, "e.g. timeout=600");
  return {
    goal: fields.goal,
    target: fields.target,
    budget_usd: fields.budget ? number("budget", fields.budget, false) : null,
    timeout_secs: timeout,
    depends_on: [...new Set(depends_on)],
  };
}

const GOAL_FIX = "put long inputs where the worker can read them (a file, a URL) and name them in the goal";
const goalTooBig = (goal: string) => {
  const bytes = Buffer.byteLength(goal, "utf8");
  return bytes > MAX_GOAL_BYTES ? `goal is ${bytes} bytes, more than the limit of ${MAX_GOAL_BYTES}` : null;
};

/** The first `depends_on` loop, as `0 → 2 → 1 → 0`, or null. */
function dependencyCycle(subtasks: readonly Pick<Subtask, "depends_on">[]): string | null {
  const state = new Array<0 | 1 | 2>(subtasks.length).fill(0); // unvisited, on the path, done
  const visit = (i: number, path: number[]): string | null => {
    if (state[i] === 2) return null;
    if (state[i] === 1) return [...path.slice(path.indexOf(i)), i].join(" → ");
    state[i] = 1;
    for (const d of subtasks[i]!.depends_on) {
      const cycle = visit(d, [...path, i]);
      if (cycle) return cycle;
    }
    state[i] = 2;
    return null;
  };
  for (let i = 0; i < subtasks.length; i++) {
    const cycle = visit(i, []);
    if (cycle) return cycle;
  }
  return null;
}

/** All descriptors; a `depends=` loop is refused here, naming it. */
export function parseSubtasks(texts: readonly string[]): Subtask[] {
  if (!texts.length) throw new UsageError("a fan-out needs at least one --subtask", `e.g. ${EXAMPLE}`);
  if (texts.length > MAX_SUBTASKS) throw new UsageError(`${texts.length} --subtask flags, more than the limit of ${MAX_SUBTASKS}`, "split the work into several fan-outs");
  const subtasks = texts.map((t, i) => parseSubtask(t, i, texts.length));
  const cycle = dependencyCycle(subtasks);
  if (cycle) throw new UsageError(`--subtask depends= form a cycle: ${cycle}`, "a subtask may only depend on subtasks that do not depend on it");
  return subtasks;
}

/**
 * Why a fan-out parent INTEND's body cannot be run (the daemon's check of what any client posts,
 * README "Fan-out": limits), or null. The CLI refuses the same things earlier, flag by flag.
 */
export function parentProblem(body: Record<string, unknown>): string | null {
  const list = body.subtasks;
  if (!Array.isArray(list) || list.length === 0) return "body.subtasks must be a non-empty list of {goal, target, timeout_secs, depends_on, budget_usd}";
  if (list.length > MAX_SUBTASKS) return `${list.length} subtasks, more than the limit of ${MAX_SUBTASKS}`;
  for (let i = 0; i < list.length; i++) {
    const s = list[i] as Record<string, unknown> | null;
    const at = `subtask ${i}`;
    if (!s || typeof s !== "object" || Array.isArray(s)) return `${at} is not an object`;
    if (typeof s.goal !== "string" || s.goal === "") return `${at} has no goal`;
    const big = goalTooBig(s.goal);
    if (big) return `${at}: ${big}`;
    if (typeof s.target !== "string" || s.target === "" || s.target.length > MAX_TARGET_CHARS) return `${at}: target must be a worker name, specific:<did>, ${STRATEGIES.join(" or ")}`;
    if (!Number.isInteger(s.timeout_secs) || (s.timeout_secs as number) < 1 || (s.timeout_secs as number) > MAX_TIMEOUT_SECS) return `${at}: timeout_secs must be a whole number of seconds from 1 to ${MAX_TIMEOUT_SECS}`;
    if (s.budget_usd != null && (typeof s.budget_usd !== "number" || !(s.budget_usd > 0))) return `${at}: budget_usd must be a positive number or null`;
    const deps = s.depends_on;
    if (!Array.isArray(deps) || !deps.every((d) => Number.isInteger(d) && d >= 0 && d < list.length && d !== i)) return `${at}: depends_on must list indices of other subtasks`;
  }
  const cycle = dependencyCycle(list as Pick<Subtask, "depends_on">[]);
  if (cycle) return `depends_on form a cycle: ${cycle}`;
  if (body.join !== undefined && (typeof body.join !== "string" || body.join === "" || body.join.length > MAX_JOIN_CHARS)) return `join must be all, any, k_of_n:K or a CEL expression of at most ${MAX_JOIN_CHARS} characters`;
  return null;
}

/** Why a child INTEND a worker is sent cannot be run, or null. */
export function childProblem(body: Record<string, unknown>): string | null {
  const goal = body.goal;
  if (typeof goal !== "string" || goal === "") return "a fan-out child needs body.goal";
  return goalTooBig(goal);
}

/** The join as CEL in the `join` context; null when a shorthand is malformed. */
export function joinExpression(join: string): string {
  if (join === "all") return 'children.all(c, c.verdict == "accept")';
  if (join === "any") return 'children.exists(c, c.verdict == "accept")';
  const k = /^k_of_n:(\d+)$/.exec(join);
  if (k) return `children.filter(c, c.verdict == "accept").size() >= ${Number(k[1])}`;
  return join;
}

/** `any` and `k_of_n` may close on a partial report; `all` and CEL wait for every child. */
export const closesEarly = (join: string) => join === "any" || join.startsWith("k_of_n:");

export const childThread = (parentRecord: string, index: number, goal: string) => `th_${sha256Hex(`${parentRecord}:${index}:${goal}`)}`;

export interface Candidate {
  did: string;
  name: string;
  endpoint: string;
  role: string;
  status: string;
  active_dispatches: number;
  uptime_secs: number;
}

/**
 * The live worker a target names, or an error saying which members there are. `load` adds the
 * children this coordinator has in flight per DID (heartbeats lag behind a burst of spawns).
 */
export function pickWorker(target: string, members: readonly Candidate[], seed: string, load: (did: string) => number = () => 0): Candidate | string {
  const workers = members.filter((m) => m.role !== "coordinator" && m.status === "live").sort((a, b) => (a.did < b.did ? -1 : 1));
  const names = () => workers.map((m) => m.name).sort().join(", ") || "none live";
  if (target === "least-loaded-worker" || target === "round-robin") {
    if (!workers.length) return `no live worker for '${target}' — start one (spl fleet start --workers 2) and check spl fleet list`;
    if (target === "round-robin") return workers[parseInt(sha256Hex(seed).slice(0, 8), 16) % workers.length]!;
    const cost = (m: Candidate) => m.active_dispatches + load(m.did);
    return workers.reduce((best, m) => (cost(m) < cost(best) || (cost(m) === cost(best) && m.uptime_secs > best.uptime_secs) ? m : best));
  }
  const did = target.startsWith("specific:") ? target.slice("specific:".length) : null;
  const found = members.find((m) => (did ? m.did === did : m.name === target) && m.role !== "coordinator");
  if (!found) return `unknown target '${target}' — use a worker name (${names()}), specific:<did>, ${STRATEGIES.join(" or ")}`;
  if (found.status !== "live") return `target '${target}' is ${found.status} — start it again, or pick another worker (${names()})`;
  return found;
}

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
/** A child with no report this long after its timeout is resolved `timeout` by the coordinator. */
export const REPORT_GRACE_SECS = 30;
export const STRATEGIES = ["least-loaded-worker", "round-robin"] as const;
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
  return {
    goal: fields.goal,
    target: fields.target,
    budget_usd: fields.budget ? number("budget", fields.budget, false) : null,
    timeout_secs: fields.timeout ? number("timeout", fields.timeout, true) : DEFAULT_TIMEOUT_SECS,
    depends_on: [...new Set(depends_on)],
  };
}

/** All descriptors; a `depends=` loop is refused here, naming it. */
export function parseSubtasks(texts: readonly string[]): Subtask[] {
  if (!texts.length) throw new UsageError("a fan-out needs at least one --subtask", `e.g. ${EXAMPLE}`);
  const subtasks = texts.map((t, i) => parseSubtask(t, i, texts.length));
  const state = new Array<0 | 1 | 2>(subtasks.length).fill(0); // unvisited, on the path, done
  const visit = (i: number, path: number[]): void => {
    if (state[i] === 2) return;
    if (state[i] === 1) throw new UsageError(`--subtask depends= form a cycle: ${[...path.slice(path.indexOf(i)), i].join(" → ")}`, "a subtask may only depend on subtasks that do not depend on it");
    state[i] = 1;
    for (const d of subtasks[i]!.depends_on) visit(d, [...path, i]);
    state[i] = 2;
  };
  subtasks.forEach((_, i) => visit(i, []));
  return subtasks;
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
  const names = workers.map((m) => m.name).sort().join(", ") || "none live";
  if (target === "least-loaded-worker" || target === "round-robin") {
    if (!workers.length) return `no live worker for '${target}' — start one (spl fleet start --workers 2) and check spl fleet list`;
    if (target === "round-robin") return workers[parseInt(sha256Hex(seed).slice(0, 8), 16) % workers.length]!;
    const cost = (m: Candidate) => m.active_dispatches + load(m.did);
    return workers.reduce((best, m) => (cost(m) < cost(best) || (cost(m) === cost(best) && m.uptime_secs > best.uptime_secs) ? m : best));
  }
  const did = target.startsWith("specific:") ? target.slice("specific:".length) : null;
  const found = members.find((m) => (did ? m.did === did : m.name === target) && m.role !== "coordinator");
  if (!found) return `unknown target '${target}' — use a worker name (${names}), specific:<did>, ${STRATEGIES.join(" or ")}`;
  if (found.status !== "live") return `target '${target}' is ${found.status} — start it again, or pick another worker (${names})`;
  return found;
}

// Tasks as a fold over the record log. A task is a thread opened by an INTEND with
// body.task = true; every later DO/KNOW on it carrying body.task_event moves it through the
// status machine (lifecycle.ts). Nothing about a task is stored apart from its records, so a
// restart (or kill -9) rebuilds exactly the same table from the log.
import type { Envelope, JsonObject, StoredRecord } from "../records/types";
import {
  allowedVerbs,
  isPriority,
  isTaskVerb,
  nextStatus,
  REASON_REQUIRED,
  type TaskPriority,
  type TaskStatus,
  type TaskVerb,
} from "./lifecycle";

export const DEFAULT_ALIAS_PREFIX = "TSK";
const ALIAS = /^[A-Za-z][A-Za-z0-9_]*-[A-Za-z0-9_-]+$/;
const MAX_GOAL = 4096;

export interface TaskEvent {
  record: string;
  sequence: number;
  at: number;
  actor: string;
  event: "add" | TaskVerb;
  from: TaskStatus | null;
  to: TaskStatus;
  /** reason, summary or notes, whichever the record carried. */
  note?: string;
}

export interface Task {
  alias: string;
  thread: string;
  goal: string;
  status: TaskStatus;
  priority: TaskPriority;
  labels: string[];
  assignee: string | null;
  domain: string;
  namespace: string;
  criteria: string | null;
  depends_on: string[];
  created_by: string;
  created_at: number;
  updated_at: number;
  /** The actor who ran the last `done`: the one who may not judge it. */
  done_by: string | null;
  /** What the last `done` recorded from the completion gate. */
  commit: string | null;
  repo: string | null;
  forced: boolean;
  history: TaskEvent[];
}

/** Why a record may not be written, as the HTTP answer will carry it. */
export interface TaskRefusal {
  status: number;
  code: string;
  message: string;
}

const refuse = (status: number, code: string, message: string): TaskRefusal => ({ status, code, message });

/** Records the task fold reads, as SQL over the records table (rebuild) and as a predicate (commit). */
export const TASK_RECORDS_SQL = `((act = 'INTEND' AND instr(body, '"task":true') > 0) OR (act IN ('DO', 'KNOW') AND instr(body, '"task_event"') > 0))`;

export function isTaskRecord(rec: Envelope): boolean {
  if (rec.act === "INTEND") return rec.body.task === true;
  return (rec.act === "DO" || rec.act === "KNOW") && rec.body.task_event !== undefined;
}

const str = (v: unknown): string | undefined => (typeof v === "string" && v !== "" ? v : undefined);
const strList = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : []);

/** The note a transition record carries, for history and `task show`. */
function noteOf(body: JsonObject): string | undefined {
  return str(body.reason) ?? str(body.summary) ?? str(body.notes) ?? str(body.text);
}

export class TaskTable {
  private readonly byThread = new Map<string, Task>();
  private readonly byAlias = new Map<string, Task>();
  private minted = 0;

  constructor(private readonly aliasPrefix = DEFAULT_ALIAS_PREFIX) {}

  get size(): number {
    return this.byThread.size;
  }

  /** A task by alias (case-insensitive) or thread id. */
  get(ref: string): Task | undefined {
    return this.byAlias.get(ref.toUpperCase()) ?? this.byThread.get(ref);
  }

  /** Tasks in creation order; closed ones (approved, cancelled) only with `all`. */
  list(all = false): Task[] {
    const out = [...this.byThread.values()];
    return all ? out : out.filter((t) => t.status !== "approved" && t.status !== "cancelled");
  }

  /** Folds one stored record (the caller filtered with isTaskRecord or TASK_RECORDS_SQL). */
  apply(rec: StoredRecord): void {
    if (rec.act === "INTEND") return this.open(rec);
    const task = this.byThread.get(rec.thread);
    const verb = rec.body.task_event;
    if (!task || !isTaskVerb(verb)) return;
    const to = nextStatus(task.status, verb);
    if (to === null) return; // refused at write time; a record that slipped past changes nothing
    if (verb === "edit") this.edit(task, rec.body.set);
    if (verb === "handoff" && str(rec.body.to)) task.assignee = str(rec.body.to)!;
    if (verb === "done") {
      task.done_by = rec.actor;
      task.commit = str(rec.body.commit) ?? null;
      task.repo = str(rec.body.repo) ?? null;
      task.forced = rec.body.forced === true;
    }
    task.history.push({ record: rec.id, sequence: rec.sequence, at: rec.created_at, actor: rec.actor, event: verb, from: task.status, to, note: noteOf(rec.body) });
    task.status = to;
    task.updated_at = rec.created_at;
  }

  private open(rec: StoredRecord): void {
    if (this.byThread.has(rec.thread)) return;
    const b = rec.body;
    let alias = str(b.alias);
    if (!alias || this.byAlias.has(alias.toUpperCase())) alias = this.mint();
    const task: Task = {
      alias,
      thread: rec.thread,
      goal: str(b.goal) ?? "",
      status: "inbox",
      priority: isPriority(b.priority) ? b.priority : "medium",
      labels: strList(b.labels),
      assignee: str(b.assignee) ?? null,
      domain: str(b.domain) ?? "general",
      namespace: str(b.namespace) ?? "default",
      criteria: str(b.criteria) ?? null,
      depends_on: strList(b.depends_on),
      created_by: rec.actor,
      created_at: rec.created_at,
      updated_at: rec.created_at,
      done_by: null,
      commit: null,
      repo: null,
      forced: false,
      history: [{ record: rec.id, sequence: rec.sequence, at: rec.created_at, actor: rec.actor, event: "add", from: null, to: "inbox" }],
    };
    this.byThread.set(rec.thread, task);
    this.byAlias.set(alias.toUpperCase(), task);
  }

  /** The next free PREFIX-NNNN alias. Minted in store order, so a rebuild mints the same ones. */
  private mint(): string {
    for (;;) {
      const alias = `${this.aliasPrefix}-${String(++this.minted).padStart(4, "0")}`;
      if (!this.byAlias.has(alias.toUpperCase())) return alias;
    }
  }

  private edit(task: Task, set: unknown): void {
    if (!set || typeof set !== "object" || Array.isArray(set)) return;
    const s = set as JsonObject;
    if (str(s.goal)) task.goal = str(s.goal)!;
    if (isPriority(s.priority)) task.priority = s.priority;
    if (Array.isArray(s.labels)) task.labels = strList(s.labels);
    if (s.assignee === null || str(s.assignee)) task.assignee = str(s.assignee) ?? null;
    if (str(s.domain)) task.domain = str(s.domain)!;
    if (s.criteria === null || str(s.criteria)) task.criteria = str(s.criteria) ?? null;
  }

  /**
   * Whether `rec` may be written given the table as it stands: the fold's rules, checked
   * before the record is stored so that what is stored always folds. null = allowed.
   */
  check(rec: Envelope): TaskRefusal | null {
    if (!isTaskRecord(rec)) return null;
    const b = rec.body;
    if (rec.act === "INTEND") {
      if (this.byThread.has(rec.thread)) return refuse(409, "TASK_EXISTS", `thread ${rec.thread} is already task ${this.byThread.get(rec.thread)!.alias} — add the task on a new thread`);
      if (!str(b.goal) || (b.goal as string).length > MAX_GOAL) return refuse(400, "INVALID_TASK", `a task needs a goal: a non-empty string of at most ${MAX_GOAL} characters`);
      if (b.priority !== undefined && !isPriority(b.priority)) return refuse(400, "INVALID_PRIORITY", `priority ${JSON.stringify(b.priority)} is not one of critical, high, medium, low`);
      if (b.alias !== undefined) {
        if (typeof b.alias !== "string" || !ALIAS.test(b.alias)) return refuse(400, "INVALID_ALIAS", `alias ${JSON.stringify(b.alias)} must look like PREFIX-0001 (letters, digits, '_' and one '-')`);
        const holder = this.byAlias.get(b.alias.toUpperCase());
        if (holder) return refuse(409, "ALIAS_TAKEN", `alias ${b.alias} is taken by task ${holder.thread} — pick another --alias, or leave it out to get the next ${this.aliasPrefix}-NNNN`);
      }
      return null;
    }
    const task = this.byThread.get(rec.thread);
    if (!task) return refuse(404, "TASK_NOT_FOUND", `thread ${rec.thread} is not a task — see 'spl task list'`);
    const verb = b.task_event;
    if (!isTaskVerb(verb)) return refuse(400, "INVALID_TASK_EVENT", `task_event ${JSON.stringify(verb)} is not a task verb (${allowedVerbs(task.status).join(", ")} are allowed now)`);
    const wantAct = verb === "approve" || verb === "reject" ? "KNOW" : "DO";
    if (rec.act !== wantAct) return refuse(400, "INVALID_TASK_EVENT", `task_event ${verb} is carried by a ${wantAct} record, not ${rec.act}`);
    if (nextStatus(task.status, verb) === null) {
      return refuse(409, "INVALID_TRANSITION", `task ${task.alias} is ${task.status}; '${verb}' is not allowed from ${task.status} (allowed: ${allowedVerbs(task.status).join(", ")})`);
    }
    if (REASON_REQUIRED.has(verb) && !str(b.reason)) return refuse(400, "REASON_REQUIRED", `'${verb}' needs a reason — pass --reason "..."`);
    if ((verb === "approve" || verb === "reject") && rec.actor === task.done_by) {
      return refuse(403, "SELF_APPROVAL", `${rec.actor} ran 'done' on ${task.alias}, so another actor must ${verb} it — ask a reviewer, or pass --actor with their DID`);
    }
    if (verb === "edit" && (b.set === null || typeof b.set !== "object" || Array.isArray(b.set))) {
      return refuse(400, "INVALID_TASK_EVENT", "'edit' needs body.set, an object of fields to change (goal, priority, labels, assignee, domain, criteria)");
    }
    if (verb === "edit" && (b.set as JsonObject).priority !== undefined && !isPriority((b.set as JsonObject).priority)) {
      return refuse(400, "INVALID_PRIORITY", `priority ${JSON.stringify((b.set as JsonObject).priority)} is not one of critical, high, medium, low`);
    }
    return null;
  }
}

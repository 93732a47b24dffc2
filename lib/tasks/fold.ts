// Tasks as a fold over the record log. A task is a thread opened by an INTEND with
// body.task = true; every later DO/KNOW on it carrying body.task_event moves it through the
// status machine (lifecycle.ts). Nothing about a task is stored apart from its records, so a
// restart (or kill -9) rebuilds exactly the same table from the log.
import type { Fold } from "../engine/folds";
import type { Envelope, JsonObject, StoredRecord } from "../records/types";
import {
  allowedVerbs,
  isPriority,
  isTaskVerb,
  PRIORITIES,
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

/** What CEL's task(alias) answers (engine reference 3.0); cost_usd stays 0 until dispatch costs exist. */
export interface TaskFacts {
  status: TaskStatus;
  priority: TaskPriority;
  assigned_to: string;
  age_secs: number;
  cost_usd: number;
  exists: true;
}

export function taskFacts(task: Task, nowSecs: number): TaskFacts {
  return { status: task.status, priority: task.priority, assigned_to: task.assignee ?? "", age_secs: Math.max(0, nowSecs - task.created_at), cost_usd: 0, exists: true };
}

/** Why a record may not be written, as the HTTP answer will carry it. */
export interface TaskRefusal {
  status: number;
  code: string;
  message: string;
}

const refuse = (status: number, code: string, message: string): TaskRefusal => ({ status, code, message });

/** A task-opening INTEND, or a DO/KNOW carrying a task event: what check() and the folds look at. */
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

/**
 * Tasks by thread and alias. An overlay (one with a parent) sees its parent's tasks and copies a
 * task before changing it, so staged records never touch the committed table.
 */
class TaskSet {
  private readonly byThread = new Map<string, Task>();
  private readonly byAlias = new Map<string, Task>();
  private minted: number;

  constructor(
    private readonly aliasPrefix: string,
    private readonly parent?: TaskSet,
  ) {
    this.minted = parent?.minted ?? 0;
  }

  get size(): number {
    return this.byThread.size;
  }

  task(thread: string): Task | undefined {
    return this.byThread.get(thread) ?? this.parent?.task(thread);
  }

  holder(alias: string): Task | undefined {
    const key = alias.toUpperCase();
    return this.byAlias.get(key) ?? this.parent?.holder(key);
  }

  /** This set's own tasks, in creation order. */
  own(): Task[] {
    return [...this.byThread.values()];
  }

  /**
   * Folds one record; false when it changes nothing. A record check() would refuse (one that
   * slipped past the write path) is ignored, so replaying the log gives what the writes saw.
   */
  apply(rec: StoredRecord): boolean {
    if (!isTaskRecord(rec) || this.check(rec) !== null) return false;
    if (rec.act === "INTEND") return this.open(rec);
    const verb = rec.body.task_event as TaskVerb;
    const task = this.writable(this.task(rec.thread)!);
    const to = nextStatus(task.status, verb)!;
    if (verb === "edit") this.edit(task, rec.body.set);
    if (verb === "handoff" && str(rec.body.to)) task.assignee = str(rec.body.to)!;
    if (verb === "done") {
      task.done_by = rec.actor;
      task.commit = str(rec.body.commit) ?? null;
      task.repo = str(rec.body.repo) ?? null;
      task.forced = rec.body.forced === true;
      // `done --domain D` says where the work belongs; the verdict on it is evidence in D.
      if (str(rec.body.domain)) task.domain = str(rec.body.domain)!;
    }
    task.history.push({ record: rec.id, sequence: rec.sequence, at: rec.created_at, actor: rec.actor, event: verb, from: task.status, to, note: noteOf(rec.body) });
    task.status = to;
    task.updated_at = rec.created_at;
    return true;
  }

  /** The task as this set may change it: an overlay changes its own copy. */
  private writable(task: Task): Task {
    if (this.byThread.get(task.thread) === task) return task;
    const copy: Task = { ...task, labels: [...task.labels], depends_on: [...task.depends_on], history: [...task.history] };
    this.byThread.set(copy.thread, copy);
    this.byAlias.set(copy.alias.toUpperCase(), copy);
    return copy;
  }

  private open(rec: StoredRecord): boolean {
    if (this.task(rec.thread)) return false;
    const b = rec.body;
    let alias = str(b.alias);
    if (!alias || this.holder(alias)) alias = this.mint();
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
    return true;
  }

  /** The next free PREFIX-NNNN alias. Minted in store order, so a rebuild mints the same ones. */
  private mint(): string {
    for (;;) {
      const alias = `${this.aliasPrefix}-${String(++this.minted).padStart(4, "0")}`;
      if (!this.holder(alias)) return alias;
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
      if (this.task(rec.thread)) return refuse(409, "TASK_EXISTS", `thread ${rec.thread} is already task ${this.task(rec.thread)!.alias} — add the task on a new thread`);
      if (!str(b.goal) || (b.goal as string).length > MAX_GOAL) return refuse(400, "INVALID_TASK", `a task needs a goal — give a non-empty string of at most ${MAX_GOAL} characters`);
      if (b.priority !== undefined && !isPriority(b.priority)) return refuse(400, "INVALID_PRIORITY", `invalid priority ${JSON.stringify(b.priority)} — use one of ${PRIORITIES.join(", ")}`);
      if (b.alias !== undefined) {
        if (typeof b.alias !== "string" || !ALIAS.test(b.alias)) return refuse(400, "INVALID_ALIAS", `invalid alias ${JSON.stringify(b.alias)} — use the form PREFIX-0001 (a letter first, then letters, digits or _, a -, then the rest)`);
        const holder = this.holder(b.alias);
        if (holder) return refuse(409, "ALIAS_TAKEN", `alias ${b.alias} is taken by task ${holder.thread} — pick another --alias, or leave it out to get the next ${this.aliasPrefix}-NNNN`);
      }
      return null;
    }
    const task = this.task(rec.thread);
    if (!task) return refuse(404, "TASK_NOT_FOUND", `thread ${rec.thread} is not a task — see 'spl task list'`);
    const verb = b.task_event;
    if (!isTaskVerb(verb)) return refuse(400, "INVALID_TASK_EVENT", `task_event ${JSON.stringify(verb)} is not a task verb — allowed now on ${task.alias}: ${allowedVerbs(task.status).join(", ")}`);
    const wantAct = verb === "approve" || verb === "reject" ? "KNOW" : "DO";
    if (rec.act !== wantAct) return refuse(400, "INVALID_TASK_EVENT", `task_event ${verb} arrived in a ${rec.act} record — send it as a ${wantAct}`);
    const verdict = verb === "approve" ? "accept" : verb === "reject" ? "reject" : undefined;
    if (verdict && b.verdict !== verdict) return refuse(400, "INVALID_TASK_EVENT", `'${verb}' needs body.verdict "${verdict}" — it is the trust evidence about ${task.done_by ?? "the actor who ran done"}`);
    if (nextStatus(task.status, verb) === null) {
      return refuse(409, "INVALID_TRANSITION", `task ${task.alias} is ${task.status}; '${verb}' is not allowed from ${task.status} — allowed now: ${allowedVerbs(task.status).join(", ")}`);
    }
    if (REASON_REQUIRED.has(verb) && !str(b.reason)) return refuse(400, "REASON_REQUIRED", `'${verb}' needs a reason — pass --reason "..."`);
    if ((verb === "approve" || verb === "reject") && rec.actor === task.done_by) {
      return refuse(403, "SELF_APPROVAL", `${rec.actor} ran 'done' on ${task.alias} and may not ${verb} it — another actor must review it (spl task ${verb} ${task.alias} --actor <reviewer DID>)`);
    }
    if (verb === "edit" && (b.set === null || typeof b.set !== "object" || Array.isArray(b.set))) {
      return refuse(400, "INVALID_TASK_EVENT", "'edit' needs body.set — an object of fields to change (goal, priority, labels, assignee, domain, criteria)");
    }
    if (verb === "edit" && (b.set as JsonObject).priority !== undefined && !isPriority((b.set as JsonObject).priority)) {
      return refuse(400, "INVALID_PRIORITY", `invalid priority ${JSON.stringify((b.set as JsonObject).priority)} — use one of ${PRIORITIES.join(", ")}`);
    }
    return null;
  }
}

/**
 * The task fold's table, and the write-time check against it. Folds apply only after COMMIT, so
 * records accepted earlier in the same write transaction are staged in an overlay that later
 * checks see; the overlay is dropped once the commit has been folded (or the transaction failed).
 */
export class TaskTable {
  private committed: TaskSet;
  private staged: Envelope[] = [];
  private overlay: TaskSet | null = null;

  constructor(private readonly aliasPrefix = DEFAULT_ALIAS_PREFIX) {
    this.committed = new TaskSet(aliasPrefix);
  }

  get size(): number {
    return this.committed.size;
  }

  /** A task by alias (case-insensitive) or thread id. */
  get(ref: string): Task | undefined {
    return this.committed.holder(ref) ?? this.committed.task(ref);
  }

  /** Tasks in creation order; closed ones (approved, cancelled) only with `all`. */
  list(all = false): Task[] {
    const out = this.committed.own();
    return all ? out : out.filter((t) => t.status !== "approved" && t.status !== "cancelled");
  }

  /** Folds one committed record, in store order. Returns whether it changed anything. */
  apply(rec: StoredRecord): boolean {
    return this.committed.apply(rec);
  }

  /** Whether `rec` may be written now, counting records staged in this transaction. null = allowed. */
  check(rec: Envelope): TaskRefusal | null {
    return (this.overlay ?? this.committed).check(rec);
  }

  /** Counts an accepted, not yet committed record in later checks. Returns whether it was staged. */
  stage(rec: Envelope): boolean {
    if (!isTaskRecord(rec)) return false;
    this.overlay ??= new TaskSet(this.aliasPrefix, this.committed);
    this.overlay.apply(asStored(rec));
    this.staged.push(rec);
    return true;
  }

  /** Forgets staged records whose submission was rolled back; the others stay staged. */
  unstage(recs: readonly Envelope[]): void {
    if (!recs.length) return;
    const keep = this.staged.filter((r) => !recs.includes(r));
    this.settle();
    for (const r of keep) this.stage(r);
  }

  /** Drops every staged record: the transaction committed (its records are folded) or failed. */
  settle(): void {
    this.staged = [];
    this.overlay = null;
  }
}

/** A record not yet stored, as the overlay folds it (its id and sequence are not known yet). */
function asStored(rec: Envelope): StoredRecord {
  return { ...rec, id: "", sequence: 0, created_at: Math.floor(Date.now() / 1000) };
}

/** The task folds: task-opening INTENDs, and DO/KNOW events on them (the table ignores what check() refuses). */
export function taskFolds(table: TaskTable): Fold[] {
  return [
    { name: "tasks", consumes: { act: "INTEND", bodyField: "task" }, apply: (rec) => table.apply(rec) },
    { name: "task_events", consumes: { bodyField: "task_event" }, apply: (rec) => rec.act !== "INTEND" && table.apply(rec) },
  ];
}

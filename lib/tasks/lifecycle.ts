// The task status machine. Status is never stored: it is what these transitions make of the
// task thread's records, in store order. One table answers both "what does this event do" and
// "what may happen next", so the 409 message and the fold cannot disagree.

export const TASK_STATUSES = ["inbox", "active", "review", "approved", "rejected", "blocked", "deferred", "failed", "cancelled"] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/** Verbs that change status. approve/reject arrive as verdict KNOWs, the rest as DO task_event. */
export const STATUS_VERBS = ["start", "done", "fail", "approve", "reject", "block", "defer", "cancel", "reopen"] as const;
/** Verbs that leave status alone and are allowed in every status. */
export const NOTE_VERBS = ["comment", "edit", "handoff"] as const;
export type StatusVerb = (typeof STATUS_VERBS)[number];
export type NoteVerb = (typeof NOTE_VERBS)[number];
export type TaskVerb = StatusVerb | NoteVerb;

const OPEN: readonly TaskStatus[] = ["inbox", "active", "review", "blocked", "deferred"];
const ENDED: readonly TaskStatus[] = ["review", "approved", "rejected", "failed", "cancelled"];

interface Transition {
  from: readonly TaskStatus[];
  to: TaskStatus;
}

const TRANSITIONS: Record<StatusVerb, Transition> = {
  start: { from: ["inbox", "blocked", "deferred"], to: "active" },
  done: { from: ["active"], to: "review" },
  fail: { from: ["active", "blocked"], to: "failed" },
  approve: { from: ["review"], to: "approved" },
  reject: { from: ["review"], to: "rejected" },
  block: { from: ["inbox", "active"], to: "blocked" },
  defer: { from: ["inbox", "active", "blocked"], to: "deferred" },
  cancel: { from: OPEN, to: "cancelled" },
  reopen: { from: ENDED, to: "active" },
};

/** Verbs whose record must carry a reason (an operator reading history later needs the why). */
export const REASON_REQUIRED: ReadonlySet<TaskVerb> = new Set(["block", "defer", "reject", "fail", "cancel", "reopen"]);

export function isTaskVerb(v: unknown): v is TaskVerb {
  return typeof v === "string" && ((STATUS_VERBS as readonly string[]).includes(v) || (NOTE_VERBS as readonly string[]).includes(v));
}

export function isStatusVerb(v: TaskVerb): v is StatusVerb {
  return (STATUS_VERBS as readonly string[]).includes(v);
}

/** The status after `verb`, or null when the verb is not allowed from `status`. */
export function nextStatus(status: TaskStatus, verb: TaskVerb): TaskStatus | null {
  if (!isStatusVerb(verb)) return status;
  const t = TRANSITIONS[verb];
  return t.from.includes(status) ? t.to : null;
}

/** Every verb allowed from `status`, status-changing ones first. */
export function allowedVerbs(status: TaskStatus): TaskVerb[] {
  return [...STATUS_VERBS.filter((v) => TRANSITIONS[v].from.includes(status)), ...NOTE_VERBS];
}

export const PRIORITIES = ["critical", "high", "medium", "low"] as const;
export type TaskPriority = (typeof PRIORITIES)[number];

export function isPriority(v: unknown): v is TaskPriority {
  return typeof v === "string" && (PRIORITIES as readonly string[]).includes(v);
}

// Trust table folded from verdict KNOW records.
//
// Score per (actor, domain) = Wilson lower bound over decayed evidence plus a fixed prior.
// Decay is applied at read time: each verdict's weight is 2^(-age / half_life), age measured
// from its created_at. Sums are kept relative to a per-row reference time so that a read is
// O(1): sum_i w_i = 2^(-(now - ref)/H) * sum_i 2^((t_i - ref)/H).

import { ENGINE_ACTOR } from "../instance";
import type { StoredRecord } from "../records/types";

export interface TrustParams {
  prior_success: number;
  prior_failure: number;
  z: number;
  half_life_days: number;
}

export const DEFAULT_TRUST_PARAMS: Readonly<TrustParams> = Object.freeze({
  prior_success: 3,
  prior_failure: 3,
  z: 1.96,
  half_life_days: 90,
});

export const DEFAULT_TRUST_DOMAIN = "general";
const SECS_PER_DAY = 86_400;
// Rebase the reference time before 2^exponent gets anywhere near double overflow.
const MAX_EXPONENT = 512;

export interface TrustRow {
  actor: string;
  domain: string;
  /** Raw (unweighted) accepted verdicts. */
  success: number;
  /** Raw (unweighted) verdicts. */
  total: number;
  /** Decayed, prior-adjusted Wilson lower bound (unrounded). */
  trust: number;
}

/** Returns an error string when `p` is not a usable parameter set. */
export function validateTrustParams(p: TrustParams): string | undefined {
  const bad = (name: keyof TrustParams, rule: string) => `trust_params.${name} must be ${rule}, got ${JSON.stringify(p[name])}`;
  if (typeof p.prior_success !== "number" || !Number.isFinite(p.prior_success) || p.prior_success < 0) return bad("prior_success", "a number >= 0");
  if (typeof p.prior_failure !== "number" || !Number.isFinite(p.prior_failure) || p.prior_failure < 0) return bad("prior_failure", "a number >= 0");
  if (typeof p.z !== "number" || !Number.isFinite(p.z) || p.z <= 0) return bad("z", "a number > 0");
  if (typeof p.half_life_days !== "number" || !(p.half_life_days > 0)) return bad("half_life_days", "a number > 0");
  return undefined;
}

/** Wilson score lower bound for `successes` out of `trials` (both may be fractional). */
export function wilsonLowerBound(successes: number, trials: number, z: number): number {
  if (!(trials > 0)) return 0;
  const p = successes / trials;
  const z2 = z * z;
  const centre = p + z2 / (2 * trials);
  const margin = z * Math.sqrt((p * (1 - p)) / trials + z2 / (4 * trials * trials));
  return Math.max(0, (centre - margin) / (1 + z2 / trials));
}

interface Evidence {
  actor: string;
  domain: string;
  times: number[];
  accepted: boolean[];
  success: number;
  total: number;
  maxTime: number;
  refTime: number;
  /** sum over accepted verdicts of 2^((t - refTime)/H) */
  accSuccess: number;
  /** sum over all verdicts of 2^((t - refTime)/H) */
  accTotal: number;
}

/** What the trust fold reads of a stored record, by id (the store). */
export type RecordLookup = (recordId: string) => Pick<StoredRecord, "actor" | "act" | "body"> | null | undefined;

export class TrustTable {
  private params: TrustParams = { ...DEFAULT_TRUST_PARAMS };
  private readonly rowsByKey = new Map<string, Evidence>();
  private readonly applied = new Set<string>();

  get trustParams(): Readonly<TrustParams> {
    return this.params;
  }

  /** Replaces the parameters (missing fields take defaults). Throws on invalid values. */
  setParams(p: Partial<TrustParams> | undefined): void {
    const next: TrustParams = { ...DEFAULT_TRUST_PARAMS, ...(p ?? {}) };
    const error = validateTrustParams(next);
    if (error) throw new RangeError(error);
    const halfLifeChanged = next.half_life_days !== this.params.half_life_days;
    this.params = next;
    if (halfLifeChanged) for (const ev of this.rowsByKey.values()) this.recomputeSums(ev);
  }

  /**
   * Folds one record. Returns true when it was counted as evidence: a KNOW whose body.verdict is
   * accept|reject, judging real work (judgedActor) by an actor other than its author.
   */
  apply(rec: StoredRecord, recordOf: RecordLookup): boolean {
    if (rec.act !== "KNOW") return false;
    const body = rec.body ?? {};
    const verdict = body.verdict;
    if (verdict !== "accept" && verdict !== "reject") return false;
    if (this.applied.has(rec.id)) return false; // rebuild + live broadcast may deliver twice
    const judged = judgedActor(rec, recordOf);
    if (!judged || judged === rec.actor) return false; // unknown subject, or a self-verdict
    const domain = typeof body.domain === "string" && body.domain !== "" ? body.domain : DEFAULT_TRUST_DOMAIN;
    this.applied.add(rec.id);
    this.addEvidence(judged, domain, verdict === "accept", rec.created_at);
    return true;
  }

  /** Trust score of (actor, domain) at `nowSecs`; the prior alone when there is no evidence. */
  score(actor: string, domain: string, nowSecs: number): number {
    const ev = this.rowsByKey.get(key(actor, domain));
    const [s, n] = ev ? this.decayedSums(ev, nowSecs) : [0, 0];
    const { prior_success, prior_failure, z } = this.params;
    return wilsonLowerBound(prior_success + s, prior_success + prior_failure + n, z);
  }

  /** Raw number of verdicts about (actor, domain). */
  count(actor: string, domain: string): number {
    return this.rowsByKey.get(key(actor, domain))?.total ?? 0;
  }

  /** All rows, sorted by actor then domain. */
  rows(nowSecs: number): TrustRow[] {
    const out: TrustRow[] = [];
    for (const ev of this.rowsByKey.values()) {
      out.push({ actor: ev.actor, domain: ev.domain, success: ev.success, total: ev.total, trust: this.score(ev.actor, ev.domain, nowSecs) });
    }
    return out.sort((a, b) => (a.actor === b.actor ? cmp(a.domain, b.domain) : cmp(a.actor, b.actor)));
  }

  get size(): number {
    return this.rowsByKey.size;
  }

  clear(): void {
    this.rowsByKey.clear();
    this.applied.clear();
  }

  private halfLifeSecs(): number {
    return this.params.half_life_days * SECS_PER_DAY;
  }

  private addEvidence(actor: string, domain: string, accepted: boolean, at: number): void {
    const k = key(actor, domain);
    let ev = this.rowsByKey.get(k);
    if (!ev) {
      ev = { actor, domain, times: [], accepted: [], success: 0, total: 0, maxTime: at, refTime: at, accSuccess: 0, accTotal: 0 };
      this.rowsByKey.set(k, ev);
    }
    ev.times.push(at);
    ev.accepted.push(accepted);
    ev.total++;
    if (accepted) ev.success++;
    if (at > ev.maxTime) ev.maxTime = at;
    const h = this.halfLifeSecs();
    if ((at - ev.refTime) / h > MAX_EXPONENT) this.recomputeSums(ev, at);
    else {
      const w = 2 ** ((at - ev.refTime) / h);
      ev.accTotal += w;
      if (accepted) ev.accSuccess += w;
    }
  }

  private recomputeSums(ev: Evidence, refTime = ev.maxTime): void {
    const h = this.halfLifeSecs();
    ev.refTime = refTime;
    ev.accSuccess = 0;
    ev.accTotal = 0;
    for (let i = 0; i < ev.times.length; i++) {
      const w = 2 ** ((ev.times[i]! - refTime) / h);
      ev.accTotal += w;
      if (ev.accepted[i]) ev.accSuccess += w;
    }
  }

  /** [weighted successes, weighted trials] at `nowSecs`; verdicts dated after now count at full weight. */
  private decayedSums(ev: Evidence, nowSecs: number): [number, number] {
    const h = this.halfLifeSecs();
    if (nowSecs >= ev.maxTime) {
      const factor = 2 ** (-(nowSecs - ev.refTime) / h);
      return [ev.accSuccess * factor, ev.accTotal * factor];
    }
    // Clock skew: some evidence is in the future of `now`; do it exactly, clamping age at 0.
    let s = 0;
    let n = 0;
    for (let i = 0; i < ev.times.length; i++) {
      const w = 2 ** (-Math.max(0, nowSecs - ev.times[i]!) / h);
      n += w;
      if (ev.accepted[i]) s += w;
    }
    return [s, n];
  }
}

/**
 * The actor whose real work a verdict judges (README "Engine"), or undefined when it judges none:
 * its judged_by names a record that fulfils an INTEND (body.fulfills names an INTEND: a fulfilling
 * KNOW, or a task's `done`), and that record's author is the one judged (body.subject, when given,
 * must be that author; the engine's KNOW closing a dispatch is its target's work, body.subject).
 * A verdict about a made-up actor, about no record, or about a record that is not someone's answer
 * to an INTEND counts for nobody, and so does an adapter's outcome itself (the engine's fulfilling
 * KNOW judges nothing: it is the work's record, which a reviewer may then judge).
 */
export function judgedActor(rec: StoredRecord, recordOf: RecordLookup): string | undefined {
  if (!rec.judged_by) return undefined;
  const work = recordOf(rec.judged_by);
  if (!work) return undefined;
  const author = work.actor === ENGINE_ACTOR && typeof work.body?.subject === "string" ? work.body.subject : work.actor;
  const subject = rec.body?.subject;
  if (subject !== undefined && subject !== author) return undefined;
  // A task's `done` is its answer to the task's INTEND (the task status machine let it land only there).
  if (work.act === "DO" && work.body?.task_event === "done") return author;
  const fulfils = work.body?.fulfills;
  return typeof fulfils === "string" && recordOf(fulfils)?.act === "INTEND" ? author : undefined;
}

function key(actor: string, domain: string): string {
  return `${actor}\u0000${domain}`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

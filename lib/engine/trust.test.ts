import { describe, expect, test } from "bun:test";
import type { JsonObject, StoredRecord } from "../records/types";
import { DEFAULT_TRUST_PARAMS, judgedActor, TrustTable, wilsonLowerBound, type TrustParams } from "./trust";
import { Engine } from "./runtime";
import { TRUST_FACTS, type TrustSnapshot } from "./vocabulary";
import { RecordStore } from "../store/records";
import { openStore } from "../store/open";
import { createFileLogger } from "../log";
import { cpuTimeMs } from "../../test/harness";

const DAY = 86_400;
const NOW = 1_750_000_000;
const BOB = "did:sync:agent:bob";
const ALICE = "did:sync:user:alice";

let seq = 0;
/** A verdict about real work: judged_by names `work:<subject>`, which fulfils an INTEND (see `works`). */
function verdict(body: JsonObject, over: Partial<StoredRecord> = {}): StoredRecord {
  seq++;
  const subject = typeof body.subject === "string" ? body.subject : BOB;
  return {
    id: `v${seq}`,
    sequence: seq,
    created_at: NOW,
    parents: [],
    thread: "th_t",
    actor: ALICE,
    act: "KNOW",
    body: { subject: BOB, ...body },
    clock: seq,
    data_type: "SCALAR",
    judged_by: `work:${subject}`,
    ...over,
  };
}
/** `work:<actor>`: a KNOW by that actor fulfilling INTEND `intend`; `plain:<actor>`: a record that fulfils nothing. */
const works = (id: string): Pick<StoredRecord, "actor" | "act" | "body"> | undefined => {
  if (id === "intend") return { actor: ALICE, act: "INTEND", body: { goal: "x" } };
  if (id === "know") return { actor: ALICE, act: "KNOW", body: {} };
  const [kind, actor] = [id.slice(0, id.indexOf(":")), id.slice(id.indexOf(":") + 1)];
  if (kind === "work") return { actor, act: "KNOW", body: { fulfills: "intend" } };
  if (kind === "notwork") return { actor, act: "KNOW", body: { fulfills: "know" } };
  if (kind === "plain") return { actor, act: "DO", body: {} };
  if (kind === "done") return { actor, act: "DO", body: { task_event: "done" } };
  if (kind === "dispatched") return { actor: "did:sync:system:engine", act: "KNOW", body: { fulfills: "intend", verdict: "accept", subject: actor } };
  return undefined;
};

// Independent reference: textbook Wilson lower bound, with the decay loop written out per verdict.
function referenceScore(evidence: Array<{ accept: boolean; ageDays: number }>, p: TrustParams = DEFAULT_TRUST_PARAMS): number {
  let s = p.prior_success;
  let n = p.prior_success + p.prior_failure;
  for (const e of evidence) {
    const weight = Math.pow(0.5, Math.max(0, e.ageDays) / p.half_life_days);
    n += weight;
    if (e.accept) s += weight;
  }
  if (n === 0) return 0;
  const phat = s / n;
  const z = p.z;
  return (phat + (z * z) / (2 * n) - z * Math.sqrt((phat * (1 - phat) + (z * z) / (4 * n)) / n)) / (1 + (z * z) / n);
}

describe("trust formula (hand-computed vectors, z = 1.96)", () => {
  // Wilson lower bound: (p + z²/2n − z·sqrt(p(1−p)/n + z²/4n²)) / (1 + z²/n), with z² = 3.8416.
  test("no evidence: the 3/3 prior alone gives s=3, n=6 -> 0.187613", () => {
    // p=0.5; z²/2n=0.320133; sqrt(0.041667+0.026678)=0.261428; z·that=0.512399;
    // (0.5+0.320133-0.512399)/(1+0.640267) = 0.307734/1.640267 = 0.187613
    expect(new TrustTable().score(BOB, "code", NOW)).toBeCloseTo(0.187613, 6);
  });

  test("one fresh accept: s=4, n=7 -> 0.250454; one fresh reject: s=3, n=7 -> 0.158217", () => {
    const t = new TrustTable();
    t.apply(verdict({ verdict: "accept", domain: "code" }), works);
    t.apply(verdict({ verdict: "reject", domain: "ops" }), works);
    expect(t.score(BOB, "code", NOW)).toBeCloseTo(0.250454, 6);
    expect(t.score(BOB, "ops", NOW)).toBeCloseTo(0.158217, 6);
  });

  test("decay: an accept exactly one half-life (90 d) old weighs 0.5 -> s=3.5, n=6.5 -> 0.219999", () => {
    const t = new TrustTable();
    t.apply(verdict({ verdict: "accept" }, { created_at: NOW - 90 * DAY }), works);
    expect(t.score(BOB, "general", NOW)).toBeCloseTo(0.219999, 6);
    // the same table read 90 days earlier sees it fresh: s=4, n=7
    expect(t.score(BOB, "general", NOW - 90 * DAY)).toBeCloseTo(0.250454, 6);
  });

  test("decay mix: accepts 90 d and 180 d old, reject 180 d old -> s=3.75, n=7 -> 0.225918", () => {
    const t = new TrustTable();
    t.apply(verdict({ verdict: "accept" }, { created_at: NOW - 90 * DAY }), works); // weight 0.5
    t.apply(verdict({ verdict: "accept" }, { created_at: NOW - 180 * DAY }), works); // weight 0.25
    t.apply(verdict({ verdict: "reject" }, { created_at: NOW - 180 * DAY }), works); // weight 0.25
    expect(t.score(BOB, "general", NOW)).toBeCloseTo(0.225918, 6);
  });

  test("prior 0/0: plain Wilson, 8 of 10 fresh -> 0.490157", () => {
    const t = new TrustTable();
    t.setParams({ prior_success: 0, prior_failure: 0 });
    for (let i = 0; i < 10; i++) t.apply(verdict({ verdict: i < 8 ? "accept" : "reject" }), works);
    expect(t.score(BOB, "general", NOW)).toBeCloseTo(0.490157, 6);
    expect(wilsonLowerBound(8, 10, 1.96)).toBeCloseTo(0.490157, 6);
    expect(t.score("did:nobody", "general", NOW)).toBe(0); // no prior, no evidence
  });

  test("custom z and prior: prior 4/1, z=1, one fresh accept -> s=5, n=6 -> 0.637024", () => {
    const t = new TrustTable();
    t.setParams({ prior_success: 4, prior_failure: 1, z: 1 });
    t.apply(verdict({ verdict: "accept" }), works);
    expect(t.score(BOB, "general", NOW)).toBeCloseTo(0.637024, 6);
  });

  test("custom half-life 30 d, accept 15 d old weighs 2^-0.5 -> 0.232849; changing it recomputes", () => {
    const t = new TrustTable();
    t.apply(verdict({ verdict: "accept" }, { created_at: NOW - 15 * DAY }), works);
    t.setParams({ half_life_days: 30 });
    expect(t.score(BOB, "general", NOW)).toBeCloseTo(0.232849, 6);
    t.setParams({}); // back to defaults (90 d): weight 2^(-15/90)
    expect(t.score(BOB, "general", NOW)).toBeCloseTo(referenceScore([{ accept: true, ageDays: 15 }]), 12);
  });

  test("matches an independent implementation on random evidence", () => {
    let x = 42;
    const rand = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const params of [DEFAULT_TRUST_PARAMS, { prior_success: 7, prior_failure: 10, z: 2.576, half_life_days: 30 }]) {
      const t = new TrustTable();
      t.setParams(params);
      const evidence: Array<{ accept: boolean; ageDays: number }> = [];
      for (let i = 0; i < 500; i++) {
        const ageDays = rand() * 2000 - 5; // a few verdicts are slightly in the future (clock skew)
        const accept = rand() < 0.7;
        evidence.push({ accept, ageDays });
        t.apply(verdict({ verdict: accept ? "accept" : "reject" }, { created_at: NOW - ageDays * DAY }), works);
      }
      expect(t.score(BOB, "general", NOW)).toBeCloseTo(referenceScore(evidence, params), 9);
      const later = evidence.map((e) => ({ ...e, ageDays: e.ageDays + 400 }));
      expect(t.score(BOB, "general", NOW + 400 * DAY)).toBeCloseTo(referenceScore(later, params), 9);
    }
  });

  test("verdicts spread over centuries do not overflow", () => {
    const t = new TrustTable();
    for (let y = 0; y < 200; y++) t.apply(verdict({ verdict: "accept" }, { created_at: NOW + y * 365 * DAY }), works);
    const end = NOW + 200 * 365 * DAY;
    const score = t.score(BOB, "general", end);
    expect(Number.isFinite(score)).toBe(true);
    const evidence = Array.from({ length: 200 }, (_, y) => ({ accept: true, ageDays: (200 - y) * 365 }));
    expect(score).toBeCloseTo(referenceScore(evidence), 9);
  });
});

describe("verdict fold", () => {
  test("judged actor: the author of the record judged_by names, when that record fulfils an INTEND and matches subject", () => {
    const noSubject = (judged_by: string | null) => ({ ...verdict({ verdict: "accept" }), body: { verdict: "accept" }, judged_by });
    expect(judgedActor(verdict({ verdict: "accept" }), works)).toBe(BOB);
    expect(judgedActor(noSubject("work:did:sync:agent:carol"), works)).toBe("did:sync:agent:carol");
    expect(judgedActor(verdict({ verdict: "accept", subject: "did:sync:agent:mallorybot" }, { judged_by: `work:${BOB}` }), works)).toBeUndefined(); // subject is not the author
    expect(judgedActor(noSubject(null), works)).toBeUndefined(); // no work named
    expect(judgedActor(noSubject("unknown"), works)).toBeUndefined();
    expect(judgedActor(noSubject(`plain:${BOB}`), works)).toBeUndefined(); // fulfils nothing
    expect(judgedActor(noSubject(`done:${BOB}`), works)).toBe(BOB); // a task's done
    expect(judgedActor(noSubject(`dispatched:${BOB}`), works)).toBe(BOB); // the engine's KNOW closing BOB's dispatch
    expect(judgedActor(noSubject(`notwork:${BOB}`), works)).toBeUndefined(); // fulfils a record that is no INTEND
    expect(judgedActor({ ...noSubject(null), parents: [`work:${BOB}`] }, works)).toBeUndefined(); // a parent is not judged_by
  });

  test("counts only KNOW accept|reject about someone else, once per record", () => {
    const t = new TrustTable();
    const ok = verdict({ verdict: "accept", domain: "code" });
    expect(t.apply(ok, works)).toBe(true);
    expect(t.apply(ok, works)).toBe(false); // same record again
    expect(t.apply(verdict({ verdict: "accept", domain: "code" }, { act: "DO" }), works)).toBe(false);
    expect(t.apply(verdict({ verdict: "maybe", domain: "code" }), works)).toBe(false);
    expect(t.apply(verdict({ verdict: "accept", domain: "code", subject: ALICE }), works)).toBe(false); // self-verdict
    const orphan = { ...verdict({}), body: { verdict: "accept" }, judged_by: null };
    expect(t.apply(orphan, works)).toBe(false); // nobody to judge
    // an adapter's outcome: the engine's KNOW fulfilling an INTEND names the target but judges no work
    expect(t.apply(verdict({ verdict: "accept", fulfills: "intend" }, { actor: "did:sync:system:engine", judged_by: null }), works)).toBe(false);
    expect(t.count(BOB, "code")).toBe(1);
    expect(t.count(ALICE, "code")).toBe(0);
  });

  test("domain defaults to general; rows give raw counts sorted by actor, domain", () => {
    const t = new TrustTable();
    t.apply(verdict({ verdict: "accept" }), works);
    t.apply(verdict({ verdict: "reject", domain: "" }), works);
    t.apply(verdict({ verdict: "accept", domain: "code" }, { created_at: NOW - 90 * DAY }), works);
    t.apply(verdict({ verdict: "accept", domain: "code", subject: "did:sync:agent:alpha" }), works);
    const rows = t.rows(NOW);
    expect(rows.map((r) => [r.actor, r.domain, r.success, r.total])).toEqual([
      ["did:sync:agent:alpha", "code", 1, 1],
      [BOB, "code", 1, 1],
      [BOB, "general", 1, 2],
    ]);
    expect(rows[1]!.trust).toBeCloseTo(0.219999, 6); // decayed accept: s=3.5, n=6.5
    expect(rows[2]!.trust).toBeCloseTo(referenceScore([{ accept: true, ageDays: 0 }, { accept: false, ageDays: 0 }]), 12);
  });

  test("an engine's CEL scope exposes score and count as trust()/trust_count(), live and in a worker's snapshot", () => {
    const engine = new Engine(new RecordStore(openStore(":memory:").db), createFileLogger(null, { level: "error" }));
    engine.trust.apply(verdict({ verdict: "accept", domain: "code" }), works);
    const scope = engine.scope(ALICE, NOW);
    expect(scope.actor).toBe(ALICE);
    const live = scope.facts(TRUST_FACTS);
    expect(live.score(BOB, "code")).toBeCloseTo(0.250454, 6);
    expect(live.count(BOB, "code")).toBe(1);
    const restored = TRUST_FACTS.restore(engine.scopeSnapshot(ALICE, NOW).facts.trust as TrustSnapshot);
    expect(restored.score(BOB, "code")).toBeCloseTo(0.250454, 6);
    expect(restored.count(BOB, "code")).toBe(1);
  });

  test("setParams rejects invalid values and keeps the old ones", () => {
    const t = new TrustTable();
    expect(() => t.setParams({ z: 0 })).toThrow(/z/);
    expect(() => t.setParams({ half_life_days: -1 })).toThrow(/half_life_days/);
    expect(() => t.setParams({ prior_success: Number.NaN })).toThrow(/prior_success/);
    expect(t.trustParams).toEqual({ ...DEFAULT_TRUST_PARAMS });
  });

  test("rebuilding from 100k verdicts takes well under a second", () => {
    const actors = Array.from({ length: 200 }, (_, i) => `did:sync:agent:w${i}`);
    const domains = ["code", "ops", "data", "general", "spec"];
    const records: StoredRecord[] = [];
    for (let i = 0; i < 100_000; i++) {
      records.push({
        id: `r${i}`,
        sequence: i + 1,
        created_at: NOW - (i % 1000) * 3600,
        parents: [],
        thread: "th_t",
        actor: ALICE,
        act: "KNOW",
        body: { verdict: i % 3 === 0 ? "reject" : "accept", domain: domains[i % domains.length]! },
        clock: i,
        data_type: "SCALAR",
        judged_by: `w${i}`,
      });
    }
    const intend = { actor: ALICE, act: "INTEND" as const, body: {} };
    const work = actors.map((actor) => ({ actor, act: "KNOW" as const, body: { fulfills: "intend" } }));
    const lookup = (id: string) => (id === "intend" ? intend : work[Number(id.slice(1)) % actors.length]);
    const { value: rows, ms } = cpuTimeMs(() => {
      const t = new TrustTable();
      for (const r of records) t.apply(r, lookup);
      return t.rows(NOW);
    });
    expect(rows.reduce((sum, r) => sum + r.total, 0)).toBe(100_000);
    expect(ms).toBeLessThan(1000);
  });
});

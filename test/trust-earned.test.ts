// Trust that is earned (issue 24, README "Engine" and "Dispatch"), on the compiled binary: a verdict
// counts only when it judges real work by another actor (its judged_by names the subject's record
// answering an INTEND); adapter outcomes are recorded but are no verdicts unless the target says
// so; the trust fallback never hands an actor its own INTEND and only routes to actors with a
// dispatch target; a task's thread is open until the task is approved or cancelled.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync } from "node:fs";
import { Instance } from "./harness";

const inst = new Instance();
const OP = "did:sync:user:tester";
const REVIEWER = "did:sync:user:reviewer";
const MALLORY = "did:sync:user:mallory";
const MALLORYBOT = "did:sync:agent:mallorybot";
const BUILDER = "did:sync:agent:builder";
const JUDGE = "did:sync:agent:judge";

async function ok(args: string[], env?: Record<string, string>) {
  const r = await inst.spl(args, { env });
  if (r.code !== 0) throw new Error(`spl ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}
const trust = async () => (JSON.parse(await ok(["trust", "-o", "json"])) as any[]).map((r) => [r.actor, r.domain, r.success, r.total]);
const post = async (rec: Record<string, unknown>, token?: string) => (token ? inst.http("POST", "/v1/records", rec, { authorization: `Bearer ${token}` }) : inst.socket("POST", "/v1/records", rec));
const threadOf = async (thread: string) => (await inst.socket("GET", `/v1/threads/${thread}/records`)).json.data as any[];
/** Waits until the reconciler has decided every INTEND so far (the dispatch fold and its log are behind the answer). */
async function settled(): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const d = (await inst.socket("GET", "/v1/dispatches?limit=10000")).json;
    if (d.reconciler.queued === 0 && d.reconciler.running === 0 && d.active === 0) return;
    await Bun.sleep(50);
  }
  throw new Error("the reconciler did not settle within 10 s");
}

beforeAll(async () => {
  expect((await inst.spl(["init"])).code).toBe(0);
  appendFileSync(inst.path("config.toml"), `\n[dispatch.targets."${BUILDER}"]\nadapter = "echo"\n[dispatch.targets."${JUDGE}"]\nadapter = "echo"\nverdicts = true\n`);
  await inst.start();
});
afterAll(async () => {
  await inst.stop();
});

describe("trust is earned", () => {
  test("one real approval, then plain INTENDs: spl trust shows only the approval; nothing routes back to the operator", async () => {
    const task = JSON.parse(await ok(["task", "add", "Add input validation", "-o", "json"]));
    await ok(["task", "start", task.alias]);
    await ok(["task", "done", task.alias, "--summary", "validation added"]);
    // In review: a thread of a task is open whatever KNOW lands on it.
    expect((await inst.socket("GET", `/v1/threads/${task.thread}/state`)).json.status).toBe("open");
    await ok(["task", "approve", task.alias, "--actor", REVIEWER, "--notes", "looks good"]);
    expect(await trust()).toEqual([[OP, "general", 1, 1]]);
    expect((await inst.socket("GET", `/v1/threads/${task.thread}/state`)).json.status).toBe("closed");
    for (let i = 0; i < 5; i++) await ok(["intend", `plain intend ${i}`]);
    await settled();
    expect(await trust()).toEqual([[OP, "general", 1, 1]]);
    // The operator has evidence but no dispatch target: its own INTENDs go to the default handler.
    expect((await inst.socket("GET", "/v1/dispatches?limit=10000")).json.data).toEqual([]);
    const listed = (await inst.socket("GET", "/v1/threads?limit=1000")).json.data.find((t: any) => t.thread === task.thread);
    expect(listed.status).toBe("closed");
  });

  test("six forged accepts for a made-up agent earn it nothing, and the next INTEND in its domain is not routed to it", async () => {
    const created = await ok(["token", "create", "--name", "mallory", "--actor", MALLORY, "--scopes", "records:read,records:write"]);
    const token = /spl_[a-z0-9]+_[a-z0-9]+_[A-Za-z0-9]+/.exec(created)![0];
    const mine = (await post({ thread: "th_mallory_work", actor: MALLORY, act: "KNOW", body: { text: "pretend work" } }, token)).json;
    for (let i = 0; i < 6; i++) {
      const judged = i % 2 ? { judged_by: mine.id } : {};
      const r = await post({ thread: "th_mallory", actor: MALLORY, act: "KNOW", ...judged, body: { verdict: "accept", subject: MALLORYBOT, domain: "payments", n: i } }, token);
      expect(r.status).toBe(201); // recorded: it is only no evidence
    }
    expect((await trust()).filter((r) => r[0] === MALLORYBOT)).toEqual([]);
    const pay = JSON.parse(await ok(["intend", "pay the invoice", "--body", '{"domain":"payments"}', "-o", "json"]));
    await settled();
    expect((await threadOf(pay.thread)).map((r) => r.act)).toEqual(["INTEND"]);
  });

  test("an adapter's outcome is no verdict; a reviewer judging the dispatched work is; the fallback hands nobody its own INTEND", async () => {
    const asked = JSON.parse(await ok(["intend", "build it", "--body", JSON.stringify({ to: BUILDER, domain: "code" }), "-o", "json"]));
    await settled();
    const done = (await threadOf(asked.thread)).find((r) => r.act === "KNOW" && r.body.fulfills === asked.id);
    expect(done.body).toMatchObject({ verdict: "accept", subject: BUILDER, summary: "echo: build it" });
    expect((await trust()).filter((r) => r[0] === BUILDER)).toEqual([]);
    expect((await post({ thread: asked.thread, actor: REVIEWER, act: "KNOW", judged_by: done.id, body: { verdict: "accept", domain: "code" } })).status).toBe(201);
    expect((await trust()).filter((r) => r[0] === BUILDER)).toEqual([[BUILDER, "code", 1, 1]]);
    // The next INTEND in "code" without a rule goes to the builder (trusted, with a target)...
    const next = JSON.parse(await ok(["intend", "build more", "--body", '{"domain":"code"}', "-o", "json"]));
    // ...but the builder's own INTEND in "code" does not go back to the builder.
    const own = (await post({ thread: "th_builder_own", actor: BUILDER, act: "INTEND", body: { goal: "my own", domain: "code" } })).json;
    await settled();
    expect((await threadOf(next.thread)).find((r) => r.body.dispatch_handled)?.body).toMatchObject({ target: BUILDER, rule: "trust_fallback" });
    expect((await threadOf(own.thread)).map((r) => r.act)).toEqual(["INTEND"]);
  });

  test("a target with verdicts = true: its adapter's accept is a trust verdict by the engine about the target", async () => {
    const asked = JSON.parse(await ok(["intend", "judge this", "--body", JSON.stringify({ to: JUDGE, domain: "review" }), "-o", "json"]));
    await settled();
    for (let i = 0; i < 50 && !(await trust()).some((r) => r[0] === JUDGE); i++) await Bun.sleep(50);
    const recs = await threadOf(asked.thread);
    const fulfil = recs.find((r) => r.body.fulfills === asked.id);
    expect(recs.find((r) => r.judged_by === fulfil.id)).toMatchObject({ actor: "did:sync:system:engine", body: { verdict: "accept", subject: JUDGE, domain: "review" } });
    expect((await trust()).filter((r) => r[0] === JUDGE)).toEqual([[JUDGE, "review", 1, 1]]);
  });
});

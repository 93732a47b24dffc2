// The reconciler and dispatch, end to end through the compiled binary: routing decisions and
// their log lines, the exec adapter, the concurrency cap, ingest that never waits for dispatch,
// exactly-once across kill -9 and restarts, and config mistakes an operator can fix from the
// error alone. Slow "work" is a shell loop that waits for a release file, so nothing here
// depends on how fast the machine is.
import { describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Instance, isAlive, processGone, waitFor } from "./harness";

const ENGINE = "did:sync:system:engine";
const WORKER = "did:sync:agent:worker";

/** An exec target whose work appends `start <id>` to `events`, waits for `release`, then appends `end <id>`. */
function gatedTarget(inst: Instance, did = WORKER) {
  const events = join(inst.root, "events");
  const release = join(inst.root, "release");
  const script = 'echo "start $SPL_RECORD_ID $$" >> "$1"; while [ ! -e "$2" ] && [ -d "$(dirname "$2")" ]; do sleep 0.05; done; echo "end $SPL_RECORD_ID" >> "$1"; echo "done $SPL_GOAL"';
  const toml = `[dispatch.targets.${JSON.stringify(did)}]\nadapter = "exec"\ncommand = ${JSON.stringify(["sh", "-c", script, "sh", events, release])}\ntimeout_secs = 120\n`;
  const lines = () => (existsSync(events) ? readFileSync(events, "utf8").trim().split("\n").filter(Boolean) : []);
  const started = () => lines().filter((l) => l.startsWith("start ")).map((l) => l.split(" "));
  return { toml, release: () => writeFileSync(release, ""), lines, starts: () => started().map((f) => f[1]!), pids: () => started().map((f) => Number(f[2])) };
}

async function initWith(inst: Instance, toml: string) {
  expect((await inst.spl(["init"])).code).toBe(0);
  appendFileSync(inst.path("config.toml"), `\n${toml}`);
}

/** An initialised instance with concurrency 2 and the gated exec target at WORKER. */
async function gatedInstance() {
  const inst = new Instance();
  const gate = gatedTarget(inst);
  await initWith(inst, `[dispatch]\nconcurrency = 2\n${gate.toml}`);
  return { inst, gate };
}

const intend = (inst: Instance, body: Record<string, unknown>, thread = `th_d_${crypto.randomUUID()}`) =>
  inst.socket("POST", "/v1/records", { thread, actor: "did:sync:user:tester", act: "INTEND", body });

const dispatches = async (inst: Instance, query = "?limit=10000") => (await inst.socket("GET", `/v1/dispatches${query}`)).json;
/** The counts of a GET /v1/dispatches answer, for a wait's failure message. */
const counts = (d: any) => ({ total: d?.total, active: d?.active, finished: d?.data?.filter((x: any) => x.finished_at !== null).length, reconciler: d?.reconciler });

function logLines(inst: Instance, target: string): any[] {
  return readFileSync(inst.path("logs", "spl.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((l) => l.target === target);
}

describe("reconciler routing", () => {
  test("body.to, a routing rule, the trust fallback and the default: one reconciler log line each, the fulfilling KNOW by the engine", async () => {
    const inst = new Instance();
    await initWith(inst, `[dispatch.targets."did:sync:agent:coder"]\nadapter = "echo"\n[dispatch.targets."did:sync:agent:ops"]\nadapter = "echo"\n`);
    await inst.start();
    try {
      const add = await inst.spl(["config", "add-rule", "--name", "code-to-coder", "--domain", "code", "--act", "INTEND", "--target", "did:sync:agent:coder", "--priority", "5"]);
      expect(add.code).toBe(0);
      // Higher priority, but errors on every record without body.team: it must not match.
      const broken = await inst.spl(["config", "add-rule", "--name", "team-rule", "--expression", 'record.body.team == "x"', "--target", "did:sync:agent:wrong", "--priority", "9"]);
      expect(broken.code).toBe(0);
      // Trust evidence: the operator accepted did:sync:agent:ops's answer to an INTEND in domain "ops".
      const asked = (await inst.socket("POST", "/v1/records", { thread: "th_ev", actor: "did:sync:user:tester", act: "INTEND", body: { goal: "tidy up", to: "did:sync:agent:nobody", dispatch_handled: true } })).json;
      const work = (await inst.socket("POST", "/v1/records", { thread: "th_ev", actor: "did:sync:agent:ops", act: "KNOW", body: { fulfills: asked.id, summary: "tidied" } })).json;
      const ev = await inst.socket("POST", "/v1/records", { thread: "th_ev", actor: "did:sync:user:tester", act: "KNOW", judged_by: work.id, body: { verdict: "accept", subject: "did:sync:agent:ops", domain: "ops" } });
      expect(ev.status).toBe(201);

      const explicit = (await intend(inst, { goal: "by hand", to: "did:sync:agent:picked", domain: "code" })).json;
      const ruled = (await intend(inst, { goal: "fix the build", domain: "code" })).json;
      const trusted = (await intend(inst, { goal: "rotate logs", domain: "ops" })).json;
      const nobody = (await intend(inst, { goal: "ponder", domain: "philosophy" })).json;
      const answer = (await intend(inst, { goal: "an answer", fulfills: explicit.id, to: "did:sync:agent:picked" })).json; // skipped
      await waitFor("3 finished dispatches", () => dispatches(inst), { show: counts, until: (d) => d.data.filter((x: any) => x.finished_at !== null).length === 3 });

      const decisions = await waitFor("4 'routing decision' log lines", () => logLines(inst, "syncropel_engine::reconciler").filter((x) => x.msg === "routing decision"), { until: (l) => l.length === 4 });
      // The line's own `target` is the module; the decision's target DID is under fields.
      const byRecord = Object.fromEntries(decisions.map((l: any) => [l.record, l]));
      for (const l of decisions) {
        expect(l.level).toBe("INFO");
        expect(Object.keys(l)).toEqual(expect.arrayContaining(["record", "thread", "rule", "outcome", "fields"]));
        expect(Object.keys(l.fields)).toEqual(["target"]);
      }
      expect(byRecord[explicit.id]).toMatchObject({ thread: explicit.thread, rule: "explicit", fields: { target: "did:sync:agent:picked" }, outcome: "dispatched" });
      expect(byRecord[ruled.id]).toMatchObject({ thread: ruled.thread, rule: "code-to-coder", fields: { target: "did:sync:agent:coder" }, outcome: "dispatched" });
      expect(byRecord[trusted.id]).toMatchObject({ rule: "trust_fallback", fields: { target: "did:sync:agent:ops" }, outcome: "dispatched" });
      expect(byRecord[nobody.id]).toMatchObject({ rule: "default", fields: { target: null }, outcome: "default" });
      expect(byRecord[answer.id]).toBeUndefined();
      // The erroring rule was reported once, not once per record.
      expect(logLines(inst, "syncropel_engine::reconciler").filter((l) => l.msg.startsWith("routing rule could not be evaluated") && l.rule === "team-rule")).toHaveLength(1);

      // The thread holds the INTEND, the engine's DO {dispatch_handled}, and the KNOW fulfilling it.
      const recs = (await inst.socket("GET", `/v1/threads/${ruled.thread}/records`)).json.data;
      expect(recs.map((r: any) => [r.act, r.actor])).toEqual([["INTEND", "did:sync:user:tester"], ["DO", ENGINE], ["KNOW", ENGINE]]);
      expect(recs[1].body).toMatchObject({ dispatch_handled: true, intend: ruled.id, target: "did:sync:agent:coder", rule: "code-to-coder" });
      expect(recs[2].body).toMatchObject({ fulfills: ruled.id, verdict: "accept", subject: "did:sync:agent:coder", summary: "echo: fix the build" });
      const sub = (await inst.socket("GET", `/v1/threads/${encodeURIComponent(`${ruled.thread}/dispatch`)}/records`)).json.data;
      expect(sub).toHaveLength(1);
      expect(sub[0].body).toMatchObject({ topic: "syncropel.dispatch.complete.v1", intend: ruled.id, success: true, completion_codepath: "echo", failure_reason: null });
      // The default handler writes nothing.
      expect((await inst.socket("GET", `/v1/threads/${nobody.thread}/records`)).json.data).toHaveLength(1);

      const listed = await inst.spl(["dispatch", "list"]);
      expect(listed.code).toBe(0);
      expect(listed.stdout).toMatch(/^INTEND\s+TARGET\s+RULE\s+STATUS/);
      expect(listed.stdout).toContain("code-to-coder");
      expect(listed.stdout).toContain("trust_fallback");
      const json = JSON.parse((await inst.spl(["dispatch", "list", "-o", "json"])).stdout);
      expect(json.map((d: any) => d.intend).sort()).toEqual([explicit.id, ruled.id, trusted.id].sort());
      expect((await inst.spl(["dispatch", "list", "--active"])).stdout).toContain("no dispatches running");
      const bad = await inst.socket("GET", "/v1/dispatches?active=maybe");
      expect(bad.status).toBe(400);
      expect(bad.json).toMatchObject({ object: "error", code: "INVALID_QUERY" });
    } finally {
      await inst.stop();
    }
  });
});

describe("dispatch under load", () => {
  test("1,000 INTENDs to a slow exec target are all acknowledged while the dispatches are still running", async () => {
    const { inst, gate } = await gatedInstance();
    const pid = await inst.start();
    try {
      const first = await intend(inst, { goal: "first", to: WORKER });
      expect(first.status).toBe(201);
      await waitFor("the first gated dispatch to start (records started)", () => gate.starts(), { until: (s) => s.length === 1 }); // a dispatch is running, and stays so until released

      const acks: number[] = [];
      let next = 1;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          for (let i = next++; i < 1000; i = next++) acks.push((await intend(inst, { goal: `job ${i}`, to: WORKER })).status);
        }),
      );
      expect(acks).toHaveLength(999);
      expect(acks.every((s) => s === 201)).toBe(true);
      // Every acknowledgement came back while no dispatch had finished and at most 2 had started.
      const atAck = await dispatches(inst, "?limit=0");
      expect(gate.lines().filter((l) => l.startsWith("end "))).toHaveLength(0);
      expect(gate.starts().length).toBeLessThanOrEqual(2);
      expect(atAck.total - atAck.active).toBe(0);

      // The reconciler keeps routing while both slots are busy: all 1,000 are handled, 2 run, 998 wait.
      const routed = await waitFor("1000 dispatches routed, 2 running", () => dispatches(inst, "?limit=0"), { timeoutMs: 60_000, show: counts, until: (d) => d.total === 1000 && d.reconciler.running === 2 });
      expect(routed.active).toBe(1000);
      expect(routed.reconciler.waiting).toBe(998);
      expect(gate.lines().filter((l) => l.startsWith("end "))).toHaveLength(0);
      const health = await inst.http("GET", "/health");
      expect(health.status).toBe(200);

      // A graceful stop ends the running commands (they never saw the release file); the waiting ones never start.
      expect((await inst.stop()).code).toBe(0);
      expect(isAlive(pid)).toBe(false);
      expect(gate.pids()).toHaveLength(2);
      for (const child of gate.pids()) expect(isAlive(child)).toBe(false);
    } finally {
      gate.release();
      if (isAlive(pid)) await inst.stop();
    }
    expect(gate.starts()).toHaveLength(2);
  });

  test("with concurrency 2, six slow dispatches never run more than 2 at once, and all finish", async () => {
    const { inst, gate } = await gatedInstance();
    await inst.start();
    try {
      for (let i = 0; i < 6; i++) expect((await intend(inst, { goal: `slow ${i}`, to: WORKER })).status).toBe(201);
      const held = await waitFor(
        "2 gated dispatches started and 4 waiting",
        async () => ({ starts: gate.starts().length, d: await dispatches(inst, "?limit=0") }),
        { show: (v) => ({ starts: v.starts, ...counts(v.d) }), until: (v) => v.starts === 2 && v.d.total === 6 && v.d.reconciler.waiting === 4 },
      ).then((v) => v.d);
      expect(held.reconciler.running).toBe(2);
      expect(gate.starts()).toHaveLength(2);
      gate.release();
      const done = await waitFor("no active dispatch", () => dispatches(inst), { show: counts, until: (d) => d.active === 0 });
      expect(done.data.every((d: any) => d.success === true)).toBe(true);
      expect(done.reconciler.peak).toBe(2);

      // Replay the start/end lines the commands wrote: the overlap never passes 2.
      let running = 0;
      let most = 0;
      for (const l of gate.lines()) {
        running += l.startsWith("start ") ? 1 : -1;
        most = Math.max(most, running);
      }
      expect(gate.lines().filter((l) => l.startsWith("end "))).toHaveLength(6);
      expect(most).toBe(2);
      // The KNOW carries the command's stdout as its summary.
      const one = done.data[0];
      const recs = (await inst.socket("GET", `/v1/threads/${one.thread}/records`)).json.data;
      expect(recs.find((r: any) => r.act === "KNOW").body).toMatchObject({ verdict: "accept", fulfills: one.intend, summary: expect.stringMatching(/^done slow \d\n$/) });
    } finally {
      gate.release();
      await inst.stop();
    }
  });
});

describe("exactly once across restarts", () => {
  test("kill -9 while dispatches run, then a graceful restart: no INTEND runs twice; the interrupted ones are failed with reason restarted", async () => {
    const { inst, gate } = await gatedInstance();
    const pid = await inst.start();
    const first: string[] = [];
    for (let i = 0; i < 4; i++) first.push((await intend(inst, { goal: `before crash ${i}`, to: WORKER })).json.id);
    await waitFor(
      "2 gated dispatches started of 4",
      async () => ({ starts: gate.starts().length, total: (await dispatches(inst, "?limit=0")).total }),
      { until: (v) => v.starts === 2 && v.total === 4 },
    );
    process.kill(pid, "SIGKILL");
    await processGone(pid);
    gate.release(); // the orphaned commands finish on their own; their results are never recorded

    await inst.start();
    try {
      const closed = await waitFor("the 4 orphaned dispatches closed", () => dispatches(inst), { show: counts, until: (d) => d.active === 0 && d.total === 4 });
      for (const d of closed.data) expect(d).toMatchObject({ success: false, failure_reason: "restarted", completion_codepath: "restart" });
      const known = (await inst.socket("GET", `/v1/threads/${closed.data[0].thread}/records`)).json.data.filter((r: any) => r.act === "KNOW");
      expect(known).toHaveLength(1);
      expect(known[0].body).toMatchObject({ verdict: "failed", reason: "restarted" });

      const later: string[] = [];
      for (let i = 0; i < 2; i++) later.push((await intend(inst, { goal: `after crash ${i}`, to: WORKER })).json.id);
      await waitFor("6 dispatches, none active", () => dispatches(inst), { show: counts, until: (d) => d.total === 6 && d.active === 0 });
      expect((await inst.stop()).code).toBe(0);
      await inst.start();
      const after = await waitFor("6 dispatches after the restart", () => dispatches(inst), { show: counts, until: (d) => d.total === 6 });
      const byIntend = Object.fromEntries(after.data.map((d: any) => [d.intend, d]));
      for (const id of later) expect(byIntend[id]).toMatchObject({ success: true, failure_reason: null });
      for (const id of first) expect(byIntend[id].failure_reason).toBe("restarted");
      const listed = await inst.spl(["dispatch", "list"]);
      expect(listed.stdout.match(/failed .* restarted/g)).toHaveLength(4);
    } finally {
      await inst.stop();
    }
    // Each INTEND ran at most once: two before the crash, two after it, none again after restarts.
    const ran = gate.starts();
    expect(new Set(ran).size).toBe(ran.length);
    expect(ran).toHaveLength(4);
  });
});

describe("dispatch config mistakes", () => {
  test("a missing command and a target with no adapter fail their dispatch with the fix; the daemon keeps serving", async () => {
    const inst = new Instance();
    await initWith(
      inst,
      [
        `[dispatch.targets."did:sync:agent:ghost"]`,
        `adapter = "exec"`,
        `command = ["/nonexistent/spl-worker", "--go"]`,
        `[dispatch.targets."did:sync:agent:half"]`,
        `timeout_secs = 30`,
      ].join("\n"),
    );
    await inst.start();
    try {
      const ghost = (await intend(inst, { goal: "haunt", to: "did:sync:agent:ghost" })).json;
      const half = (await intend(inst, { goal: "half", to: "did:sync:agent:half" })).json;
      const fine = (await intend(inst, { goal: "fine", to: "did:sync:agent:anyone" })).json;
      const done = await waitFor("3 dispatches, none active", () => dispatches(inst), { show: counts, until: (d) => d.total === 3 && d.active === 0 });
      const byIntend = Object.fromEntries(done.data.map((d: any) => [d.intend, d]));
      expect(byIntend[ghost.id].failure_reason).toBe(
        '[dispatch.targets."did:sync:agent:ghost"] in config.toml: command /nonexistent/spl-worker not found — install it, or give its full path in command and restart',
      );
      expect(byIntend[half.id].failure_reason).toBe(
        '[dispatch.targets."did:sync:agent:half"] in config.toml has no adapter — add adapter = "echo", or adapter = "exec" with command = [...], and restart',
      );
      expect(byIntend[fine.id]).toMatchObject({ success: true, completion_codepath: "echo" });

      // The fix is in the failing KNOW, in `spl dispatch list`, and in one ERROR log line each.
      const know = (await inst.socket("GET", `/v1/threads/${ghost.thread}/records`)).json.data.find((r: any) => r.act === "KNOW");
      expect(know.body).toMatchObject({ fulfills: ghost.id, verdict: "failed", reason: byIntend[ghost.id].failure_reason });
      const listed = (await inst.spl(["dispatch", "list"])).stdout;
      expect(listed).toContain("command /nonexistent/spl-worker not found — install it");
      expect(listed).toContain("has no adapter — add adapter");
      const errors = await waitFor("2 ERROR lines from dispatch", () => logLines(inst, "syncropel_engine::dispatch").filter((l) => l.level === "ERROR"), { until: (e) => e.length === 2 });
      expect(errors.map((e: any) => e.record).sort()).toEqual([ghost.id, half.id].sort());
      for (const e of errors) expect(e.reason).not.toContain("\n");
      expect((await inst.http("GET", "/health")).status).toBe(200);
      expect((await intend(inst, { goal: "still here" })).status).toBe(201);
    } finally {
      await inst.stop();
    }
  });

  test("a malformed [dispatch] section stops the start with the key and the fix", async () => {
    const cases: Array<[string, RegExp]> = [
      [`[dispatch]\nconcurrency = "lots"\n`, /\[dispatch\] concurrency must be an integer from 1 to 256 — e.g. concurrency = 4(;|$)/],
      [`[dispatch]\nconcurency = 2\n`, /\[dispatch\] concurency must be one of concurrency, targets \(unknown key\) — /],
      [`[dispatch.targets."did:sync:agent:w"]\nadapter = "exec"\ncommand = "make all"\n`, /\[dispatch.targets."did:sync:agent:w"\] command must be a non-empty list of strings \(argv, no shell\) — e.g. command = /],
      [`[dispatch.targets."did:sync:agent:w"]\nadapter = "shell"\n`, /\[dispatch.targets."did:sync:agent:w"\] adapter must be "echo" or "exec" — /],
    ];
    for (const [toml, expected] of cases) {
      const inst = new Instance();
      await initWith(inst, toml);
      const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
      expect(r.code).toBe(1);
      const line = r.stderr.trim();
      expect(line.split("\n")).toHaveLength(1);
      expect(line).toStartWith(`error: ${inst.path("config.toml")}: `);
      expect(line).toMatch(expected);
      expect(existsSync(inst.path("run", "spl.pid"))).toBe(false);
    }
  });
});

describe("the exec adapter's environment", () => {
  test("a command running `env` sees the allowlist, the SPL_* dispatch variables and its pass_env, never the daemon's AWS_* or other secrets", async () => {
    const inst = new Instance({ env: { AWS_SECRET_ACCESS_KEY: "wJalrXUtnFEMI-not-for-commands", AWS_ACCESS_KEY_ID: "AKIA-not-for-commands", SPL_TOKEN: "spl_local_leak", DB_PASSWORD: "hunter2", SHARE_ME: "shared-value", LANG: "C.UTF-8", TZ: "UTC" } });
    await initWith(inst, [`[dispatch.targets."did:sync:agent:env"]`, `adapter = "exec"`, `command = ["env"]`, `pass_env = ["SHARE_ME"]`].join("\n"));
    await inst.start();
    try {
      const goal = 'quoted "$(touch /tmp/spl-never)" goal';
      const sent = (await intend(inst, { goal, to: "did:sync:agent:env" })).json;
      const know = await waitFor("the fulfilling KNOW of the env dispatch", async () => (await inst.socket("GET", `/v1/threads/${sent.thread}/records`)).json.data.find((r: any) => r.act === "KNOW" && r.body.fulfills === sent.id));
      expect(know.body.verdict).toBe("accept");
      const env = Object.fromEntries(
        (know.body.summary as string)
          .trim()
          .split("\n")
          .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1)]),
      );
      expect(Object.keys(env).sort()).toEqual(["HOME", "LANG", "PATH", "SHARE_ME", "SPL_GOAL", "SPL_RECORD_ID", "SPL_TARGET", "SPL_THREAD", "TZ", "USER"]);
      expect(env).toMatchObject({ SPL_GOAL: goal, SPL_RECORD_ID: sent.id, SPL_THREAD: sent.thread, SPL_TARGET: "did:sync:agent:env", SHARE_ME: "shared-value", HOME: inst.home, LANG: "C.UTF-8", TZ: "UTC" });
      const all = JSON.stringify((await inst.socket("GET", `/v1/threads/${sent.thread}/records`)).json);
      for (const secret of ["wJalrXUtnFEMI", "AKIA-not", "spl_local_leak", "hunter2"]) expect(all).not.toContain(secret);
    } finally {
      await inst.stop();
    }
  });

  test("pass_env of the wrong shape stops the start naming the key", async () => {
    const inst = new Instance();
    await initWith(inst, [`[dispatch.targets."did:sync:agent:env"]`, `adapter = "exec"`, `command = ["env"]`, `pass_env = "AWS_*"`].join("\n"));
    const r = await inst.spl(["serve", "--port", String(inst.port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('[dispatch.targets."did:sync:agent:env"] pass_env must be a list of environment variable names — e.g. pass_env = ["GITHUB_TOKEN"]');
  });
});

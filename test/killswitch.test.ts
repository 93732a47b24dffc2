// The kill switch (issue 12, SPEC 15) on the compiled binary: a coordinator and two workers with a
// short heartbeat (fleet-harness.ts HEARTBEAT_SECS); `spl kill` / `spl unkill` on the coordinator,
// enforced on every member (soft, hard with its grace, emergency), reaching a worker that was
// down, shown by `spl fleet status`, and the one-line errors of bad input.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { consecutivePorts, localFleet } from "./fleet-harness";
import { Instance, SPL, isAlive, readUntil, track, waitFor } from "./harness";

const { coord, workerPort, homeOf, asMember, pidOf, ok, startArgs, trackSpawned, onMember, whenLive, teardown } = localFleet(2);
const MEMBERS = ["coordinator", "worker-a", "worker-b"] as const;


let seq = 0;
const write = (name: string, act: string, namespace: string) =>
  onMember(name, "POST", "/v1/records", { act, actor: "did:sync:user:tester", thread: `th_killswitch_${act}_${++seq}`, body: { text: "work", namespace } });

/** Control record ids a member holds (to wait until it has caught up with the coordinator). */
async function controlIds(name: string): Promise<string[]> {
  const r = await onMember(name, "GET", "/v1/records?thread=th_fleet_control&limit=1000");
  return r.json.data.map((rec: any) => rec.id);
}
async function lastControlId(): Promise<string> {
  const ids = await controlIds("coordinator");
  return ids[ids.length - 1]!;
}
/** Every member holds the coordinator's latest control record (forwarded at once, or pulled after a beat). */
async function everyMemberHas(id: string, names: readonly string[] = MEMBERS) {
  for (const n of names) await waitFor(`${n} to hold control record ${id} (its th_fleet_control ids)`, () => controlIds(n), { stepMs: 100, until: (ids) => ids.includes(id) });
}

beforeAll(async () => {
  await ok(["init"]);
  const r = await coord.spl(startArgs, { timeoutMs: 90_000 });
  trackSpawned(r.stdout);
  if (r.code !== 0) throw new Error(`fleet start exited ${r.code}: ${r.stderr}${r.stdout}`);
}, 120_000);

afterAll(() => teardown(MEMBERS), 60_000);

describe("namespace freezes", () => {
  test("soft: INTEND/DO refused with 403 NAMESPACE_FROZEN on every member, children included; KNOW/LEARN and other namespaces pass; the fleet_* CEL functions see it", async () => {
    expect(await ok(["kill", "--namespace", "docs/v0.11", "--reason", "bad release"])).toBe("✓ soft freeze of 'docs/v0.11' recorded\n");
    await everyMemberHas(await lastControlId());
    for (const name of MEMBERS) {
      for (const act of ["INTEND", "DO"]) {
        const r = await write(name, act, "docs/v0.11");
        expect(r.status).toBe(403);
        expect(r.json.code).toBe("NAMESPACE_FROZEN");
        expect(r.json.message).toContain("spl unkill --namespace docs/v0.11");
      }
      expect((await write(name, "INTEND", "docs/v0.11/drafts")).json.code).toBe("NAMESPACE_FROZEN");
      expect((await write(name, "KNOW", "docs/v0.11")).status).toBe(201);
      expect((await write(name, "LEARN", "docs/v0.11")).status).toBe(201);
      expect((await write(name, "INTEND", "docs/v0.12")).status).toBe(201);
      expect((await write(name, "INTEND", "docs/v0.110")).status).toBe(201);
    }
    // The CEL bindings see the same state on a worker (SPEC 15; fleet reference section 6).
    const cel = (expr: string) => ok(["expr", "eval", expr, "--context", "permission"], asMember("worker-a"));
    expect(await cel("fleet_frozen_namespaces()")).toBe('["docs/v0.11"]\n');
    expect(await cel("fleet_hard_frozen_past_grace()")).toBe("[]\n");
    expect(await cel(`!fleet_frozen_namespaces().exists(ns, "docs/v0.11" == ns)`)).toBe("false\n");
    const cli = await coord.spl(["intend", "more work", "--body", '{"namespace":"docs/v0.11"}'], { env: asMember("worker-a") });
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain("namespace 'docs/v0.11' is under a soft freeze");
  }, 60_000);

  test("spl fleet status lists the freeze as the runbook prints it; -o json carries it", async () => {
    const out = await ok(["fleet", "status"]);
    expect(out).toContain("\n  Active freezes:\n    [soft] docs/v0.11 — bad release\n\n  Emergency stop:   inactive\n");
    const json = JSON.parse(await ok(["fleet", "status", "-o", "json"]));
    expect(json.freezes).toEqual([expect.objectContaining({ namespace: "docs/v0.11", level: "soft", reason: "bad release" })]);
    // A worker's view is its coordinator's.
    expect(await ok(["fleet", "status"], asMember("worker-b"))).toContain("    [soft] docs/v0.11 — bad release");
  });

  test("unkill always passes and lifts the freeze on every member", async () => {
    expect(await ok(["unkill", "--namespace", "docs/v0.11"])).toBe("✓ unfreeze of 'docs/v0.11' recorded\n");
    await everyMemberHas(await lastControlId());
    for (const name of MEMBERS) expect((await write(name, "INTEND", "docs/v0.11")).status).toBe(201);
    expect(await ok(["fleet", "status"])).toContain("\n  Active freezes:   (none)\n");
  }, 60_000);

  test("hard: new work refused at once; KNOW/LEARN pass during the grace and are refused after it", async () => {
    expect(await ok(["kill", "--namespace", "ops", "--level", "hard", "--grace", "3600"])).toBe("✓ hard freeze of 'ops' recorded\n");
    expect(await ok(["kill", "--namespace", "billing", "--level", "hard", "--grace", "0", "--reason", "leak"])).toBe("✓ hard freeze of 'billing' recorded\n");
    await everyMemberHas(await lastControlId());
    for (const name of MEMBERS) {
      expect((await write(name, "INTEND", "ops")).json.code).toBe("NAMESPACE_FROZEN");
      expect((await write(name, "KNOW", "ops")).status).toBe(201);
      for (const act of ["INTEND", "KNOW", "LEARN"]) {
        const r = await write(name, act, "billing");
        expect(r.status).toBe(403);
        expect(r.json.code).toBe("NAMESPACE_FROZEN");
      }
    }
    expect(await ok(["expr", "eval", "fleet_hard_frozen_past_grace()", "--context", "permission"], asMember("worker-b"))).toBe('["billing"]\n');
    expect(await ok(["fleet", "status"])).toContain("\n  Active freezes:\n    [hard] billing — leak\n    [hard] ops — no reason given\n\n");
    await ok(["unkill", "--namespace", "ops"]);
    await ok(["unkill", "--namespace", "billing"]);
    await everyMemberHas(await lastControlId());
    for (const name of MEMBERS) expect((await write(name, "KNOW", "billing")).status).toBe(201);
  }, 60_000);

  test("a worker that was down when the freeze was issued enforces it once it is back", async () => {
    await ok(["fleet", "stop", "--instance", "worker-b"]);
    expect(await ok(["kill", "--namespace", "late"])).toBe("✓ soft freeze of 'late' recorded\n");
    const id = await lastControlId();
    expect(await controlIds("coordinator")).toContain(id);
    // Started by hand (not `fleet start`, which copies the thread): the worker pulls it after its first beat.
    const r = await coord.spl(["serve", "--daemon", "--port", String(workerPort + 1)], { env: asMember("worker-b") });
    expect(r.code).toBe(0);
    track(pidOf("worker-b"));
    await everyMemberHas(id, ["worker-b"]);
    expect((await write("worker-b", "INTEND", "late")).json.code).toBe("NAMESPACE_FROZEN");
    await ok(["unkill", "--namespace", "late"]);
  }, 120_000);
});

describe("emergency stop", () => {
  test("no new INTEND/DO anywhere; KNOW/LEARN and heartbeats pass; status shows it; unkill --emergency clears it", async () => {
    expect(await ok(["kill", "--emergency", "--reason", "v1 → v2 upgrade"])).toBe("✓ emergency stop recorded\n");
    await everyMemberHas(await lastControlId());
    for (const name of MEMBERS) {
      for (const act of ["INTEND", "DO"]) {
        const r = await write(name, act, "anything");
        expect(r.status).toBe(403);
        expect(r.json.code).toBe("EMERGENCY_STOP");
        expect(r.json.message).toContain("spl unkill --emergency");
      }
      expect((await write(name, "KNOW", "anything")).status).toBe(201);
      expect((await write(name, "LEARN", "anything")).status).toBe(201);
    }
    expect(await ok(["expr", "eval", "fleet_emergency_active()", "--context", "permission"], asMember("worker-b"))).toBe("true\n");
    const status = await ok(["fleet", "status"]);
    expect(status).toContain("\n  Emergency stop:\n  ⚠ EMERGENCY STOP ACTIVE\n    Reason: v1 → v2 upgrade\n    Issued by: did:sync:user:");
    // --live adds each member's version, health and active dispatches, and the pending fan-outs.
    await whenLive(MEMBERS); // the frame below shows every member live
    const live = Bun.spawn([SPL, "fleet", "status", "--live"], { env: coord.env, stdout: "pipe", stderr: "pipe" });
    track(live.pid);
    const frame = await readUntil(live.stdout, "a fleet status --live frame down to its pending fan-outs", (t) => t.includes("Pending fan-outs:")).finally(() => live.kill("SIGINT"));
    expect(await live.exited).toBe(0);
    expect(frame).toContain("  ⚠ EMERGENCY STOP ACTIVE\n");
    expect(frame).toContain("\n  Members:\n    NAME          STATUS    VERSION     HEALTH     ACTIVE DISPATCHES\n");
    for (const name of MEMBERS) expect(frame).toMatch(new RegExp(`\\n    ${name} +live +0\\.1\\.0 +healthy +0\\n`));
    expect(frame).toContain("\n\n  Pending fan-outs: (none)\n");
    // Heartbeats still land: every member stays live through the stop.
    const before = JSON.parse(await ok(["fleet", "status", "-o", "json"])).instances.map((m: any) => m.last_heartbeat);
    await waitFor(
      `a newer beat from every member, all live (last_heartbeat was ${before.join(", ")})`,
      async () => JSON.parse(await ok(["fleet", "status", "-o", "json"])).instances.map((m: any) => ({ name: m.name, status: m.status, last_heartbeat: m.last_heartbeat })),
      { stepMs: 200, until: (ms: any[]) => ms.length === 3 && ms.every((m, i) => m.status === "live" && m.last_heartbeat > before[i]) },
    );
    expect(await ok(["unkill", "--emergency"])).toBe("✓ emergency clear recorded\n");
    await everyMemberHas(await lastControlId());
    for (const name of MEMBERS) expect((await write(name, "INTEND", "anything")).status).toBe(201);
    expect(await ok(["fleet", "status"])).toContain("\n  Emergency stop:   inactive\n");
    expect(await ok(["expr", "eval", "fleet_emergency_active()", "--context", "permission"])).toBe("false\n");
  }, 90_000);
});

describe("bad input", () => {
  const cases: [string[], number, string][] = [
    [["unkill", "--namespace", "never-frozen"], 1, "error: namespace 'never-frozen' is not frozen — frozen now: (none) ('spl fleet status')\n"],
    [["unkill", "--emergency"], 1, "error: no emergency stop is active — nothing to lift; 'spl fleet status' shows the fleet's freezes\n"],
    [["kill", "--namespace", "docs", "--level", "medium"], 2, "error: --level must be soft or hard, got 'medium' — use --level soft (new work refused) or --level hard (everything, after --grace)\n"],
    [["kill", "--namespace", "docs", "--level", "hard", "--grace", "soon"], 2, "error: --grace must be whole seconds from 0 to 86400, got 'soon' — e.g. --grace 60\n"],
    [["kill", "--namespace", "docs", "--grace", "10"], 2, "error: --grace applies only to a hard freeze — add --level hard, or leave out --grace\n"],
    [["kill"], 2, "error: nothing to freeze — give --namespace NS or --emergency, e.g. spl kill --namespace docs\n"],
    [["kill", "--namespace", "docs", "--emergency"], 2, "error: give --namespace NS or --emergency, not both — spl kill --namespace docs  or  spl kill --emergency\n"],
    [["kill", "--namespace", "has space"], 2, "error: --namespace 'has space' is not a namespace — use letters, digits, '.', '_', '-' and '/', e.g. --namespace docs/v0.11\n"],
  ];
  test("one-line errors naming the fix, the right exit code, and nothing written", async () => {
    const before = await controlIds("coordinator");
    for (const [args, code, err] of cases) {
      const r = await coord.spl(args);
      expect({ args, code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({ args, code, stderr: err, stdout: "" });
    }
    expect(await controlIds("coordinator")).toEqual(before);
  }, 60_000);

  test("th_fleet_control is written only by fleet members: a records:write token is refused", async () => {
    const created = await coord.spl(["token", "create", "--scopes", "records:write", "-o", "json"]);
    const tok = JSON.parse(created.stdout);
    const secret = created.stderr.match(/token \(shown once\): (\S+)/)![1]!;
    const r = await coord.http("POST", "/v1/records", { act: "LEARN", actor: tok.actor, thread: "th_fleet_control", body: { topic: "emergency_stop" } }, { authorization: `Bearer ${secret}` });
    expect(r.status).toBe(403);
    expect((await ok(["fleet", "status", "-o", "json"])).includes('"active": true')).toBe(false);
  });
});

describe("forwarding", () => {
  test("with a 60 s heartbeat, the coordinator forwards a freeze to a live worker long before that worker's next beat", async () => {
    const slow = new Instance();
    const port = consecutivePorts(1);
    const slowHome = (name: string) => (name === "coordinator" ? slow.splHome : `${slow.splHome}-${name}`);
    try {
      expect((await slow.spl(["init"])).code).toBe(0);
      const r = await slow.spl(["fleet", "start", "--workers", "1", "--port", String(slow.port), "--worker-port", String(port), "--heartbeat", "60"], { timeoutMs: 90_000 });
      trackSpawned(r.stdout);
      expect(r.code).toBe(0);
      expect((await slow.spl(["kill", "--namespace", "slow"])).stdout).toBe("✓ soft freeze of 'slow' recorded\n");
      // The worker's first beat was at its start and its next is ~60 s away; the wait's bound (30 s) is well short of that.
      const sock = join(slowHome("worker-a"), "run", "spl.sock");
      const post = () =>
        fetch("http://localhost/v1/records", { method: "POST", unix: sock, headers: { "content-type": "application/json" }, body: JSON.stringify({ act: "INTEND", actor: "did:sync:user:tester", thread: `th_slow_${++seq}`, body: { namespace: "slow" } }) } as RequestInit);
      const control = async () => ((await (await fetch("http://localhost/v1/records?thread=th_fleet_control", { unix: sock } as RequestInit)).json()) as any).data.length;
      await waitFor("the forwarded freeze on the worker (its th_fleet_control record count)", control, { stepMs: 100, until: (n) => n > 0 });
      expect((await post()).status).toBe(403);
    } finally {
      await slow.spl(["fleet", "stop", "--all"]);
      for (const name of ["coordinator", "worker-a"]) {
        try {
          const pid = Number(readFileSync(join(slowHome(name), "run", "spl.pid"), "utf8").trim());
          if (isAlive(pid)) process.kill(pid, "SIGKILL");
        } catch {}
      }
    }
  }, 120_000);
});

describe("without the coordinator", () => {
  const coordUrl = () => `http://127.0.0.1:${coord.port}`;
  const lastOf = async (name: string) => (await controlIds(name)).at(-1)!;

  test("spl kill on a worker applies there at once and is forwarded; with the coordinator down it says so, and every member has it once the coordinator is back", async () => {
    const up = await ok(["kill", "--namespace", "w-up"], asMember("worker-a"));
    expect(up).toBe(`✓ soft freeze of 'w-up' recorded\n  applied here and forwarded to the coordinator ${coordUrl()}\n`);
    await everyMemberHas(await lastOf("worker-a"));
    await ok(["unkill", "--namespace", "w-up"], asMember("worker-b"));
    await everyMemberHas(await lastOf("worker-b"));
    for (const name of MEMBERS) expect((await write(name, "INTEND", "w-up")).status).toBe(201);

    expect((await coord.spl(["serve", "--stop"])).code).toBe(0);
    const r = await coord.spl(["kill", "--namespace", "w-down", "--level", "hard", "--grace", "3600"], { env: asMember("worker-b"), timeoutMs: 15_000 });
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`✓ hard freeze of 'w-down' recorded\n  applied here; the coordinator ${coordUrl()} has not taken it yet — it is forwarded as soon as it answers (spl doctor)\n`);
    expect((await write("worker-b", "INTEND", "w-down")).json.code).toBe("NAMESPACE_FROZEN");
    expect((await write("worker-a", "INTEND", "w-down")).status).toBe(201);
    const id = await lastOf("worker-b");
    await coord.start();
    track(pidOf("coordinator"));
    // The worker forwards it after its next acknowledged beat; the coordinator forwards it on.
    await everyMemberHas(id);
    for (const name of MEMBERS) expect((await write(name, "INTEND", "w-down")).json.code).toBe("NAMESPACE_FROZEN");
    await ok(["unkill", "--namespace", "w-down"]);
    await everyMemberHas(await lastControlId());
  }, 90_000);

  test("fail closed: a worker that has not reached its coordinator for fail_closed_after_secs refuses new work (503), lets KNOW/LEARN and unkill through, and takes work again after a beat", async () => {
    appendFileSync(join(homeOf("worker-a"), "config.toml"), "fail_closed_after_secs = 2\n");
    expect((await coord.spl(["serve", "--restart"], { env: asMember("worker-a") })).code).toBe(0);
    track(pidOf("worker-a"));
    await waitFor(async () => (await write("worker-a", "INTEND", "fc")).status === 201, 20_000, 200);
    expect((await coord.spl(["serve", "--stop"])).code).toBe(0);
    const refused = await waitFor(async () => {
      const w = await write("worker-a", "INTEND", "fc");
      return w.status === 503 ? w : null;
    }, 30_000, 200);
    expect(refused!.json.code).toBe("COORDINATOR_UNREACHABLE");
    expect(refused!.json.message).toContain(`this member has not reached its coordinator ${coordUrl()} for`);
    expect(refused!.json.message).toContain("fail_closed_after_secs = 2");
    expect((await write("worker-a", "DO", "fc")).status).toBe(503);
    expect((await write("worker-a", "KNOW", "fc")).status).toBe(201);
    expect((await write("worker-a", "LEARN", "fc")).status).toBe(201);
    // The worker's own kill and unkill still pass: the kill switch never fails open.
    expect((await coord.spl(["kill", "--namespace", "fc-ns"], { env: asMember("worker-a"), timeoutMs: 15_000 })).code).toBe(0);
    expect((await coord.spl(["unkill", "--namespace", "fc-ns"], { env: asMember("worker-a"), timeoutMs: 15_000 })).code).toBe(0);
    const doctor = await coord.spl(["doctor"], { env: asMember("worker-a") });
    expect(doctor.stdout).toMatch(/✗ fleet heartbeat +no beat acknowledged for \d+s: new INTEND\/DO\/CALL are refused \(fail_closed_after_secs = 2\)/);
    await coord.start();
    track(pidOf("coordinator"));
    await waitFor(async () => (await write("worker-a", "INTEND", "fc")).status === 201, 20_000, 200);
  }, 90_000);
});

describe("the reconciler", () => {
  test("dispatches nothing into a namespace frozen in the same transaction that wrote the INTEND", async () => {
    const inst = new Instance();
    try {
      expect((await inst.spl(["init"])).code).toBe(0);
      appendFileSync(inst.path("config.toml"), `\n[dispatch.targets."did:sync:agent:coder"]\nadapter = "echo"\n`);
      await inst.start();
      expect((await inst.spl(["config", "add-rule", "--name", "all-to-coder", "--expression", 'record.act == "INTEND"', "--target", "did:sync:agent:coder"])).code).toBe(0);
      // One batch, one transaction: the freeze is folded after the commit, so both INTENDs are
      // stored, and only the reconciler can keep the frozen one from being dispatched.
      const intend = (ns: string) => ({ act: "INTEND", actor: "did:sync:user:tester", thread: `th_reconcile_${ns}`, body: { text: "go", namespace: ns } });
      const freeze = { act: "LEARN", actor: "did:sync:user:tester", thread: "th_fleet_control", body: { topic: "freeze", namespace: "frozen-ns", level: "soft" } };
      const batch = await inst.socket("POST", "/v1/records/batch", { records: [freeze, intend("frozen-ns"), intend("open-ns")] });
      expect(batch.json.data.map((d: any) => d.status)).toEqual(["created", "created", "created"]);
      const [, frozenId, openId] = batch.json.data.map((d: any) => d.id);
      const dispatched = async () => JSON.parse((await inst.spl(["dispatch", "list", "-o", "json"])).stdout).map((d: any) => d.intend);
      await waitFor(`the open-namespace INTEND ${openId} dispatched (spl dispatch list intends)`, dispatched, { stepMs: 100, until: (ids: string[]) => ids.includes(openId) });
      expect(await dispatched()).not.toContain(frozenId);
      // INFO lines reach the file in batches: wait for this one.
      const log = await waitFor(`the routing decision for the frozen INTEND ${frozenId}`, () => readFileSync(inst.path("logs", "spl.log"), "utf8"), { until: (l) => l.includes(`"record":"${frozenId}"`) });
      expect(log).toMatch(new RegExp(`"msg":"routing decision","record":"${frozenId}".*"outcome":"frozen"`));
    } finally {
      await inst.stop();
    }
  }, 60_000);
});

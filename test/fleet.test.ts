// The fleet (issue 11, SPEC 14) on the compiled binary: `spl fleet start` boots a coordinator and
// two workers on free ports with a short heartbeat (fleet-harness.ts HEARTBEAT_SECS); the registry, the fleet verbs, stale/archived
// from a kill -9, the draining beat, restarts, fleet auth and the faults of the runbook.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { localFleet } from "./fleet-harness";
import { Instance, readUntil, track, waitFor } from "./harness";

const { coord, workerPort, homeOf, asMember, pidOf, ok, startArgs, trackSpawned, heartbeatSecs, members, whenLive, teardown, onMember } = localFleet(3);
const N = heartbeatSecs;
const ALL = ["coordinator", "worker-a", "worker-b"];
let startOut = "";
const dids: Record<string, string> = {};

const statusOf = async (did: string) => (await members()).find((m) => m.did === did)?.status;
const logOf = (name: string) => (existsSync(join(homeOf(name), "logs", "spl.log")) ? readFileSync(join(homeOf(name), "logs", "spl.log"), "utf8") : "");

beforeAll(async () => {
  // A plain coordinator with engine config already in its store: fleet start makes it the
  // coordinator (restarting it) and copies th_engine_config into the new workers.
  await ok(["init"]);
  await coord.start();
  await ok(["config", "add-rule", "--name", "code-to-builder", "--domain", "code", "--act", "INTEND", "--target", "did:sync:agent:builder"]);
  const r = await coord.spl(startArgs, { timeoutMs: 90_000 });
  trackSpawned(r.stdout);
  startOut = r.stdout;
  if (r.code !== 0) throw new Error(`fleet start exited ${r.code}: ${r.stderr}${r.stdout}`);
  for (const m of await members()) dids[m.name] = m.did;
}, 120_000);

afterAll(() => teardown(["coordinator", "worker-a", "worker-b", "worker-c"]), 60_000);

describe("spl fleet start", () => {
  test("prints the runbook's lines, converges and exits 0; the workers live in <home>-worker-{a,b}", () => {
    const lines = startOut.split("\n");
    expect(lines[0]).toBe("Starting local fleet: 1 coordinator + 2 workers");
    expect(lines[1]).toBe("");
    // The coordinator ran as a plain instance: fleet start says it restarts it, and why.
    expect(lines[2]).toMatch(/^  \[coordinator\] restarting PID \d+ \(\[fleet\] in its config.toml changed\)$/);
    expect(lines[3]).toBe(`  [coordinator] spawned PID ${lines[3]!.match(/PID (\d+)/)?.[1]} on :${coord.port} (home=~/.syncro)`);
    expect(lines[4]).toMatch(new RegExp(`^  \\[worker-a\\]  spawned PID \\d+ on :${workerPort} \\(home=~/\\.syncro-worker-a\\)$`));
    expect(lines[5]).toMatch(new RegExp(`^  \\[worker-b\\]  spawned PID \\d+ on :${workerPort + 1} \\(home=~/\\.syncro-worker-b\\)$`));
    expect(lines.slice(6).join("\n")).toBe("\nWaiting for fleet convergence (3 live)...\n  ✓ fleet converged\n\nFleet ready. Inspect with:\n  spl fleet list\n  spl fleet status\n");
    expect(Object.keys(dids).sort()).toEqual(["coordinator", "worker-a", "worker-b"]);
  });

  test("the coordinator's engine config reached the new workers (same record ids), and the fan-out rule", async () => {
    const ids = (out: string) => JSON.parse(out).map((r: any) => r.id).sort();
    const mine = ids(await ok(["thread", "records", "th_engine_config", "-o", "json"]));
    expect(mine.length).toBeGreaterThan(0);
    for (const w of ["worker-a", "worker-b"]) {
      const theirs = JSON.parse(await ok(["thread", "records", "th_engine_config", "-o", "json"], asMember(w))) as any[];
      expect(theirs.filter((r) => r.body.name !== "fanout-children").map((r) => r.id).sort()).toEqual(mine);
      expect(theirs.filter((r) => r.body.name === "fanout-children").map((r) => r.body)).toEqual([{ topic: "routing_rule", name: "fanout-children", expression: "has(record.body.fanout)", target: "did:sync:agent:echo", priority: -10 }]);
    }
  });

  test("a second start reuses the homes and the running members, and converges again", async () => {
    const r = await coord.spl(startArgs, { timeoutMs: 90_000 });
    trackSpawned(r.stdout);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("  ✓ fleet converged");
    expect(r.stdout).not.toContain("spawned");
    const again: Record<string, string> = {};
    for (const m of await members()) again[m.name] = m.did;
    expect(again).toEqual(dids);
  });
});

describe("observing the fleet", () => {
  test("spl fleet list: the runbook's columns, one row per member, and the counts", async () => {
    await whenLive(ALL);
    const out = await ok(["fleet", "list"]);
    const lines = out.trimEnd().split("\n");
    expect(lines[0]).toBe("  DID                                      ENDPOINT                  STATUS   VERSION  UPTIME     HEALTH");
    const rows = lines.slice(1, 4);
    expect(rows.map((l) => l.slice(2, 36)).sort()).toEqual(Object.values(dids).sort());
    for (const row of rows) {
      expect(row).toMatch(/^  did:sync:instance:[0-9a-f]{16} {7}http:\/\/127\.0\.0\.1:\d+ +live {5}0\.1\.0 {4}\S+ +healthy$/);
      expect(row.indexOf("http")).toBe(43);
      expect(row.indexOf("live")).toBe(69);
    }
    expect(lines.slice(4)).toEqual(["", "  3 live · 0 stale · 0 archived"]);
    const json = JSON.parse(await ok(["fleet", "list", "-o", "json"]));
    expect(json.map((m: any) => m.name).sort()).toEqual(["coordinator", "worker-a", "worker-b"]);
  });

  test("spl fleet status, show and ping print the runbook's blocks; -o json on each", async () => {
    await whenLive(ALL);
    expect(await ok(["fleet", "status"])).toBe(
      `Fleet status\n  Coordinator URL:  http://127.0.0.1:${coord.port}\n  Heartbeat:        every ${N}s\n  Instances:        3 live · 0 stale · 0 archived\n\n  Active freezes:   (none)\n\n  Emergency stop:   inactive\n`,
    );
    const tail = dids["worker-a"]!.split(":").pop()!;
    for (const key of [dids["worker-a"]!, tail, "worker-a"]) {
      const show = await ok(["fleet", "show", key]);
      expect(show).toMatch(
        new RegExp(
          `^Instance: ${dids["worker-a"]}\n  Endpoint:         http://127\\.0\\.0\\.1:${workerPort}\n  Status:           live\n  Version:          0\\.1\\.0\n  Uptime:           \\d+s\n  Health:           healthy\n  Active dispatches: 0\n  Store records:    \\d+\n  Last heartbeat:   \\d{10} \\(unix\\)\n$`,
        ),
      );
    }
    expect(await ok(["fleet", "ping", "worker-b"])).toMatch(new RegExp(`^  ✓ ${dids["worker-b"]} reachable in \\d+ms \\(200 OK\\)\n$`));
    expect(JSON.parse(await ok(["fleet", "ping", "worker-b", "-o", "json"]))).toMatchObject({ did: dids["worker-b"], reachable: true, status: 200 });
    expect(JSON.parse(await ok(["fleet", "show", "worker-b", "-o", "json"]))).toMatchObject({ did: dids["worker-b"], name: "worker-b", status: "live", role: "worker" });
    const s = JSON.parse(await ok(["fleet", "status", "-o", "json"]));
    expect(s).toMatchObject({ object: "fleet_status", coordinator_url: `http://127.0.0.1:${coord.port}`, heartbeat_interval_secs: N, counts: { live: 3, stale: 0, archived: 0 }, freezes: [], emergency: { active: false }, pending_fanouts: [] });
    for (const key of ["did", "name", "endpoint", "role", "status", "version", "uptime_secs", "health", "active_dispatches", "store_records", "last_heartbeat"]) expect(s.instances[0]).toHaveProperty(key);
  });

  test("an unknown member is one line listing the members, exit 1", async () => {
    const r = await coord.spl(["fleet", "show", "worker-z"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: no fleet member 'worker-z' — members: .*worker-a \(did:sync:instance:[0-9a-f]{16}\)/);
  });

  test("a worker answers the fleet verbs and GET /v1/fleet/status through its coordinator", async () => {
    await whenLive(ALL);
    const viaWorker = await ok(["fleet", "status"], asMember("worker-a"));
    expect(viaWorker).toContain(`Coordinator URL:  http://127.0.0.1:${coord.port}`);
    const tok = readFileSync(join(homeOf("worker-a"), "token"), "utf8").trim();
    const res = await fetch(`http://127.0.0.1:${workerPort}/v1/fleet/status`, { headers: { authorization: `Bearer ${tok}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).counts.live).toBe(3);
    const doctor = await coord.spl(["doctor"], { env: asMember("worker-a") });
    expect(doctor.stdout).toContain(`✓ fleet role              worker 'worker-a' (${dids["worker-a"]}) of http://127.0.0.1:${coord.port}`);
    expect(doctor.stdout).toContain(`✓ fleet coordinator       http://127.0.0.1:${coord.port} answers /health`);
    expect(doctor.stdout).toMatch(new RegExp(`✓ fleet heartbeat +last beat acknowledged \\d+s ago \\(every ${N}s\\)`));
  });

  test("spl status and spl doctor --port N inspect the local instance on that port (its own home)", async () => {
    const st = await ok(["status", "--port", String(workerPort + 1)]);
    expect(st).toContain(`Instance: ${dids["worker-b"]}`);
    const doc = await coord.spl(["doctor", "--port", String(workerPort + 1)]);
    expect(doc.stdout.split("\n")[0]).toBe(`spl doctor — ${homeOf("worker-b")}`);
    expect(doc.stdout).toContain("✓ fleet role              worker 'worker-b'");
    const bad = await coord.spl(["status", "--port", "nope"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^error: --port must be a port number, got 'nope' — e\.g\. --port 9201\n$/);
  });

  test("fleet start on a worker's home is refused: it names the coordinator it belongs to", async () => {
    const r = await coord.spl(["fleet", "start", "--workers", "1"], { env: asMember("worker-a") });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: ~\/\.syncro-worker-a is a worker of http:\/\/127\.0\.0\.1:\d+ .*— run 'spl fleet start' on the coordinator's home/);
  });

  test("status --live piped: a plain snapshot per interval; SIGINT exits 0", async () => {
    const proc = Bun.spawn([require("./harness").SPL, "fleet", "status", "--live"], { env: coord.env, stdout: "pipe", stderr: "pipe" });
    track(proc.pid);
    const text = await readUntil(proc.stdout, "two snapshots from fleet status --live (one per heartbeat interval)", (t) => (t.match(/^Fleet status$/gm) ?? []).length >= 2, 2 * N * 1000 + 30_000).finally(() => proc.kill("SIGINT"));
    expect(await proc.exited).toBe(0);
    expect(text).not.toContain("\x1b[");
    expect(text).toContain("Fleet status\n  Coordinator URL:");
  });
});

// A terminal for --live: util-linux `script` gives the command a pty; without it the test is skipped.
const SCRIPT = Bun.which("script");
if (!SCRIPT) console.log("skipping the fleet status --live terminal test: no 'script' (util-linux) on PATH");
test.skipIf(!SCRIPT)("status --live on a terminal redraws in place (cursor home, lines cleared, never the screen); Ctrl-C exits 0", async () => {
  const proc = Bun.spawn([SCRIPT!, "-qfec", `exec ${require("./harness").SPL} fleet status --live`, "/dev/null"], { env: coord.env, stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  track(proc.pid);
  const text = await readUntil(proc.stdout, "three frames from fleet status --live on a terminal (one a second)", (t) => (t.match(/Fleet status/g) ?? []).length >= 3).catch((err) => {
    proc.kill("SIGKILL");
    throw err;
  });
  proc.stdin.write("\x03");
  proc.stdin.end();
  expect(await proc.exited).toBe(0);
  const frames = text.split("\x1b[H").slice(1);
  expect(frames.length).toBeGreaterThanOrEqual(3);
  expect(text.split("\x1b[2J")).toHaveLength(2); // the screen is cleared once, before the first frame
  expect(frames[1]).toContain("Fleet status\x1b[K");
  expect(frames[1]).toContain("  Emergency stop:   inactive\x1b[K");
}, 60_000);

describe("heartbeats", () => {
  test("a kill -9'd worker goes stale, then archived; restarted it is live again", async () => {
    const did = dids["worker-b"]!;
    process.kill(pidOf("worker-b"), "SIGKILL");
    // Stale after 2 intervals without a beat, archived after 3: watch every status it passes.
    const seen: string[] = [];
    await waitFor(
      "the kill -9'd worker-b to go stale, then archived (statuses seen so far)",
      async () => {
        const s = await statusOf(did);
        if (s && seen.at(-1) !== s) seen.push(s);
        return seen;
      },
      { timeoutMs: 3 * N * 1000 + 30_000, stepMs: 25, until: () => seen.at(-1) === "archived" },
    );
    expect(seen).toEqual(["live", "stale", "archived"].slice(seen[0] === "live" ? 0 : 1));
    expect(seen).toContain("stale");
    // Archived, its last beat is history: no uptime, no "healthy", how long ago it was last heard from.
    const row = (await ok(["fleet", "list"])).split("\n").find((l) => l.includes(did))!;
    expect(row).toMatch(/ archived +0\.1\.0 +- +gone, last seen \d+s ago$/);
    expect(row).not.toContain("healthy");
    expect(await ok(["fleet", "show", did])).toMatch(/\n  Uptime: +-\n  Health: +gone, last seen \d+s ago\n/);
    const r = await coord.spl(["serve", "--daemon", "--port", String(workerPort + 1)], { env: asMember("worker-b") });
    expect(r.code).toBe(0);
    track(pidOf("worker-b"));
    await waitFor("the restarted worker-b reported live", () => statusOf(did), { stepMs: 100, until: (s) => s === "live" });
  }, 120_000);

  test("a coordinator restart keeps the registry (rebuilt from the store)", async () => {
    const r = await coord.spl(["serve", "--restart"]);
    expect(r.code).toBe(0);
    track(pidOf("coordinator"));
    const after = (await members()).map((m) => m.did).sort();
    expect(after).toEqual(Object.values(dids).sort());
    await whenLive(ALL);
  }, 120_000);

  test("fleet stop --instance sends a draining beat: the member is archived without going stale", async () => {
    const did = dids["worker-a"]!;
    const out = await ok(["fleet", "stop", "--instance", "worker-a"]);
    expect(out).toMatch(/^  \[worker-a\]  stopped PID \d+ \(home=~\/\.syncro-worker-a\)\n$/);
    const seen: string[] = [];
    await waitFor(
      "the stopped worker-a to be archived (status/health seen so far)",
      async () => {
        const m = (await members()).find((x) => x.did === did);
        const s = `${m.status}/${m.health}`;
        if (seen.at(-1) !== s) seen.push(s);
        return seen;
      },
      { timeoutMs: 2 * N * 1000 + 30_000, stepMs: 100, until: () => seen.at(-1)?.startsWith("archived/") === true },
    );
    expect(seen).toContain("live/draining");
    expect(seen.some((s) => s.startsWith("stale"))).toBe(false);
    expect((await ok(["fleet", "list"])).split("\n").find((l) => l.includes(did))).toMatch(/ archived +0\.1\.0 +- +stopped, last seen \d+s ago$/);
    const r = await coord.spl(["serve", "--daemon", "--port", String(workerPort)], { env: asMember("worker-a") });
    expect(r.code).toBe(0);
    track(pidOf("worker-a"));
    await waitFor("the restarted worker-a reported live", () => statusOf(did), { stepMs: 100, until: (s) => s === "live" });
  }, 120_000);
});

/** Every file under dir, recursively (homes, logs, stores, backups). */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).map((f) => join(dir, f)).filter((f) => {
    try {
      return require("node:fs").statSync(f).isFile();
    } catch {
      return false;
    }
  });
}

describe("member identity and a host set up by hand", () => {
  const host = new Instance();
  const url = () => `http://127.0.0.1:${coord.port}`;
  let hostDid = "";
  let joinToken = "";
  afterAll(async () => {
    await host.stop();
  });
  const hostLog = () => (existsSync(host.path("logs", "spl.log")) ? readFileSync(host.path("logs", "spl.log"), "utf8") : "");
  const coordLog = () => readFileSync(join(coord.splHome, "logs", "spl.log"), "utf8");
  const memberCredential = () => readFileSync(host.path("secrets", "fleet_member"), "utf8").trim();

  test("no credential: the member says so in its log; join refuses a taken name; join --name admits it with the coordinator's interval and engine config", async () => {
    mkdirSync(host.splHome, { recursive: true, mode: 0o700 });
    // A 15 s interval and the name of a live member on purpose: join takes the coordinator's, and refuses the name.
    writeFileSync(host.path("config.toml"), `[fleet]\ncoordinator_url = "${url()}"\nheartbeat_interval_secs = 15\nname = "worker-a"\n`, { mode: 0o600 });
    await host.start();
    const refused = await waitFor("the hand-set host's log line: its heartbeat refused for want of a fleet credential", () => hostLog().split("\n").find((l) => l.includes("heartbeat to") && l.includes("holds no fleet credential")), { stepMs: 100 });
    expect(JSON.parse(refused!)).toMatchObject({ level: "WARN" });
    expect(refused).toContain("spl fleet join");
    hostDid = JSON.parse((await host.spl(["status", "-o", "json"])).stdout).instance_did;
    expect((await members()).some((m) => m.did === hostDid)).toBe(false);

    joinToken = (await ok(["fleet", "token"])).trim();
    expect(joinToken).toMatch(/^spl_join_[a-z0-9]+_[A-Za-z0-9]+$/);
    expect(await ok(["fleet", "token"])).toBe(`${joinToken}\n`);
    writeFileSync(join(host.root, "join_token"), joinToken, { mode: 0o600 });
    const taken = await host.spl(["fleet", "join", url(), "--token-file", join(host.root, "join_token")]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toMatch(new RegExp(`^error: the coordinator at ${url()} refused to admit 'worker-a' \\(409 NAME_TAKEN\\): the name 'worker-a' belongs to ${dids["worker-a"]} \\(live\\) — pick another --name, or remove that member first on the coordinator: spl fleet forget worker-a\n$`));
    expect(existsSync(host.path("secrets", "fleet_member"))).toBe(false);

    const joined = await host.spl(["fleet", "join", url(), "--name", "worker-h", "--token-file", join(host.root, "join_token")]);
    expect(joined.code).toBe(0);
    expect(joined.stdout).toContain(`Joined the fleet of ${url()} as 'worker-h' (${hostDid}), epoch 1\n`);
    expect(joined.stdout).toContain(`name = "worker-h", heartbeat_interval_secs = ${N} (the coordinator's)`);
    expect(joined.stdout).toMatch(/engine config: [1-9]\d* record\(s\) from the coordinator/);
    expect(joined.stdout).toContain("Restart to apply");
    expect(statSync(host.path("secrets", "fleet_member")).mode & 0o777).toBe(0o600);
    expect(memberCredential()).toMatch(/^spl_member_[a-z0-9]+_[A-Za-z0-9]+$/);
    // The coordinator's engine config (the routing rule of beforeAll) arrived with the same ids.
    const ids = (out: string) => JSON.parse(out).map((r: any) => r.id).sort();
    const mine = ids(await ok(["thread", "records", "th_engine_config", "-o", "json"]));
    expect(ids((await host.spl(["thread", "records", "th_engine_config", "-o", "json"])).stdout)).toEqual(expect.arrayContaining(mine));
    expect((await host.spl(["serve", "--restart"])).code).toBe(0);
    await waitFor("the joined host reported live", () => statusOf(hostDid), { stepMs: 100, until: (s) => s === "live" });
    const doctor = await host.spl(["doctor"]);
    expect(doctor.stdout).toContain(`✓ fleet role              worker 'worker-h' (${hostDid}) of ${url()}`);
    expect(doctor.stdout).toMatch(new RegExp(`✓ fleet heartbeat +last beat acknowledged \\d+s ago \\(every ${N}s\\)`));
  }, 120_000);

  test("a forged heartbeat for another member's DID is refused (403) and the coordinator logs it; a join credential reads nothing", async () => {
    const auth = { authorization: `Bearer ${memberCredential()}` };
    const forged = await coord.http("POST", "/v1/fleet/heartbeat", { did: dids["worker-b"], name: "worker-b", endpoint: `http://127.0.0.1:${workerPort + 1}`, health: "healthy" }, auth);
    expect(forged.status).toBe(403);
    expect(forged.json.code).toBe("FORGED_HEARTBEAT");
    const line = await waitFor(() => coordLog().split("\n").find((l) => l.includes("heartbeat refused") && l.includes(dids["worker-b"]!)), 10_000, 100);
    expect(JSON.parse(line!)).toMatchObject({ level: "WARN", credential_of: hostDid, claimed: dids["worker-b"] });
    // Its own records only: writing as another actor is refused too.
    const other = await coord.http("POST", "/v1/records", { thread: "th_forge", actor: dids["worker-b"], act: "KNOW", body: { text: "x" } }, auth);
    expect([other.status, other.json.code]).toEqual([403, "DID_CLAIM_DENIED"]);
    const join = { authorization: `Bearer ${joinToken}` };
    const read = await coord.http("GET", "/v1/fleet/status", undefined, join);
    expect([read.status, read.json.code]).toEqual([403, "SCOPE_FORBIDDEN"]);
    expect((await coord.http("GET", "/v1/fleet/status", undefined, { authorization: "" })).status).toBe(401);
  });

  test("a worker that calls another with a higher epoch and names itself coordinator gains nothing in that call; the one it called asks it, is sent back, and keeps its coordinator", async () => {
    const epoch = (await coord.http("GET", "/v1/fleet/status")).json.epoch as number;
    const forgerUrl = `http://127.0.0.1:${workerPort}`;
    const forged = await fetch(`http://127.0.0.1:${workerPort + 1}/v1/records`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${readFileSync(join(homeOf("worker-a"), "secrets", "fleet_member"), "utf8").trim()}`,
        "content-type": "application/json",
        "x-syncropel-epoch": String(epoch + 5),
        "x-syncropel-coordinator": forgerUrl,
      },
      body: JSON.stringify({ thread: "th_forge_epoch", actor: dids["coordinator"], act: "KNOW", body: { text: "as the coordinator" } }),
    });
    expect([forged.status, ((await forged.json()) as any).code]).toEqual([403, "DID_CLAIM_DENIED"]);
    // worker-b beats to worker-a to find out; worker-a is no coordinator and names the one it follows.
    await waitFor("worker-b to follow worker-a's claim and be sent back", () => {
      const follows = logOf("worker-b").split("\n").filter((l) => l.includes("following the fleet's coordinator at"));
      const at = follows.findIndex((l) => l.includes(forgerUrl));
      return at >= 0 && follows.slice(at + 1).some((l) => l.includes(coord.url)) ? true : null;
    }, { timeoutMs: 30_000 });
    const back = Math.floor(Date.now() / 1000);
    const view = await waitFor("worker-b's beat acknowledged by the coordinator again", async () => (await onMember("worker-b", "GET", "/v1/fleet/member")).json, {
      timeoutMs: 30_000,
      until: (v) => v?.coordinator_url === coord.url && v?.last_ack_unix >= back,
    });
    expect({ epoch: view.epoch, did: view.coordinator_did }).toEqual({ epoch, did: dids["coordinator"] });
    expect((await coord.http("GET", "/v1/fleet/member")).json.deposed).toBeNull();
  }, 90_000);

  test("only the coordinator writes th_instance_registry: an ordinary token and a member credential get 403", async () => {
    const made = await ok(["token", "create", "--name", "writer", "--actor", "did:sync:agent:writer", "--scopes", "records:write,records:read"]);
    const tok = /spl_[a-z0-9]+_[a-z0-9]+_[A-Za-z0-9]+/.exec(made)![0];
    const rec = (actor: string) => ({ thread: "th_instance_registry", actor, act: "LEARN", body: { topic: "joined", did: "did:sync:instance:0000000000000000" } });
    const r = await coord.http("POST", "/v1/records", rec("did:sync:agent:writer"), { authorization: `Bearer ${tok}` });
    expect([r.status, r.json.code]).toEqual([403, "RESERVED_THREAD"]);
    const m = await coord.http("POST", "/v1/records", rec(hostDid), { authorization: `Bearer ${memberCredential()}` });
    expect([m.status, m.json.code]).toEqual([403, "RESERVED_THREAD"]);
  });

  test("spl fleet token --rotate: the new credential admits, the old one only for its grace", async () => {
    const rotated = await coord.spl(["fleet", "token", "--rotate", "--grace", "0"]);
    expect(rotated.code).toBe(0);
    const fresh = rotated.stdout.trim();
    expect(fresh).toMatch(/^spl_join_/);
    expect(fresh).not.toBe(joinToken);
    expect(rotated.stderr).toMatch(/^join credential valid until \S+ \(rotate: spl fleet token --rotate\); the previous one until \S+\n$/);
    const body = { did: "did:sync:instance:00000000000000aa", name: "sim-rotated", endpoint: "http://127.0.0.1:9", version: "0.1.0" };
    const old = await coord.http("POST", "/v1/fleet/join", body, { authorization: `Bearer ${joinToken}` });
    expect([old.status, old.json.code]).toEqual([401, "JOIN_EXPIRED"]);
    const ok200 = await coord.http("POST", "/v1/fleet/join", body, { authorization: `Bearer ${fresh}` });
    expect(ok200.status).toBe(200);
    expect(ok200.json).toMatchObject({ object: "fleet_membership", did: body.did, name: "sim-rotated", coordinator: { epoch: 1 }, heartbeat_interval_secs: N });
    expect(ok200.json.credential).toMatch(/^spl_member_/);
    expect(Object.keys(ok200.json.records).sort()).toEqual(["th_engine_config", "th_fleet_control"]);
    await ok(["fleet", "forget", "sim-rotated"]);
  });

  test("spl fleet forget: gone from the list, its credential refused everywhere, its name free", async () => {
    const out = await ok(["fleet", "forget", "worker-h"]);
    expect(out).toBe(`✓ forgot worker-h (${hostDid}): its credential is revoked, and its name is free\n`);
    expect((await members()).some((m) => m.did === hostDid)).toBe(false);
    const beat = await coord.http("POST", "/v1/fleet/heartbeat", { did: hostDid }, { authorization: `Bearer ${memberCredential()}` });
    expect([beat.status, beat.json.code]).toEqual([401, "MEMBER_UNKNOWN"]);
    await waitFor(() => hostLog().includes("refused this member's credential (401 MEMBER_UNKNOWN)"), 15_000, 100);
    const again = await coord.spl(["fleet", "forget", "worker-h"]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/^error: no fleet member 'worker-h' — members: /);
  });

  test("no credential — join or member — is in any log line, record body or backup", () => {
    const secrets = [joinToken, memberCredential(), readFileSync(join(coord.splHome, "secrets", "fleet_member"), "utf8").trim()].map((t) => t.split("_").pop()!);
    const leaks = [...filesUnder(coord.root), ...filesUnder(host.root)].filter((f) => !/secrets\/fleet_(token|member)$|\/join_token$/.test(f) && secrets.some((s) => readFileSync(f, "latin1").includes(s)));
    expect(leaks).toEqual([]);
  });
});

describe("faults", () => {
  test("coordinator down: workers keep serving and ingesting, WARN once a minute, re-register when it returns", async () => {
    expect((await coord.spl(["serve", "--stop"])).code).toBe(0);
    const before = logOf("worker-a").length;
    const wrote = await ok(["know", "written while the coordinator is down"], asMember("worker-a"));
    expect(wrote).toContain("recorded KNOW");
    // Several missed beats, but one WARN: wait until worker-a reports three failed beats (each
    // failure is stamped with its second; beats are an interval apart).
    await waitFor("worker-a's WARN that its heartbeat failed", () => logOf("worker-a").slice(before).includes("heartbeat to"), { stepMs: 100 });
    const failedAt = new Set<number>();
    await waitFor(
      "three failed heartbeats on worker-a (GET /v1/fleet/member last_error.at values seen)",
      async () => {
        const at = (await fetch("http://localhost/v1/fleet/member", { unix: join(homeOf("worker-a"), "run", "spl.sock") } as RequestInit).then((r) => r.json()) as any).last_error?.at;
        if (typeof at === "number") failedAt.add(at);
        return [...failedAt];
      },
      { timeoutMs: 3 * N * 1000 + 30_000, stepMs: 100, until: (ats) => ats.length >= 3 },
    );
    const warns = logOf("worker-a").slice(before).split("\n").filter((l) => l.includes('"WARN"') && l.includes("heartbeat to"));
    expect(warns).toHaveLength(1);
    expect(warns[0]).toContain("keeps serving locally");
    // spl doctor on the worker names the URL that failed and how to check it.
    const doctor = await coord.spl(["doctor"], { env: asMember("worker-a") });
    expect(doctor.code).toBe(2);
    expect(doctor.stdout).toContain(`✗ fleet coordinator       http://127.0.0.1:${coord.port} did not answer (cannot connect) — check [fleet] coordinator_url in`);
    expect(doctor.stdout).toMatch(/✗ fleet heartbeat .*cannot connect/);
    await coord.start();
    await whenLive(["worker-a"]);
    await waitFor("worker-a's log line 'heartbeat acknowledged again'", () => logOf("worker-a").slice(before).includes("heartbeat acknowledged again"), { stepMs: 100 });
  }, 150_000);

  test("convergence timeout: exit 1 naming the member that did not register and the runbook's next step", async () => {
    // worker-c advertises the coordinator's own URL, so it thinks it is the coordinator and never beats to it.
    mkdirSync(homeOf("worker-c"), { recursive: true, mode: 0o700 });
    writeFileSync(join(homeOf("worker-c"), "config.toml"), `[fleet]\nadvertised_endpoint = "http://127.0.0.1:${coord.port}"\n`, { mode: 0o600 });
    // The running members are live first, so worker-c is the only one missing at the deadline.
    await whenLive(ALL);
    const r = await coord.spl(["fleet", "start", "--workers", "3", "--port", String(coord.port), "--worker-port", String(workerPort), "--heartbeat", String(N), "--wait", "5"], { timeoutMs: 90_000 });
    trackSpawned(r.stdout);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("Waiting for fleet convergence (4 live)...");
    expect(r.stderr).toMatch(/^error: fleet did not converge within 5 s: worker-c \(did:sync:instance:[0-9a-f]{16}, http:\/\/127\.0\.0\.1:\d+\) did not register — see the runbook's "Worker not registering": SYNCROPEL_HOME=~\/\.syncro-worker-c spl doctor\n$/);
  }, 60_000);

  test("fleet stop --workers stops the workers only; --all the coordinator too", async () => {
    const w = await ok(["fleet", "stop", "--workers"]);
    expect(w).toMatch(/^  \[worker-a\]  stopped PID \d+ \(home=~\/\.syncro-worker-a\)\n  \[worker-b\]  stopped PID \d+ .*\n  \[worker-c\]  stopped PID \d+ .*\n$/);
    expect((await coord.spl(["status"])).code).toBe(0);
    const all = await ok(["fleet", "stop", "--all"]);
    expect(all).toContain("  [worker-a]  not running (home=~/.syncro-worker-a)");
    expect(all).toMatch(/  \[coordinator\] stopped PID \d+ \(home=~\/\.syncro\)\n\nThe homes are still fleet members .*\nTo leave the fleet, delete the \[fleet\] table from ~\/\.syncro\/config\.toml .*\n$/);
    expect((await coord.spl(["status"])).code).toBe(1);
  }, 60_000);
});

describe("a coordinator set up by hand", () => {
  const inst = new Instance();
  afterAll(async () => {
    await inst.stop();
  });
  const lines = () => readFileSync(inst.path("logs", "spl.log"), "utf8").split("\n").filter(Boolean);

  test("listening on every address while advertising loopback warns at start and in doctor; a fleet credential over plain HTTP to another host is flagged", async () => {
    expect((await inst.spl(["init"])).code).toBe(0);
    appendFileSync(inst.path("config.toml"), "\n[fleet]\nheartbeat_interval_secs = 1\n");
    await inst.start(["--host", "0.0.0.0"]);
    const warned = lines().find((l) => l.includes(`advertises http://127.0.0.1:${inst.port}, which members on other hosts cannot reach`));
    expect(JSON.parse(warned!)).toMatchObject({ level: "WARN" });
    const doctor = await inst.spl(["doctor"]);
    expect(doctor.stdout).toMatch(/! fleet endpoint +this coordinator listens on 0\.0\.0\.0 but advertises http:\/\/127\.0\.0\.1:\d+.* — set \[fleet\] advertised_endpoint = /);
    const plain = new Instance();
    expect((await plain.spl(["init"])).code).toBe(0);
    appendFileSync(plain.path("config.toml"), `\n[fleet]\ncoordinator_url = "http://10.11.12.13:9100"\n`);
    const d = await plain.spl(["doctor"]);
    expect(d.stdout).toMatch(/! fleet transport +the fleet credential goes over plain HTTP to http:\/\/10\.11\.12\.13:9100, readable on the network — serve HTTPS/);
    expect(d.stdout).toMatch(/✗ fleet credential +this member holds no member credential .* — join: spl fleet join http:\/\/10\.11\.12\.13:9100 --name /);
  }, 60_000);

  test("a refused Host or Origin is logged by the daemon that refused it, once a minute per name", async () => {
    for (let i = 0; i < 3; i++) {
      const r = await inst.http("GET", "/v1/status", undefined, { host: `spl.example.com:${inst.port}` });
      expect([r.status, r.json.code]).toEqual([403, "FORBIDDEN_HOST"]);
    }
    const o = await inst.http("GET", "/v1/status", undefined, { origin: "https://evil.example" });
    expect(o.json.code).toBe("FORBIDDEN_ORIGIN");
    const refusals = await waitFor(() => {
      const l = lines().filter((x) => x.includes("refused a request for /v1/status"));
      return l.length >= 2 ? l : null;
    }, 10_000, 100);
    expect(refusals).toHaveLength(2);
    expect(JSON.parse(refusals![0]!)).toMatchObject({ level: "WARN", code: "FORBIDDEN_HOST", host: `spl.example.com:${inst.port}` });
    expect(refusals![0]).toContain("add it to [server] allowed_hosts");
    expect(JSON.parse(refusals![1]!)).toMatchObject({ code: "FORBIDDEN_ORIGIN", origin: "https://evil.example" });

    // A new Host on every request cannot flood the log: at most 64 names a minute are logged one by one.
    for (let i = 0; i < 200; i++) expect((await inst.http("GET", "/v1/status", undefined, { host: `flood-${i}.example:${inst.port}` })).status).toBe(403);
    const marker = (await inst.socket("POST", "/v1/records", { thread: "th_flood_marker", actor: "did:sync:user:tester", act: "KNOW", body: { text: "after the flood" } })).json.id;
    const all = await waitFor(() => (lines().some((l) => l.includes(marker)) ? lines() : null), 10_000, 100);
    expect(all!.filter((l) => l.includes("refused a request for /v1/status")).length).toBeLessThanOrEqual(64);
  });

  test("heartbeat records of earlier versions stay in the log, but the rebuild no longer reads them", async () => {
    const beats = Array.from({ length: 1000 }, (_, i) => ({ thread: "th_instance_registry", actor: "did:sync:instance:00000000000000b1", act: "DO", body: { topic: "heartbeat", instance_did: "did:sync:instance:00000000000000b1", name: "old", sent_at_unix: 1700000000 + i } }));
    for (let i = 0; i < 3; i++) expect((await inst.socket("POST", "/v1/records/batch", { records: beats.map((b) => ({ ...b, body: { ...b.body, n: i } })) })).status).toBe(200);
    expect((await inst.spl(["serve", "--restart", "--host", "0.0.0.0"])).code).toBe(0);
    const rebuilt = JSON.parse(lines().filter((l) => l.includes("rebuild_from_store finished")).at(-1)!);
    expect(rebuilt.records).toBeGreaterThan(3000);
    expect(rebuilt.folded).toBeLessThan(100);
    expect((await inst.http("GET", "/v1/fleet/status")).json.instances.map((m: any) => m.name)).toEqual(["coordinator"]);
  }, 60_000);
});

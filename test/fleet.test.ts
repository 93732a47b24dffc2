// The fleet (issue 11, SPEC 14) on the compiled binary: `spl fleet start` boots a coordinator and
// two workers on free ports with a 1 s heartbeat; the registry, the fleet verbs, stale/archived
// from a kill -9, the draining beat, restarts, fleet auth and the faults of the runbook.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { localFleet } from "./fleet-harness";
import { Instance, freePort, isAlive, track, waitFor } from "./harness";

const { coord, workerPort, homeOf, asMember, pidOf, ok, startArgs, trackSpawned } = localFleet(3);
let startOut = "";
const dids: Record<string, string> = {};

async function members(): Promise<any[]> {
  const r = await coord.http("GET", "/v1/fleet/status");
  return r.status === 200 ? r.json.instances : [];
}
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

afterAll(async () => {
  await coord.spl(["fleet", "stop", "--all"]);
  for (const name of ["coordinator", "worker-a", "worker-b", "worker-c"]) {
    try {
      const pid = pidOf(name);
      if (isAlive(pid)) process.kill(pid, "SIGKILL");
    } catch {}
  }
}, 60_000);

describe("spl fleet start", () => {
  test("prints the runbook's lines, converges and exits 0; the workers live in <home>-worker-{a,b}", () => {
    const lines = startOut.split("\n");
    expect(lines[0]).toBe("Starting local fleet: 1 coordinator + 2 workers");
    expect(lines[1]).toBe("");
    expect(lines[2]).toBe(`  [coordinator] spawned PID ${lines[2]!.match(/PID (\d+)/)?.[1]} on :${coord.port} (home=~/.syncro)`);
    expect(lines[3]).toMatch(new RegExp(`^  \\[worker-a\\]  spawned PID \\d+ on :${workerPort} \\(home=~/\\.syncro-worker-a\\)$`));
    expect(lines[4]).toMatch(new RegExp(`^  \\[worker-b\\]  spawned PID \\d+ on :${workerPort + 1} \\(home=~/\\.syncro-worker-b\\)$`));
    expect(lines.slice(5).join("\n")).toBe("\nWaiting for fleet convergence (3 live)...\n  ✓ fleet converged\n\nFleet ready. Inspect with:\n  spl fleet list\n  spl fleet status\n");
    expect(Object.keys(dids).sort()).toEqual(["coordinator", "worker-a", "worker-b"]);
  });

  test("the coordinator's engine config reached the new workers (same record ids)", async () => {
    const ids = (out: string) => JSON.parse(out).map((r: any) => r.id).sort();
    const mine = ids(await ok(["thread", "records", "th_engine_config", "-o", "json"]));
    expect(mine.length).toBeGreaterThan(0);
    for (const w of ["worker-a", "worker-b"]) expect(ids(await ok(["thread", "records", "th_engine_config", "-o", "json"], asMember(w)))).toEqual(mine);
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
    expect(await ok(["fleet", "status"])).toBe(
      `Fleet status\n  Coordinator URL:  http://127.0.0.1:${coord.port}\n  Heartbeat:        every 1s\n  Instances:        3 live · 0 stale · 0 archived\n\n  Active freezes:   (none)\n\n  Emergency stop:   inactive\n`,
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
    expect(s).toMatchObject({ object: "fleet_status", coordinator_url: `http://127.0.0.1:${coord.port}`, heartbeat_interval_secs: 1, counts: { live: 3, stale: 0, archived: 0 }, freezes: [], emergency: { active: false }, pending_fanouts: [] });
    for (const key of ["did", "name", "endpoint", "role", "status", "version", "uptime_secs", "health", "active_dispatches", "store_records", "last_heartbeat"]) expect(s.instances[0]).toHaveProperty(key);
  });

  test("an unknown member is one line listing the members, exit 1", async () => {
    const r = await coord.spl(["fleet", "show", "worker-z"]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/^error: no fleet member 'worker-z' — members: .*worker-a \(did:sync:instance:[0-9a-f]{16}\)/);
  });

  test("a worker answers the fleet verbs and GET /v1/fleet/status through its coordinator", async () => {
    const viaWorker = await ok(["fleet", "status"], asMember("worker-a"));
    expect(viaWorker).toContain(`Coordinator URL:  http://127.0.0.1:${coord.port}`);
    const tok = readFileSync(join(homeOf("worker-a"), "token"), "utf8").trim();
    const res = await fetch(`http://127.0.0.1:${workerPort}/v1/fleet/status`, { headers: { authorization: `Bearer ${tok}` } });
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).counts.live).toBe(3);
    const doctor = await coord.spl(["doctor"], { env: asMember("worker-a") });
    expect(doctor.stdout).toContain(`✓ fleet role              worker 'worker-a' (${dids["worker-a"]}) of http://127.0.0.1:${coord.port}`);
    expect(doctor.stdout).toContain(`✓ fleet coordinator       http://127.0.0.1:${coord.port} answers /health`);
    expect(doctor.stdout).toMatch(/✓ fleet heartbeat +last beat acknowledged \d+s ago \(every 1s\)/);
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
    let text = "";
    const reader = proc.stdout.getReader();
    const dec = new TextDecoder();
    while ((text.match(/^Fleet status$/gm) ?? []).length < 2) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value);
    }
    proc.kill("SIGINT");
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
  let text = "";
  const reader = proc.stdout.getReader();
  const dec = new TextDecoder();
  while ((text.match(/Fleet status/g) ?? []).length < 3) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value);
  }
  proc.stdin.write("\x03");
  proc.stdin.end();
  expect(await proc.exited).toBe(0);
  const frames = text.split("\x1b[H").slice(1);
  expect(frames.length).toBeGreaterThanOrEqual(3);
  expect(text.split("\x1b[2J")).toHaveLength(2); // the screen is cleared once, before the first frame
  expect(frames[1]).toContain("Fleet status\x1b[K");
  expect(frames[1]).toContain("  Emergency stop:   inactive\x1b[K");
}, 30_000);

describe("heartbeats", () => {
  test("a kill -9'd worker goes stale, then archived; restarted it is live again", async () => {
    const did = dids["worker-b"]!;
    process.kill(pidOf("worker-b"), "SIGKILL");
    const seen: string[] = [];
    await waitFor(async () => {
      const s = await statusOf(did);
      if (s && seen.at(-1) !== s) seen.push(s);
      return s === "archived";
    }, 20_000, 25);
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
    await waitFor(async () => (await statusOf(did)) === "live", 10_000, 100);
  }, 40_000);

  test("a coordinator restart keeps the registry (rebuilt from the store)", async () => {
    const r = await coord.spl(["serve", "--restart"]);
    expect(r.code).toBe(0);
    track(pidOf("coordinator"));
    const after = (await members()).map((m) => m.did).sort();
    expect(after).toEqual(Object.values(dids).sort());
    await waitFor(async () => (await members()).filter((m) => m.status === "live").length === 3, 15_000, 100);
  }, 40_000);

  test("fleet stop --instance sends a draining beat: the member is archived without going stale", async () => {
    const did = dids["worker-a"]!;
    const out = await ok(["fleet", "stop", "--instance", "worker-a"]);
    expect(out).toMatch(/^  \[worker-a\]  stopped PID \d+ \(home=~\/\.syncro-worker-a\)\n$/);
    const seen: string[] = [];
    await waitFor(async () => {
      const m = (await members()).find((x) => x.did === did);
      const s = `${m.status}/${m.health}`;
      if (seen.at(-1) !== s) seen.push(s);
      return m.status === "archived";
    }, 20_000, 100);
    expect(seen).toContain("live/draining");
    expect(seen.some((s) => s.startsWith("stale"))).toBe(false);
    expect((await ok(["fleet", "list"])).split("\n").find((l) => l.includes(did))).toMatch(/ archived +0\.1\.0 +- +stopped, last seen \d+s ago$/);
    const r = await coord.spl(["serve", "--daemon", "--port", String(workerPort)], { env: asMember("worker-a") });
    expect(r.code).toBe(0);
    track(pidOf("worker-a"));
    await waitFor(async () => (await statusOf(did)) === "live", 10_000, 100);
  }, 40_000);
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

describe("fleet auth and a host set up by hand", () => {
  const host = new Instance();
  afterAll(async () => {
    await host.stop();
  });

  test("a member without the fleet token is refused (401) and says so in its log; join + restart registers it", async () => {
    mkdirSync(host.splHome, { recursive: true, mode: 0o700 });
    // name = worker-a on purpose: a second DID claiming a name (the clash test below).
    writeFileSync(host.path("config.toml"), `[fleet]\ncoordinator_url = "http://127.0.0.1:${coord.port}"\nheartbeat_interval_secs = 1\nname = "worker-a"\n`, { mode: 0o600 });
    await host.start();
    const refused = await waitFor(() => readFileSync(host.path("logs", "spl.log"), "utf8").split("\n").find((l) => l.includes("heartbeat to") && l.includes("401")), 15_000, 100);
    expect(JSON.parse(refused!)).toMatchObject({ level: "WARN" });
    expect(refused).toContain("this member has no fleet token");
    expect(refused).toContain("spl fleet join");
    const myDid = JSON.parse((await host.spl(["status", "-o", "json"])).stdout).instance_did;
    expect((await members()).some((m) => m.did === myDid)).toBe(false);

    const token = await ok(["fleet", "token"]);
    expect(token.trim()).toMatch(/^spl_fleet_[a-z0-9]+_[A-Za-z0-9]+$/);
    writeFileSync(join(host.root, "fleet_token"), token, { mode: 0o600 });
    const joined = await host.spl(["fleet", "join", `http://127.0.0.1:${coord.port}`, "--token-file", join(host.root, "fleet_token")]);
    expect(joined.code).toBe(0);
    expect(joined.stdout).toContain("Restart to apply");
    expect((await host.spl(["serve", "--restart"])).code).toBe(0);
    await waitFor(async () => (await statusOf(myDid)) === "live", 15_000, 100);
  }, 40_000);

  test("two members claiming one name: the registry keeps both DIDs and fleet list flags the clash", async () => {
    const list = await ok(["fleet", "list"]);
    const clash = list.split("\n").find((l) => l.startsWith("  ! name 'worker-a'"));
    expect(clash).toContain(dids["worker-a"]!);
    expect(clash).toContain("claimed by 2 instances");
    const r = await coord.spl(["fleet", "show", "worker-a"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: 'worker-a' names 2 members: .* — give the full DID\n$/);
  });

  test("only the fleet token writes th_instance_registry; an ordinary token gets 403", async () => {
    const made = await ok(["token", "create", "--name", "writer", "--actor", "did:sync:agent:writer", "--scopes", "records:write,records:read"]);
    const tok = /spl_[a-z0-9]+_[a-z0-9]+_[A-Za-z0-9]+/.exec(made)![0];
    const r = await coord.http("POST", "/v1/records", { thread: "th_instance_registry", actor: "did:sync:agent:writer", act: "DO", body: { topic: "heartbeat", instance_did: "did:sync:instance:0000000000000000" } }, { authorization: `Bearer ${tok}` });
    expect(r.status).toBe(403);
    expect(r.json.code).toBe("RESERVED_THREAD");
  });

  test("the fleet token is in no log line, record body or backup", () => {
    const secret = readFileSync(join(coord.splHome, "secrets", "fleet_token"), "utf8").trim().split("_").pop()!;
    const leaks = [...filesUnder(coord.root), ...filesUnder(host.root)].filter((f) => !/secrets\/fleet_token$|\/fleet_token$/.test(f) && readFileSync(f, "latin1").includes(secret));
    expect(leaks).toEqual([]);
  });
});

describe("faults", () => {
  test("coordinator down: workers keep serving and ingesting, WARN once a minute, re-register when it returns", async () => {
    expect((await coord.spl(["serve", "--stop"])).code).toBe(0);
    const before = logOf("worker-a").length;
    const wrote = await ok(["know", "written while the coordinator is down"], asMember("worker-a"));
    expect(wrote).toContain("recorded KNOW");
    // Several missed beats at 1 s, but one WARN.
    await waitFor(() => logOf("worker-a").slice(before).includes("heartbeat to"), 10_000, 100);
    await Bun.sleep(3000);
    const warns = logOf("worker-a").slice(before).split("\n").filter((l) => l.includes('"WARN"') && l.includes("heartbeat to"));
    expect(warns).toHaveLength(1);
    expect(warns[0]).toContain("keeps serving locally");
    // spl doctor on the worker names the URL that failed and how to check it.
    const doctor = await coord.spl(["doctor"], { env: asMember("worker-a") });
    expect(doctor.code).toBe(2);
    expect(doctor.stdout).toContain(`✗ fleet coordinator       http://127.0.0.1:${coord.port} did not answer (cannot connect) — check [fleet] coordinator_url in`);
    expect(doctor.stdout).toMatch(/✗ fleet heartbeat .*cannot connect/);
    await coord.start();
    await waitFor(async () => (await statusOf(dids["worker-a"]!)) === "live", 15_000, 100);
    await waitFor(() => logOf("worker-a").slice(before).includes("heartbeat acknowledged again"), 10_000, 100);
  }, 40_000);

  test("convergence timeout: exit 1 naming the member that did not register and the runbook's next step", async () => {
    // worker-c advertises the coordinator's own URL, so it thinks it is the coordinator and never beats to it.
    mkdirSync(homeOf("worker-c"), { recursive: true, mode: 0o700 });
    writeFileSync(join(homeOf("worker-c"), "config.toml"), `[fleet]\nadvertised_endpoint = "http://127.0.0.1:${coord.port}"\n`, { mode: 0o600 });
    const r = await coord.spl(["fleet", "start", "--workers", "3", "--port", String(coord.port), "--worker-port", String(workerPort), "--heartbeat", "1", "--wait", "3"], { timeoutMs: 90_000 });
    trackSpawned(r.stdout);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("Waiting for fleet convergence (4 live)...");
    expect(r.stderr).toMatch(/^error: fleet did not converge within 3 s: worker-c \(did:sync:instance:[0-9a-f]{16}, http:\/\/127\.0\.0\.1:\d+\) did not register — see the runbook's "Worker not registering": SYNCROPEL_HOME=~\/\.syncro-worker-c spl doctor\n$/);
  }, 60_000);

  test("fleet stop --workers stops the workers only; --all the coordinator too", async () => {
    const w = await ok(["fleet", "stop", "--workers"]);
    expect(w).toMatch(/^  \[worker-a\]  stopped PID \d+ \(home=~\/\.syncro-worker-a\)\n  \[worker-b\]  stopped PID \d+ .*\n  \[worker-c\]  stopped PID \d+ .*\n$/);
    expect((await coord.spl(["status"])).code).toBe(0);
    const all = await ok(["fleet", "stop", "--all"]);
    expect(all).toContain("  [worker-a]  not running (home=~/.syncro-worker-a)");
    expect(all).toMatch(/  \[coordinator\] stopped PID \d+ \(home=~\/\.syncro\)\n$/);
    expect((await coord.spl(["status"])).code).toBe(1);
  }, 60_000);
});

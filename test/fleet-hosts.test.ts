// The fleet across hosts (issues 22 and 23) on the compiled binary, in network namespaces joined by
// a bridge (test/netns.ts): a coordinator, two workers and an outsider, each its own host with its
// own address and home, members over HTTPS with a private CA made here by openssl. It sets the
// fleet up as README "Fleet" says (spl fleet coordinate, spl fleet join), then checks identity
// (the outsider can read nothing and forge nothing; an untrusted certificate is refused), the kill
// switch across a partition (propagation, kill on the partitioned worker, fail-closed, catch-up
// after the heal) and fencing (the runbook's promotion; the old coordinator returns, is deposed and
// says so; a worker still beating to it is sent on). Traffic goes only to the lab's own addresses;
// every wait is bounded and says what it waited for. Skips, saying why, where namespaces or
// openssl are not available.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NetLab, type LabHost } from "./netns";

const why = NetLab.unavailable() ?? (Bun.which("openssl") ? null : "no openssl to make the private CA");
const skip = why !== null;
if (skip) console.log(`skipping the fleet across hosts: ${why}`);

let lab: NetLab;
let coord: LabHost, wa: LabHost, wb: LabHost, out: LabHost;
let pki = "";
let joinToken = "";
const dids: Record<string, string> = {};
const figures: Record<string, string> = {};

/** Runs openssl; throws with its output when it fails. */
function openssl(args: string[]) {
  const r = Bun.spawnSync(["openssl", ...args], { cwd: pki, stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr.toString()}`);
}

/** A CA, and a certificate for each host's address signed by it (the README's commands). */
function makeCa(name: string, hosts: LabHost[]) {
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.pem`, "-days", "2", "-subj", `/CN=${name}`]);
  for (const h of hosts) {
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${h.name}.key`, "-out", `${h.name}.csr`, "-subj", `/CN=${h.ip}`]);
    writeFileSync(join(pki, `${h.name}.ext`), `subjectAltName=IP:${h.ip}\n`);
    openssl(["x509", "-req", "-in", `${h.name}.csr`, "-CA", `${name}.pem`, "-CAkey", `${name}.key`, "-CAcreateserial", "-out", `${h.name}.pem`, "-days", "2", "-extfile", `${h.name}.ext`]);
  }
}

/** Waits for `fn` to give a value, at most `ms`; the error names what it waited for and what it saw last. */
async function until<T>(what: string, fn: () => Promise<T | null | undefined | false>, ms = 30_000, stepMs = 200): Promise<T> {
  const end = Date.now() + ms;
  let seen: unknown;
  for (let i = 0; Date.now() < end && i < ms / stepMs + 1; i++) {
    try {
      const v = await fn();
      if (v) return v;
      seen = v;
    } catch (err) {
      seen = (err as Error).message;
    }
    await Bun.sleep(stepMs);
  }
  throw new Error(`waited ${ms} ms for ${what}; last saw ${JSON.stringify(seen)?.slice(0, 400)}`);
}

async function ok(h: LabHost, args: string[]) {
  const r = await h.spl(args, { timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`[${h.name}] spl ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A lab host's SYNCROPEL_HOME (test/netns.ts: <home>/.syncro). */
const splHome = (h: LabHost) => join(h.home, ".syncro");
const members = async (h: LabHost) => JSON.parse(await ok(h, ["fleet", "list", "-o", "json"])) as { did: string; name: string; status: string; health: string }[];
const statusOf = async (h: LabHost, name: string) => (await members(h)).find((m) => m.name === name)?.status;
const log = (h: LabHost) => readFileSync(join(splHome(h), "logs", "spl.log"), "utf8");
const intend = (h: LabHost, ns: string) => write(h, "INTEND", ns);
/** curl from a host, with the lab's CA unless told otherwise. */
const curl = (h: LabHost, url: string, extra: string[] = [], ca: string | null = join(pki, "fleet-ca.pem")) =>
  h.exec(["curl", "-sS", "--max-time", "5", ...(ca ? ["--cacert", ca] : []), "-w", "\n%{http_code}", ...extra, url]);

/** Adds lines at the top of a table of a host's config.toml. */
function addToTable(h: LabHost, table: string, lines: string) {
  const config = join(splHome(h), "config.toml");
  const text = readFileSync(config, "utf8");
  if (!new RegExp(`^\\[${table}\\]$`, "m").test(text)) throw new Error(`no [${table}] in ${config}`);
  writeFileSync(config, text.replace(new RegExp(`^\\[${table}\\]\n`, "m"), `[${table}]\n${lines}`), { mode: 0o600 });
}

const useTls = (h: LabHost) => addToTable(h, "server", `tls_cert_file = "${join(pki, `${h.name}.pem`)}"\ntls_key_file = "${join(pki, `${h.name}.key`)}"\n`);

/** A record's act in a namespace, over the host's socket (the socket file is outside the namespace's network): the error code, or "ok". */
async function write(h: LabHost, act: string, ns: string): Promise<string> {
  const res = await fetch("http://localhost/v1/records", {
    method: "POST",
    unix: join(splHome(h), "run", "spl.sock"),
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ act, actor: "did:sync:user:tester", thread: `th_hosts_${Math.random().toString(16).slice(2)}`, body: { text: "work", namespace: ns } }),
  } as RequestInit);
  const body = (await res.json()) as { code?: string };
  return res.status < 300 ? "ok" : (body.code ?? String(res.status));
}

beforeAll(async () => {
  if (skip) return;
  lab = new NetLab();
  coord = lab.host("coordinator");
  wa = lab.host("worker-a");
  wb = lab.host("worker-b");
  out = lab.host("outsider");
  pki = mkdtempSync(join(tmpdir(), "spl-pki-"));
  makeCa("fleet-ca", [coord, wa, wb]);
  makeCa("other-ca", [out]);
  for (const h of [coord, wa, wb, out]) {
    await ok(h, ["init"]);
    useTls(h);
  }
}, 120_000);

afterAll(() => {
  if (skip) return;
  lab.destroy();
  rmSync(pki, { recursive: true, force: true });
  if (Object.keys(figures).length) console.log(`fleet across hosts: ${JSON.stringify(figures)}`);
});

const https = (h: LabHost) => `https://${h.ip}:9100`;

describe.skipIf(skip)(`the fleet across hosts${skip ? ` (skipped: ${why})` : ""}`, () => {
  test("the README's setup: spl fleet coordinate on one host, spl fleet join on two, all live over HTTPS with a private CA", async () => {
    const made = await ok(coord, ["fleet", "coordinate", "--advertise", https(coord), "--heartbeat", "1", "--ca-file", join(pki, "fleet-ca.pem")]);
    expect(made).toContain(`This home coordinates the fleet at ${https(coord)} (`);
    expect(made).toContain(', epoch 1, heartbeat every 1s)');
    expect(made).toContain('  [server] host = "0.0.0.0"');
    expect(made).not.toContain("no [fleet] ca_file");
    joinToken = /^ {2}(spl_join_\S+)$/m.exec(made)![1]!;
    for (const [h, name] of [[wa, "worker-a"], [wb, "worker-b"]] as const) {
      writeFileSync(join(h.home, "join_token"), joinToken, { mode: 0o600 });
      const joined = await ok(h, ["fleet", "join", https(coord), "--name", name, "--token-file", join(h.home, "join_token"), "--ca-file", join(pki, "fleet-ca.pem"), "--advertise", https(h)]);
      expect(joined).toContain(`Joined the fleet of ${https(coord)} as '${name}'`);
      expect(joined).toContain("heartbeat_interval_secs = 1 (the coordinator's)");
      expect(joined).not.toContain("plain HTTP");
    }
    addToTable(wb, "fleet", "fail_closed_after_secs = 4\n");
    for (const h of [wa, wb]) await ok(h, ["serve", "--daemon"]);
    const live = await until("3 members live on the coordinator", async () => {
      const m = await members(coord);
      return m.filter((x) => x.status === "live" && x.health === "healthy").length === 3 && m;
    });
    for (const m of live) dids[m.name] = m.did;
    expect(Object.keys(dids).sort()).toEqual(["coordinator", "worker-a", "worker-b"]);
    // A worker's CLI asks the coordinator over HTTPS with its member credential and the CA.
    expect(await ok(wa, ["fleet", "list"])).toContain("  3 live · 0 stale · 0 archived");
    const doctor = await wa.spl(["doctor"]);
    expect(doctor.stdout).toContain(`✓ fleet coordinator       ${https(coord)} answers /health`);
    expect(doctor.stdout).not.toContain("fleet transport");

    // A fan-out across the hosts: the coordinator sends each child over HTTPS (trusting the CA it
    // was given), each worker runs it by the rule README "Fan-out" names and reports back.
    for (const h of [wa, wb]) await ok(h, ["config", "add-rule", "--name", "fanout-children", "--expression", "has(record.body.fanout)", "--target", "did:sync:agent:echo"]);
    const task = JSON.parse(await ok(coord, ["task", "add", "across hosts", "-o", "json"]));
    await ok(coord, ["task", "fan-out", task.alias, "--subtask", "goal=on-a,target=worker-a", "--subtask", "goal=on-b,target=worker-b"]);
    const joined = await until("the fan-out across hosts joined (spl task join-status)", async () => {
      const s = JSON.parse(await ok(coord, ["task", "join-status", task.alias, "-o", "json"]));
      return s.complete && s;
    }, 60_000);
    expect(joined.children.map((c: any) => [c.result?.verdict, c.result?.worker])).toEqual([
      ["accept", dids["worker-a"]],
      ["accept", dids["worker-b"]],
    ]);
  }, 180_000);

  test("the outsider: no TLS without the CA, nothing readable without a credential, /health without paths; a join with an untrusted certificate is refused; a forged heartbeat is 403 and logged", async () => {
    const noCa = await curl(out, `${https(coord)}/health`, [], null);
    expect(noCa.code).toBe(60); // curl: the peer's certificate cannot be verified
    const status = await curl(out, `${https(coord)}/v1/fleet/status`);
    expect(status.stdout.trim().split("\n").pop()).toBe("401");
    const health = JSON.parse((await curl(out, `${https(coord)}/health`)).stdout.trim().split("\n")[0]!);
    expect(health).toMatchObject({ status: "ok" });
    expect(Object.keys(health)).not.toContain("pid");
    expect(Object.keys(health)).not.toContain("home");
    expect(Object.keys(health)).not.toContain("store");

    // The outsider trusts another CA: the coordinator's certificate is refused, nothing is written.
    writeFileSync(join(out.home, "join_token"), joinToken, { mode: 0o600 });
    const refused = await out.spl(["fleet", "join", https(coord), "--name", "outsider", "--token-file", join(out.home, "join_token"), "--ca-file", join(pki, "other-ca.pem"), "--advertise", https(out)]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: cannot join the fleet of https:\/\/\S+: \S+ presented a certificate this member does not trust \(/);

    // With the leaked join credential and the right CA it can join as itself, and only as itself.
    const outsider = await ok(out, ["fleet", "join", https(coord), "--name", "outsider", "--token-file", join(out.home, "join_token"), "--ca-file", join(pki, "fleet-ca.pem"), "--advertise", https(out), "--no-engine-config"]);
    expect(outsider).toContain("engine config: kept this home's own (--no-engine-config)");
    const credential = readFileSync(join(splHome(out), "secrets", "fleet_member"), "utf8").trim();
    const forged = await curl(out, `${https(coord)}/v1/fleet/heartbeat`, ["-H", `authorization: Bearer ${credential}`, "-H", "content-type: application/json", "-d", JSON.stringify({ did: dids["worker-b"], name: "worker-b", endpoint: https(out), health: "healthy" })]);
    expect(forged.stdout.trim().split("\n").pop()).toBe("403");
    expect(forged.stdout).toContain("FORGED_HEARTBEAT");
    await until("the coordinator's log line for the forged beat", async () => log(coord).split("\n").find((l) => l.includes("heartbeat refused") && l.includes(dids["worker-b"]!)));
    expect(JSON.parse(await ok(coord, ["fleet", "show", "worker-b", "-o", "json"])).did).toBe(dids["worker-b"]);
    expect(await ok(coord, ["fleet", "forget", "outsider"])).toContain("✓ forgot outsider");
    const after = await curl(out, `${https(coord)}/v1/fleet/status`, ["-H", `authorization: Bearer ${credential}`]);
    expect(after.stdout.trim().split("\n").pop()).toBe("401");
  }, 120_000);

  test("the kill switch across a partition: every connected member within a beat, spl kill on the partitioned worker, fail-closed, catch-up after the heal", async () => {
    const recordsBefore = JSON.parse(await ok(coord, ["thread", "records", "th_instance_registry", "-o", "json"])).length;
    lab.partition(wb);
    expect(await ok(coord, ["kill", "--namespace", "ns-p", "--reason", "partition drill"])).toBe("✓ soft freeze of 'ns-p' recorded\n");
    let t0 = performance.now();
    await until("worker-a refusing work in ns-p", async () => (await intend(wa, "ns-p")) === "NAMESPACE_FROZEN", 10_000, 10);
    figures.propagation_ms = `${Math.round(performance.now() - t0)}`;

    // On the partitioned worker: applied at once, forwarded later.
    const local = await wb.spl(["kill", "--namespace", "ns-b"], { timeoutMs: 15_000 });
    expect(local.code).toBe(0);
    expect(local.stdout).toContain("✓ soft freeze of 'ns-b' recorded\n  applied here; the coordinator");
    expect(await intend(wb, "ns-b")).toBe("NAMESPACE_FROZEN");
    // Cut off for longer than fail_closed_after_secs (4): no new work, KNOW still passes.
    await until("worker-b failing closed", async () => (await intend(wb, "elsewhere")) === "COORDINATOR_UNREACHABLE", 30_000);
    expect(await write(wb, "KNOW", "elsewhere")).toBe("ok");
    await until("worker-b archived on the coordinator", async () => (await statusOf(coord, "worker-b")) === "archived", 30_000);

    t0 = performance.now();
    lab.heal(wb);
    await until("worker-b enforcing the freeze issued while it was cut off", async () => (await intend(wb, "ns-p")) === "NAMESPACE_FROZEN", 30_000, 10);
    figures.catch_up_after_heal_ms = `${Math.round(performance.now() - t0)}`;
    await until("worker-b taking new work again", async () => (await intend(wb, "elsewhere")) === "ok", 10_000, 50);
    await until("worker-a enforcing worker-b's own freeze", async () => (await intend(wa, "ns-b")) === "NAMESPACE_FROZEN", 15_000, 50);
    await until("worker-b live again", async () => (await statusOf(coord, "worker-b")) === "live", 15_000);
    // The registry grew by worker-b's events (stale, archived, back), not by the beats of the
    // seconds that passed (a loaded machine may add a stale/back of another member, never a beat).
    // Liveness is in memory and answers at once; the 'back' event is written just after: wait for it.
    const registry = async () => JSON.parse(await ok(coord, ["thread", "records", "th_instance_registry", "-o", "json"])).slice(recordsBefore);
    const events = await until("worker-b's 'back' event in the registry", async () => {
      const e = await registry();
      return e.some((r: any) => r.body.did === dids["worker-b"] && r.body.topic === "back") ? e : null;
    }, 15_000);
    expect(events.filter((r: any) => r.body.did === dids["worker-b"]).map((r: any) => r.body.topic)).toEqual(["stale", "archived", "back"]);
    expect(events.every((r: any) => ["stale", "archived", "back"].includes(r.body.topic))).toBe(true);
    for (const ns of ["ns-p", "ns-b"]) await ok(coord, ["unkill", "--namespace", ns]);
  }, 180_000);

  test("fencing: the runbook's promotion; the old coordinator comes back, is deposed and says so, refuses kill; a worker still beating to it is sent on", async () => {
    lab.partition(wb); // it misses the promotion, and still names the old coordinator
    await ok(coord, ["serve", "--stop"]);
    // The runbook's steps 2-4 on worker-a.
    await ok(wa, ["serve", "--stop"]);
    const config = join(splHome(wa), "config.toml");
    writeFileSync(config, readFileSync(config, "utf8").replace(/^coordinator_url = .*\n/m, ""), { mode: 0o600 });
    await ok(wa, ["serve", "--daemon"]);
    const promoted = await ok(wa, ["doctor"]).catch((e) => String(e));
    expect(promoted).toMatch(/✓ fleet epoch +coordinator of epoch 2/);

    // The old coordinator comes back with its config unchanged: its first contact deposes it.
    await ok(coord, ["serve", "--daemon"]);
    const status = await until("the old coordinator saying it was deposed", async () => {
      const s = await ok(coord, ["fleet", "status"]);
      return s.includes("⚠ deposed") && s;
    });
    expect(status).toContain(`  ⚠ deposed: coordinator is now ${https(wa)} (epoch 2)\n`);
    expect(log(coord).split("\n").some((l) => l.includes('"level":"ERROR"') && l.includes("this coordinator was replaced"))).toBe(true);
    const kill = await coord.spl(["kill", "--emergency"]);
    expect(kill.code).toBe(1);
    expect(kill.stderr).toContain(`this member is no longer the fleet's coordinator: ${https(wa)} holds epoch 2`);
    expect(kill.stderr).toContain("[COORDINATOR_DEPOSED]");
    // A fan-out (an INTEND with subtasks) is refused there the same way.
    const fanout = await fetch("http://localhost/v1/records", {
      method: "POST",
      unix: join(splHome(coord), "run", "spl.sock"),
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ act: "INTEND", actor: "did:sync:user:tester", thread: "th_hosts_fanout", body: { text: "split", subtasks: [{ goal: "a", target: "worker-a" }] } }),
    } as RequestInit);
    expect(fanout.status).toBe(409);
    expect(((await fanout.json()) as any).coordinator_url).toBe(https(wa));

    // worker-b comes back still pointed at the old coordinator: sent on to the new one.
    lab.heal(wb);
    // (The new coordinator counts it live from the start of its term: wait for worker-b's own view.)
    await until("worker-b following the new coordinator (its spl doctor)", async () => (await wb.spl(["doctor"])).stdout.includes(`following ${https(wa)} (epoch 2), which replaced ${https(coord)}`), 30_000);
    await until("worker-b live on the new coordinator", async () => (await statusOf(wa, "worker-b")) === "live", 30_000);
    expect(await intend(wb, "after-failover")).toBe("ok");
  }, 180_000);
});

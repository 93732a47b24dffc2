// The lockout trap end to end, as the runbook tells it (issue 4 item 7): the pre-flight refuses
// and prints the exact fix; a lockout anyway; permissions-disable answers 403; permissions-unlock
// refuses while the daemon runs; stop → unlock → start, and enforcement is off with every record kept.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Instance, SPL, isAlive } from "./harness";

const OP = "did:sync:user:tester";
const inst = new Instance();

async function ok(args: string[]) {
  const r = await inst.spl(args);
  if (r.code !== 0) throw new Error(`spl ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** Every record id, via the store's own API (the daemon must be running and allow it). */
async function allRecordIds(): Promise<string[]> {
  const ids: string[] = [];
  for (let after = ""; ; ) {
    const page = await inst.socket("GET", `/v1/records?limit=1000${after ? `&after=${after}` : ""}`);
    expect(page.status).toBe(200);
    ids.push(...page.json.data.map((r: any) => r.id));
    if (!page.json.has_more) return ids;
    after = page.json.next_cursor;
  }
}

afterAll(async () => {
  await inst.stop();
});

describe("permission lockout and recovery", () => {
  test("pre-flight, lockout, 403 on disable, unlock refused while running, stop → unlock → start", async () => {
    await ok(["init"]);
    let pid = await inst.start();
    for (let i = 0; i < 5; i++) await ok(["intend", `user record ${i}`, "--thread", "th_user"]);
    await ok(["config", "add-rule", "--name", "code", "--domain", "code", "--target", "did:sync:agent:bob"]);
    await ok(["config", "add-permission-rule", "--name", "users-read-only", "--action", "allow", "--priority", "100", "--expression", 'current_actor().startsWith("did:sync:user:") && (resource == "thread_read" || resource == "record_read")']);

    // 1. Pre-flight: the operator could not switch enforcement off again, so enable refuses with the fix.
    const refused = await inst.spl(["config", "permissions-enable"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^error: refusing to enable permission enforcement: the rules would not allow did:sync:user:tester record_write, config_read, status_read/);
    const fix = refused.stderr.split("\n").find((l) => l.trim().startsWith("spl config add-permission-rule"))!.trim();
    expect(fix).toBe(
      `spl config add-permission-rule --name admin-self --action allow --priority 10000 --expression 'current_actor() == "${OP}" && (resource == "record_write" || resource == "thread_read" || resource == "config_read" || resource == "status_read")'`,
    );
    expect((await inst.socket("GET", "/v1/status")).json.permissions_enabled).toBe(false);

    // Run the printed command exactly as an operator would paste it.
    const bin = mkdtempSync(join(tmpdir(), "spl-bin-"));
    symlinkSync(SPL, join(bin, "spl"));
    const sh = Bun.spawnSync(["sh", "-c", fix], { env: { ...inst.env, PATH: `${bin}:${inst.env.PATH}` } });
    expect(sh.exitCode).toBe(0);
    expect(await ok(["config", "permissions-enable"])).toContain("Permission enforcement is on");
    // The runbook's verification commands work with exactly the suggested rule (issue 14 item 1).
    expect(await ok(["status"])).toMatch(/Status:\s+ok/);
    expect(JSON.parse(await ok(["status", "-o", "json"])).permissions_enabled).toBe(true);
    expect(await ok(["trust"])).toBeDefined();
    expect(await ok(["config", "list-rules"])).toContain("code");
    expect(await ok(["thread", "records", "th_engine_config"])).toContain("permissions_enabled");
    expect(await ok(["thread", "records", "th_user"])).toContain("user record 0");
    expect(await ok(["intend", "written under enforcement", "--thread", "th_user"])).toBeDefined();
    expect((await inst.socket("GET", "/v1/threads/th_engine_config/state")).status).toBe(200);
    // Enforcement is real: nothing the rule does not name is allowed.
    expect((await inst.socket("GET", "/v1/tokens")).status).toBe(403);

    // 2. Self-harm the pre-flight cannot catch: remove the admin rule while enforcement is on.
    const recordsBefore = (await inst.socket("GET", "/v1/records?limit=1000")).json.data.map((r: any) => r.id);
    expect(recordsBefore.length).toBeGreaterThan(10);
    await ok(["config", "remove-rule", "--name", "admin-self"]);

    // 3. Locked out: the disable path is denied by the very policy it would switch off.
    const disable = await inst.spl(["config", "permissions-disable"]);
    expect(disable.code).toBe(1);
    expect(disable.stderr).toMatch(/^error: permission denied: did:sync:user:tester may not (thread_read|record_write|config_read) .*\[PERMISSION_DENIED\]/);
    expect(disable.stderr).toContain("spl serve --stop; spl config permissions-unlock; spl serve --daemon");
    const write = await inst.socket("POST", "/v1/records", { thread: "th_engine_config", actor: OP, act: "LEARN", body: { topic: "permissions_enabled", enabled: false } });
    expect(write.status).toBe(403);
    expect(readFileSync(inst.path("logs", "spl.log"), "utf8")).toContain("PERMISSION DENIED");

    // 4. permissions-unlock refuses while the daemon runs (its cached config would shadow the write).
    const early = await inst.spl(["config", "permissions-unlock"]);
    expect(early.code).toBe(1);
    expect(early.stderr).toMatch(new RegExp(`^error: spl serve is running \\(pid ${pid}\\)`));
    expect(early.stderr).toContain("spl serve --stop; spl config permissions-unlock; spl serve --daemon");

    // 5. The runbook's recovery, verbatim.
    const stop = await inst.spl(["serve", "--stop"]);
    expect(stop.code).toBe(0);
    expect(isAlive(pid)).toBe(false);
    const unlock = await inst.spl(["config", "permissions-unlock"]);
    expect(unlock.code).toBe(0);
    expect(unlock.stdout).toContain("wrote permissions_enabled=false");
    pid = await inst.start();

    const after = await inst.socket("GET", "/v1/status");
    expect(after.status).toBe(200);
    expect(after.json.permissions_enabled).toBe(false);
    expect(JSON.parse(await ok(["config", "list-permission-rules", "-o", "json"])).permissions_enabled).toBe(false);
    // Every record is still there, plus exactly the unlock LEARN, which is the latest on th_engine_config.
    const ids = await allRecordIds();
    const config = JSON.parse(await ok(["thread", "records", "th_engine_config", "-o", "json"]));
    const last = config[config.length - 1];
    expect(last).toMatchObject({ actor: OP, act: "LEARN", body: { topic: "permissions_enabled", enabled: false } });
    expect(last.clock).toBe(Math.max(...config.slice(0, -1).map((r: any) => r.clock)) + 1);
    expect(ids).toContain(last.id);
    for (const id of recordsBefore) expect(ids).toContain(id);
    expect(ids.length).toBe(recordsBefore.length + 2); // + the remove-rule LEARN + the unlock LEARN
    expect(JSON.parse(await ok(["thread", "records", "th_user", "-o", "json"]))).toHaveLength(6);
    expect(JSON.parse(await ok(["config", "list-rules", "-o", "json"])).map((r: any) => r.name).sort()).toEqual(["code", "users-read-only"]);
  });

  test("permissions-unlock --force writes while the daemon runs; it takes effect at the next restart", async () => {
    await ok(["config", "add-permission-rule", "--name", "admin-self", "--action", "allow", "--priority", "10000", "--expression", `current_actor() == "${OP}" && (resource == "record_write" || resource == "thread_read" || resource == "config_read" || resource == "status_read")`]);
    await ok(["config", "permissions-enable"]);
    const forced = await inst.spl(["config", "permissions-unlock", "--force"]);
    expect(forced.code).toBe(0);
    expect(forced.stdout).toContain("restart it");
    // Still enforced: the daemon has not re-read the store.
    expect((await inst.socket("GET", "/v1/tokens")).status).toBe(403);
    await ok(["serve", "--restart"]);
    expect((await inst.socket("GET", "/v1/status")).json.permissions_enabled).toBe(false);
  });
});

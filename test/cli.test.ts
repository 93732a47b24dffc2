// The CLI: verbs, -o json, exit codes 0/1/2, one-line errors, closed pipes, transports.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, statSync } from "node:fs";
import pkg from "../package.json";
import { Instance, SPL } from "./harness";

const inst = new Instance();
beforeAll(async () => {
  await inst.start();
});
afterAll(async () => {
  await inst.stop();
});

const noStack = (s: string) => expect(s).not.toMatch(/\n\s+at |Error:|\.ts:\d+/);

describe("version and init", () => {
  test("spl version prints the baked-in version; -o json adds commit and build time", async () => {
    const v = await inst.spl(["version"]);
    expect(v).toMatchObject({ code: 0, stdout: `spl ${pkg.version}\n` });
    const j = JSON.parse((await inst.spl(["version", "-o", "json"])).stdout);
    expect(j.version).toBe(pkg.version);
    expect(typeof j.commit).toBe("string");
    expect(Number.isNaN(Date.parse(j.build_time))).toBe(false);
    expect((await inst.spl(["--version"])).stdout).toBe(`spl ${pkg.version}\n`);
  });

  test("spl init creates the home with private modes and is idempotent", async () => {
    const fresh = new Instance();
    const a = await fresh.spl(["init"]);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain(`Initialized Syncropel home at ${fresh.splHome}`);
    expect(a.stdout).toMatch(/instance: did:sync:instance:[0-9a-f]{16}/);
    for (const d of ["", "run", "logs", "secrets"]) expect(statSync(fresh.path(d)).mode & 0o777).toBe(0o700);
    expect(statSync(fresh.path("config.toml")).mode & 0o777).toBe(0o600);
    expect(readFileSync(fresh.path("config.toml"), "utf8")).toContain('actor = "did:sync:user:tester"');
    const before = readFileSync(fresh.path("hub.db"));
    const b = await fresh.spl(["init"]);
    expect(b.code).toBe(0);
    expect(b.stdout).toContain("Already initialized");
    expect(b.stdout.match(/did:sync:instance:[0-9a-f]{16}/)![0]).toBe(a.stdout.match(/did:sync:instance:[0-9a-f]{16}/)![0]);
    expect(readFileSync(fresh.path("hub.db")).equals(before)).toBe(true);
  });
});

describe("emit and read", () => {
  test("intend/do/know/learn emit one record each and print id and thread", async () => {
    const i = await inst.spl(["intend", "ship the release", "--thread", "th_cli"]);
    expect(i.code).toBe(0);
    expect(i.stdout).toMatch(/^recorded INTEND [0-9a-f]{64}\n  thread: th_cli\n  clock:  0\n$/);
    const intendId = /INTEND ([0-9a-f]{64})/.exec(i.stdout)![1]!;
    expect((await inst.spl(["do", "built it", "--thread", "th_cli"])).stdout).toContain("recorded DO");
    const k = JSON.parse((await inst.spl(["know", "it works", "--thread", "th_cli", "--fulfills", intendId, "-o", "json"])).stdout);
    expect(k).toMatchObject({ act: "KNOW", thread: "th_cli", body: { text: "it works", fulfills: intendId }, parents: [intendId], actor: "did:sync:user:tester" });
    const l = JSON.parse(
      (await inst.spl(["learn", "--thread", "th_cli", "--body", '{"topic":"note","n":1}', "--actor", "did:sync:system:engine", "--json"])).stdout,
    );
    expect(l).toMatchObject({ act: "LEARN", actor: "did:sync:system:engine", body: { topic: "note", n: 1 } });
    const fresh = await inst.spl(["intend", "a new goal"]);
    expect(fresh.stdout).toMatch(/thread: th_[0-9a-f]{64}/);
  });

  test("thread list | records | state, human and -o json", async () => {
    const list = await inst.spl(["thread", "list"]);
    expect(list.stdout).toMatch(/^THREAD\s+RECORDS\s+STATUS\s+LAST SEEN/);
    expect(list.stdout).toMatch(/th_cli\s+4\s+closed/);
    const lj = JSON.parse((await inst.spl(["thread", "list", "-o", "json"])).stdout);
    expect(lj.find((t: any) => t.thread === "th_cli")).toMatchObject({ record_count: 4, status: "closed" });
    const recs = JSON.parse((await inst.spl(["thread", "records", "th_cli", "-o", "json"])).stdout);
    expect(Array.isArray(recs)).toBe(true);
    expect(recs.map((r: any) => r.act)).toEqual(["INTEND", "DO", "KNOW", "LEARN"]);
    const human = await inst.spl(["thread", "records", "th_cli"]);
    expect(human.stdout.trim().split("\n")).toHaveLength(4);
    expect(human.stdout).toContain("ship the release");
    const st = await inst.spl(["thread", "state", "th_cli"]);
    expect(st.stdout).toContain("Status:     closed");
    expect(JSON.parse((await inst.spl(["thread", "state", "th_cli", "-o", "json"])).stdout).record_count).toBe(4);
  });

  test("`spl thread records X | head -1` ends quietly", async () => {
    const records = Array.from({ length: 1000 }, (_, i) => ({ thread: "th_pipe", actor: "did:sync:user:p", act: "KNOW", clock: i, body: { text: `line ${i} ${"x".repeat(100)}` } }));
    for (let b = 0; b < 3; b++) await inst.socket("POST", "/v1/records/batch", { records: records.map((r) => ({ ...r, clock: r.clock + b * 1000 })) });
    const sh = Bun.spawn(["bash", "-c", `set -o pipefail; "${SPL}" thread records th_pipe | head -1`], { env: inst.env, stdout: "pipe", stderr: "pipe" });
    const [out, err, code] = await Promise.all([new Response(sh.stdout).text(), new Response(sh.stderr).text(), sh.exited]);
    expect(out.trim().split("\n")).toHaveLength(1);
    expect(err).toBe("");
    expect(code).toBe(0);
  });
});

describe("errors and exit codes", () => {
  test("usage errors exit 2 with one line naming the fix", async () => {
    for (const args of [["frobnicate"], ["status", "--bogus"], ["thread", "records"], ["serve", "--port", "99999"], ["know", "x", "y"], ["thread"], ["status", "-o", "yaml"]]) {
      const r = await inst.spl(args);
      expect({ args, code: r.code }).toEqual({ args, code: 2 });
      if (args[0] !== "thread" || args.length > 1) {
        expect(r.stderr).toMatch(/^error: .+ — .+\n$/);
        noStack(r.stderr);
      }
    }
  });

  test("failures exit 1 with one line: unknown thread, bad --body, daemon errors", async () => {
    const t = await inst.spl(["thread", "records", "th_does_not_exist"]);
    expect(t.code).toBe(1);
    expect(t.stderr).toMatch(/^error: no records on thread th_does_not_exist — .*spl thread list/);
    const b = await inst.spl(["learn", "--body", "{nope"]);
    expect(b.code).toBe(2);
    expect(b.stderr).toContain("--body is not valid JSON");
    const a = await inst.spl(["know", "x", "--actor", "alice"]);
    expect(a.code).toBe(1);
    expect(a.stderr).toContain("'actor' must be a DID");
    for (const r of [t, b, a]) noStack(r.stderr);
  });

  test("not running: status exits 1, emit names the fix", async () => {
    const down = new Instance();
    const s = await down.spl(["status"]);
    expect(s.code).toBe(1);
    expect(s.stdout).toContain("Status:   not running");
    const k = await down.spl(["know", "x"]);
    expect(k.code).toBe(1);
    expect(k.stderr).toMatch(/^error: spl serve is not running .* — start it with 'spl serve --daemon'\n$/);
  });

  test("--help works at every level and exits 0", async () => {
    for (const args of [["--help"], ["serve", "--help"], ["thread", "--help"], ["thread", "records", "--help"]]) {
      const r = await inst.spl(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain("USAGE");
    }
  });
});

describe("transport", () => {
  test("the CLI uses the socket; SPL_SERVE_URL switches it to HTTP", async () => {
    // A home with no daemon of its own: only HTTP can reach inst's daemon.
    const elsewhere = new Instance();
    const env = { SPL_SERVE_URL: inst.url, ...(inst.token ? { SPL_TOKEN: inst.token } : {}) };
    const s = await elsewhere.spl(["status", "-o", "json"], { env });
    expect(s.code).toBe(0);
    expect(JSON.parse(s.stdout).home).toBe(inst.splHome);
    const k = await elsewhere.spl(["know", "over http", "--thread", "th_http"], { env });
    expect(k.code).toBe(0);
    expect(existsSync(elsewhere.path("hub.db"))).toBe(false);
    const bad = await elsewhere.spl(["status"], { env: { SPL_SERVE_URL: "http://127.0.0.1:1" } });
    expect(bad.code).toBe(1);
  });
});

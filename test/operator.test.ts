// What a new operator trips over (issue 14): finding the daemon, config.toml mistakes, the
// default identity, the detached start's output file. Each drives the compiled binary.
import { describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { Instance, isAlive } from "./harness";

describe("one way of finding the daemon", () => {
  test("pid file and socket gone: status, doctor and serve --stop all find the daemon on its port", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    rmSync(inst.path("run"), { recursive: true, force: true });

    const status = await inst.spl(["status"]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(/Status:\s+ok/);
    expect(status.stdout).toContain(`PID:      ${pid}`);
    expect(status.stderr).toContain(`reached spl serve (pid ${pid}) on http://127.0.0.1:${inst.port}`);

    const doctor = JSON.parse((await inst.spl(["doctor", "--json"])).stdout);
    const reachable = doctor.checks.find((c: any) => c.name === "daemon reachable");
    expect(reachable.status).toBe("pass");
    expect(reachable.detail).toContain(`pid ${pid}`);

    const stop = await inst.spl(["serve", "--stop"]);
    expect(stop.code).toBe(0);
    expect(stop.stdout).toContain(`Stopped spl serve (pid ${pid}, found via port`);
    expect(isAlive(pid)).toBe(false);

    const after = await inst.spl(["status"]);
    expect(after.code).toBe(1);
    expect(after.stdout).toMatch(/not running/);
  });
});

describe("config.toml mistakes are named", () => {
  test("an unknown section or key is a WARN at start, on the terminal and in spl.log", async () => {
    const inst = new Instance();
    mkdirSync(inst.splHome, { recursive: true });
    writeFileSync(inst.path("config.toml"), `[server]\nprot = 9\n\n[fleeet]\ncoordinator_url = "http://127.0.0.1:1"\n`, { mode: 0o600 });
    const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`warn: ${inst.path("config.toml")}: unknown section [fleeet] is ignored`);
    expect(r.stderr).toContain("unknown key 'prot' in [server] is ignored — known keys there: host, port, allowed_hosts");
    const log = readFileSync(inst.path("logs", "spl.log"), "utf8");
    expect(log).toContain("unknown section [fleeet]");
    expect(log).toMatch(/"level":"WARN"[^\n]*unknown key 'prot'/);
    const doctor = JSON.parse((await inst.spl(["doctor", "--json"])).stdout);
    const row = doctor.checks.find((c: any) => c.name === "config");
    expect(row.status).toBe("warn");
    expect(row.detail).toContain("unknown section [fleeet]");
    expect((await inst.stop()).code).toBe(0);
  });

  test("a config.toml that does not parse: one line naming the line and column", async () => {
    const inst = new Instance();
    mkdirSync(inst.splHome, { recursive: true });
    writeFileSync(inst.path("config.toml"), `[server]\nport = 91 00\n`, { mode: 0o600 });
    for (const args of [["serve", "--port", String(inst.port)], ["serve", "--daemon", "--port", String(inst.port)]]) {
      const r = await inst.spl(args);
      expect(r.code).toBe(1);
      const lines = r.stderr.split("\n").filter(Boolean);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toStartWith(`error: cannot parse ${inst.path("config.toml")} at line 2, column 11: `);
      expect(lines[0]).toContain("fix the TOML syntax");
    }
  });
});

describe("the detached daemon's output file", () => {
  test("a start that fails names logs/daemon.out", async () => {
    const squatter = Bun.serve({ port: 0, hostname: "127.0.0.1", reusePort: false, fetch: () => new Response("not spl") });
    try {
      const inst = new Instance({ port: squatter.port });
      const r = await inst.spl(["serve", "--daemon", "--port", String(squatter.port)]);
      expect(r.code).toBe(1);
      expect(r.stderr).toStartWith(`error: address already in use: 127.0.0.1:${squatter.port}`);
      expect(r.stderr).toContain(`the daemon's output is in ${inst.path("logs", "daemon.out")}`);
      expect(readFileSync(inst.path("logs", "daemon.out"), "utf8")).toContain("address already in use");
    } finally {
      squatter.stop(true);
    }
  });
});

describe("default identity", () => {
  test("with USER and LOGNAME unset (systemd, Docker) the actor is the OS user of the uid, and init prints it", async () => {
    const inst = new Instance();
    delete inst.env.USER;
    delete inst.env.LOGNAME;
    const osUser = Bun.spawnSync(["id", "-un"]).stdout.toString().trim();
    expect(osUser).not.toBe("");
    const r = await inst.spl(["init"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`  actor:    did:sync:user:${osUser} `);
    expect(readFileSync(inst.path("config.toml"), "utf8")).toContain(`actor = "did:sync:user:${osUser}"`);
  });
});

describe("a recreated store", () => {
  test("the first start on an empty store while a backup holds records warns on the terminal, naming the backup and spl restore", async () => {
    const inst = new Instance();
    await inst.start();
    for (let i = 0; i < 3; i++) expect((await inst.spl(["intend", `kept ${i}`, "--thread", "th_keep"])).code).toBe(0);
    expect((await inst.spl(["serve", "--restart"])).code).toBe(0); // writes the startup backup
    expect((await inst.stop()).code).toBe(0);
    for (const f of ["hub.db", "hub.db-wal", "hub.db-shm"]) rmSync(inst.path(f), { force: true });

    const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
    expect(r.code).toBe(0);
    const warning = r.stderr.split("\n").find((l) => l.startsWith("warn: starting with a new, empty store"));
    expect(warning).toBeDefined();
    expect(warning).toMatch(/backups hold 5 records/);
    expect(warning).toMatch(/'spl restore \/.*hub\.db\.bak(\.max)?'/);
    expect(readFileSync(inst.path("logs", "spl.log"), "utf8")).toContain("starting with a new, empty store");
    expect((await inst.stop()).code).toBe(0);
  });
});

describe("small things an operator reads", () => {
  test("one version string: --help, --version, version and status all say the same 'spl X.Y.Z'", async () => {
    const inst = new Instance();
    const version = (await inst.spl(["version"])).stdout.trim();
    expect(version).toMatch(/^spl \d+\.\d+\.\d+$/);
    expect((await inst.spl(["--version"])).stdout.trim()).toBe(version);
    const help = (await inst.spl(["--help"])).stdout.split("\n")[0]!;
    expect(help).toStartWith(`${version} — `);
    expect(help).not.toMatch(/\bv\d+\.\d+/);
    await inst.start();
    const status = await inst.spl(["status"]);
    expect(status.stdout.split("\n")[0]).toEndWith(` ${version.slice(4)}`);
    expect(JSON.parse((await inst.spl(["status", "-o", "json"])).stdout).version).toBe(version.slice(4));
    await inst.stop();
  });

  test("an unknown command or option suggests the closest one", async () => {
    const inst = new Instance();
    const cmd = await inst.spl(["stauts"]);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toBe("error: unknown command 'stauts' for 'spl' — did you mean 'status'? (see 'spl --help')\n");
    const sub = await inst.spl(["config", "add-rul"]);
    expect(sub.code).toBe(2);
    expect(sub.stderr).toContain("did you mean 'add-rule'?");
    const flag = await inst.spl(["serve", "--deamon"]);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toBe("error: unknown option '--deamon' for 'spl serve' — did you mean '--daemon'? (see 'spl serve --help')\n");
    const far = await inst.spl(["xyzzy"]);
    expect(far.code).toBe(2);
    expect(far.stderr).toBe("error: unknown command 'xyzzy' for 'spl' — see 'spl --help'\n");
  });

  test("thread records: config records whole, other bodies cut unless --full", async () => {
    const inst = new Instance();
    await inst.start();
    const expression = `current_actor() == "did:sync:user:tester" && (resource == "thread_read" || resource == "config_read" || resource == "record_read")`;
    expect((await inst.spl(["config", "add-permission-rule", "--name", "long", "--action", "allow", "--priority", "5", "--expression", expression])).code).toBe(0);
    const config = await inst.spl(["thread", "records", "th_engine_config"]);
    expect(config.stdout).toContain(JSON.stringify(expression));
    const text = "a long note ".repeat(12).trim();
    expect((await inst.spl(["intend", text, "--thread", "th_notes"])).code).toBe(0);
    const cut = (await inst.spl(["thread", "records", "th_notes"])).stdout;
    expect(cut).not.toContain(text);
    expect(cut).toContain("...");
    expect((await inst.spl(["thread", "records", "th_notes", "--full"])).stdout).toContain(text);
    await inst.stop();
  });

  test("backup list: newest first, the .max copy marked", async () => {
    const inst = new Instance();
    await inst.start();
    expect((await inst.spl(["serve", "--restart"])).code).toBe(0);
    expect((await inst.spl(["intend", "one more"])).code).toBe(0);
    expect((await inst.spl(["serve", "--restart"])).code).toBe(0);
    const rows = JSON.parse((await inst.spl(["backup", "list", "-o", "json"])).stdout);
    const times = rows.map((r: any) => r.mtime_ms);
    expect(times).toEqual([...times].sort((a: number, b: number) => b - a));
    const human = (await inst.spl(["backup", "list"])).stdout;
    expect(human).toMatch(/largest ever \(\.max[^\n]*hub\.db\.bak\.max/);
    await inst.stop();
  });
});

describe("startup order", () => {
  /** name → size:mtime of every file in this home's backup directories. */
  function backupFiles(inst: Instance): Record<string, string> {
    const { readdirSync, statSync } = require("node:fs");
    const root = `${inst.home}/.local/share/syncropel/backups`;
    const files: Record<string, string> = {};
    for (const dir of readdirSync(root)) {
      for (const f of readdirSync(`${root}/${dir}`)) {
        const st = statSync(`${root}/${dir}/${f}`);
        files[`${dir}/${f}`] = `${st.size}:${st.mtimeMs}`;
      }
    }
    return files;
  }

  test("a port in use refuses the start before any backup is written or rotated, and spl.log says why", async () => {
    const inst = new Instance();
    await inst.start();
    expect((await inst.spl(["intend", "keep me"])).code).toBe(0);
    expect((await inst.spl(["serve", "--restart"])).code).toBe(0);
    expect((await inst.stop()).code).toBe(0);
    const before = backupFiles(inst);
    expect(Object.keys(before).some((f) => f.endsWith("/hub.db.bak"))).toBe(true);

    const squatter = Bun.serve({ port: 0, hostname: "127.0.0.1", reusePort: false, fetch: () => new Response("not spl") });
    try {
      for (let i = 0; i < 3; i++) {
        const r = await inst.spl(["serve", "--daemon", "--port", String(squatter.port)]);
        expect(r.code).toBe(1);
        expect(r.stderr).toContain(`address already in use: 127.0.0.1:${squatter.port}`);
      }
    } finally {
      squatter.stop(true);
    }
    expect(backupFiles(inst)).toEqual(before);
    const log = readFileSync(inst.path("logs", "spl.log"), "utf8").trim().split("\n");
    const refusal = log.findLastIndex((l) => l.includes("address already in use"));
    expect(refusal).toBeGreaterThan(-1);
    expect(JSON.parse(log[refusal]!).level).toBe("ERROR");
    expect(log.slice(log.findLastIndex((l) => l.includes('"stopped"'))).some((l) => l.includes("startup backup written"))).toBe(false);
  });

  test("an already running daemon is refused without 'Starting Syncropel instance...' first", async () => {
    const inst = new Instance();
    const pid = await inst.start();
    for (const args of [["serve", "--daemon", "--port", String(inst.port)], ["serve", "--port", String(inst.port)]]) {
      const r = await inst.spl(args);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain(`spl serve is already running (pid ${pid})`);
      expect(r.stdout).not.toContain("Starting Syncropel instance");
    }
    expect((await inst.stop()).code).toBe(0);
  });
});

describe("one backup folder per home", () => {
  test("after a recreated store the runbook's off-host cp line still names one file, and .max keeps the good copy", async () => {
    const inst = new Instance();
    await inst.start();
    for (let i = 0; i < 4; i++) expect((await inst.spl(["intend", `precious ${i}`, "--thread", "th_keep"])).code).toBe(0);
    const good = JSON.parse((await inst.spl(["status", "-o", "json"])).stdout).records;
    expect((await inst.spl(["serve", "--restart"])).code).toBe(0);
    expect((await inst.stop()).code).toBe(0);
    for (const f of ["hub.db", "hub.db-wal", "hub.db-shm"]) rmSync(inst.path(f), { force: true });
    await inst.start(); // a new store, a new instance DID
    expect((await inst.spl(["serve", "--restart"])).code).toBe(0); // its first startup backup
    expect((await inst.stop()).code).toBe(0);

    const root = `${inst.home}/.local/share/syncropel/backups`;
    const folders = require("node:fs").readdirSync(root);
    expect(folders).toHaveLength(1);
    const runbook = `DEST=$HOME/backups/syncropel
mkdir -p "$DEST"
cp ~/.local/share/syncropel/backups/*/hub.db.bak \\
   "$DEST/hub.db.$(date +%Y%m%d-%H%M%S).bak"`;
    const sh = Bun.spawnSync(["sh", "-c", runbook], { env: inst.env });
    expect(sh.stderr.toString()).toBe("");
    expect(sh.exitCode).toBe(0);
    const { Database } = require("bun:sqlite");
    const count = (file: string) => {
      const db = new Database(file, { readonly: true });
      try {
        return (db.query("SELECT count(*) AS n FROM records").get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    expect(count(`${root}/${folders[0]}/hub.db.bak.max`)).toBe(good);
    const list = (await inst.spl(["backup", "list"])).stdout;
    expect(list).toContain(`${root}/${folders[0]}/hub.db.bak.max`);
  });
});

test("multi-instance host: the README's copy loop takes one file per instance, named for the runbook's retention find", async () => {
  const a = new Instance();
  const b = new Instance({ env: { HOME: a.home, SYNCROPEL_HOME: `${a.home}/.syncro-b` } });
  for (const inst of [a, b]) {
    await inst.start();
    expect((await inst.spl(["serve", "--restart"])).code).toBe(0);
    expect((await inst.stop()).code).toBe(0);
  }
  const readme = readFileSync(`${import.meta.dir}/../README.md`, "utf8");
  const loop = /```sh\n(DEST=[^`]*for f in [^`]*)```/.exec(readme)![1]!;
  const sh = Bun.spawnSync(["sh", "-c", `${loop}\nfind "$DEST" -name 'hub.db.*.bak' | wc -l`], { env: a.env });
  expect(sh.stderr.toString()).toBe("");
  expect(sh.stdout.toString().trim()).toBe("2");
});

// docker-compose.yml without an engine: each service's config, secrets and environment given to the
// compiled binary started as the image's CMD, on loopback (service names → 127.0.0.1 and a free
// port each), until the coordinator lists all three members live.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, SPL, track, waitFor } from "./harness";

setDefaultTimeout(120_000);
const REPO = resolve(import.meta.dir, "..");
const text = readFileSync(join(REPO, "docker-compose.yml"), "utf8");
const compose = Bun.YAML.parse(text) as any;
const root = mkdtempSync(join(tmpdir(), "spl-compose-test-"));
const procs: Bun.Subprocess[] = [];

afterAll(async () => {
  for (const p of procs) p.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.exited));
  rmSync(root, { recursive: true, force: true });
});

test("docker-compose.yml: a coordinator and two workers form a fleet", async () => {
  const names = Object.keys(compose.services);
  expect(names).toEqual(["coordinator", "worker-a", "worker-b"]);
  expect(names.map((n) => compose.services[n].ports)).toEqual([["9200:9100"], ["9201:9100"], ["9202:9100"]]);

  // The header's commands make the two secrets files (when openssl is here; else the same shapes).
  const header = text.split("\n").filter((l) => /^#   (printf|openssl) /.test(l)).map((l) => l.slice(4));
  expect(header).toHaveLength(2);
  if (Bun.which("openssl")) {
    for (const cmd of header) expect(Bun.spawnSync(["sh", "-c", cmd], { cwd: root }).exitCode).toBe(0);
  } else {
    console.warn("no openssl: writing the secrets files without the header's commands");
    const hex = (n: number) => Buffer.from(crypto.getRandomValues(new Uint8Array(n))).toString("hex");
    writeFileSync(join(root, "fleet_token"), `spl_fleet_${hex(8)}_${hex(24)}\n`);
    writeFileSync(join(root, "admin_token"), `${hex(24)}\n`);
  }
  const admin = readFileSync(join(root, "admin_token"), "utf8").trim();

  const ports = Object.fromEntries(names.map((n) => [n, freePort()]));
  const loopback = (s: string) => s.replace(/http:\/\/([a-z-]+):9100/g, (_, n) => `http://127.0.0.1:${ports[n]}`);
  const cmd = readFileSync(join(REPO, "Dockerfile"), "utf8").match(/^CMD (.*)$/m)![1]!;

  for (const name of names) {
    const svc = compose.services[name];
    expect(svc.stop_grace_period).toBe("30s");
    expect(svc.volumes).toEqual([`${name}-home:/syncropel`]);
    const home = join(root, name);
    mkdirSync(join(home, "secrets"), { recursive: true });
    // configs and secrets land where the service's targets say, under /syncropel (the home).
    for (const c of svc.configs) {
      writeFileSync(join(home, c.target.replace(/^\/syncropel\//, "")), loopback(compose.configs[c.source].content));
    }
    const fleetSecret = svc.secrets.find((s: any) => s.source === "fleet_token");
    const tokenPath = join(home, fleetSecret.target.replace(/^\/syncropel\//, ""));
    writeFileSync(tokenPath, readFileSync(join(root, compose.secrets.fleet_token.file)));
    chmodSync(tokenPath, 0o600);

    const env = {
      PATH: process.env.PATH!,
      HOME: join(home, "home"),
      SYNCROPEL_HOME: home,
      ...svc.environment,
      SPL_BOOTSTRAP_TOKEN_FILE: join(root, "admin_token"), // /run/secrets/admin_token in the container
    };
    const args = (JSON.parse(cmd) as string[]).map((a) => (a === "9100" ? String(ports[name]) : a));
    const proc = Bun.spawn([SPL, ...args], { env, stdout: "ignore", stderr: "pipe" });
    track(proc.pid);
    procs.push(proc);
    // depends_on: service_healthy — the workers start once the coordinator's probe passes.
    await waitFor(`${name}'s GET /health to answer on :${ports[name]}`, () => Bun.spawnSync(["curl", "-fs", `http://127.0.0.1:${ports[name]}/health`]).exitCode === 0, { stepMs: 100 });
  }

  const list = () => {
    const r = Bun.spawnSync([SPL, "fleet", "list", "-o", "json", "--url", `http://127.0.0.1:${ports.coordinator}`], {
      env: { PATH: process.env.PATH!, HOME: join(root, "cli"), SYNCROPEL_HOME: join(root, "cli", ".syncro"), SPL_TOKEN: admin },
    });
    return r.exitCode === 0 ? (JSON.parse(r.stdout.toString()) as { name: string; status: string }[]) : [];
  };
  await waitFor("3 members live (spl fleet list)", () => list().map((m) => `${m.name}:${m.status}`), { timeoutMs: 60_000, stepMs: 250, until: (ms) => ms.filter((m) => m.endsWith(":live")).length === 3 });
  expect(list().map((m) => m.name).sort()).toEqual(names);
});

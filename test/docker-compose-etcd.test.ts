// docker-compose.etcd.yml without an engine: its three etcd services are a real etcd cluster on
// loopback (test/etcd.ts: etcd-N:2379 → that member's client URL), its three spl services the
// compiled binary started as the image's CMD with each service's config, secrets and environment
// (spl-x:9100 → 127.0.0.1 and a free port), until they agree on one elected coordinator that
// lists all three live. Skips, saying why, where etcd is not installed.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { EtcdCluster } from "./etcd";
import { freePort, SPL, track, waitFor } from "./harness";

setDefaultTimeout(180_000);
const REPO = resolve(import.meta.dir, "..");
const text = readFileSync(join(REPO, "docker-compose.etcd.yml"), "utf8");
const compose = Bun.YAML.parse(text) as any;
const why = EtcdCluster.unavailable() ?? (Bun.which("openssl") ? null : "openssl is not installed (the file's header makes the secrets with it)");
if (why) console.log(`skipping the docker-compose.etcd.yml test: ${why}`);
const root = mkdtempSync(join(tmpdir(), "spl-compose-etcd-test-"));
const procs: Bun.Subprocess[] = [];
let etcd: EtcdCluster | undefined;

afterAll(async () => {
  for (const p of procs) p.kill("SIGTERM");
  await Promise.all(procs.map((p) => p.exited));
  etcd?.destroy();
  rmSync(root, { recursive: true, force: true });
});

test.skipIf(why !== null)(`docker-compose.etcd.yml: three etcd members and three candidates elect one coordinator, all live${why ? ` (skipped: ${why})` : ""}`, async () => {
  const names = Object.keys(compose.services);
  expect(names).toEqual(["etcd-1", "etcd-2", "etcd-3", "spl-a", "spl-b", "spl-c"]);
  const spl = names.filter((n) => n.startsWith("spl-"));
  for (const cmd of text.split("\n").filter((l) => /^#   (printf|openssl) /.test(l)).map((l) => l.slice(4))) {
    expect(Bun.spawnSync(["sh", "-c", cmd], { cwd: root }).exitCode).toBe(0);
  }
  const admin = readFileSync(join(root, "admin_token"), "utf8").trim();

  etcd = await EtcdCluster.start(3);
  const ports = Object.fromEntries(spl.map((n) => [n, freePort()]));
  const loopback = (s: string) =>
    s.replace(/http:\/\/etcd-(\d):2379/g, (_, i) => etcd!.endpoints[Number(i) - 1]!).replace(/http:\/\/(spl-[a-z]):9100/g, (_, n) => `http://127.0.0.1:${ports[n]}`);
  const cmd = JSON.parse(readFileSync(join(REPO, "Dockerfile"), "utf8").match(/^CMD (.*)$/m)![1]!) as string[];

  for (const name of spl) {
    const svc = compose.services[name];
    expect(svc.depends_on).toEqual(["etcd-1", "etcd-2", "etcd-3"]);
    const home = join(root, name);
    mkdirSync(join(home, "secrets"), { recursive: true });
    for (const c of svc.configs) writeFileSync(join(home, c.target.replace(/^\/syncropel\//, "")), loopback(compose.configs[c.source].content));
    const tokenPath = join(home, svc.secrets.find((s: any) => s.source === "fleet_token").target.replace(/^\/syncropel\//, ""));
    writeFileSync(tokenPath, readFileSync(join(root, compose.secrets.fleet_token.file)));
    chmodSync(tokenPath, 0o600);
    const env = { PATH: process.env.PATH!, HOME: join(home, "home"), SYNCROPEL_HOME: home, ...svc.environment, SPL_BOOTSTRAP_TOKEN_FILE: join(root, "admin_token") };
    const proc = Bun.spawn([SPL, ...cmd.map((a) => (a === "9100" ? String(ports[name]) : a))], { env, stdout: "ignore", stderr: "pipe" });
    track(proc.pid);
    procs.push(proc);
  }

  const status = (name: string) => {
    const r = Bun.spawnSync([SPL, "fleet", "status", "-o", "json", "--url", `http://127.0.0.1:${ports[name]}`], {
      env: { PATH: process.env.PATH!, HOME: join(root, "cli"), SYNCROPEL_HOME: join(root, "cli", ".syncro"), SPL_TOKEN: admin },
    });
    return r.exitCode === 0 ? (JSON.parse(r.stdout.toString()) as { election?: { coordinator: { name: string; epoch: number } | null }; counts: { live: number } }) : null;
  };
  const seen = await waitFor(
    "every spl service to name one elected coordinator, with 3 members live (spl fleet status)",
    () => spl.map((n) => { const s = status(n); return s ? `${s.election?.coordinator?.name ?? "none"}@${s.election?.coordinator?.epoch ?? 0}:${s.counts.live} live` : "no answer"; }),
    { timeoutMs: 90_000, stepMs: 250, until: (v) => new Set(v).size === 1 && !v[0]!.startsWith("none") && v[0]!.endsWith(":3 live") },
  );
  expect(spl).toContain(seen[0]!.split("@")[0]!);
});

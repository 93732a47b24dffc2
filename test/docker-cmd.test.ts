// The container contract without a Docker engine: start the binary exactly as the image's CMD
// does (foreground, --host 0.0.0.0, SYNCROPEL_HOME from ENV, SPL_BOOTSTRAP_TOKEN), run the
// image's HEALTHCHECK command verbatim (only its port swapped for a free one) until healthy, then
// stop it the way `docker stop` does (SIGTERM) and expect a clean exit 0 within 10 s.
import { expect, test } from "bun:test";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Instance, SPL, track, waitFor } from "./harness";

const dockerfile = readFileSync(join(import.meta.dir, "..", "Dockerfile"), "utf8").replace(/\\\n\s*/g, " ");
const instruction = (name: string) => dockerfile.split("\n").filter((l) => l.startsWith(`${name} `)).pop()!.slice(name.length + 1).trim();

test("the image's CMD and HEALTHCHECK work on the compiled binary", async () => {
  const cmd = JSON.parse(instruction("CMD")) as string[];
  expect(cmd).toEqual(["serve", "--port", "9100", "--host", "0.0.0.0"]);
  const healthcheck = instruction("HEALTHCHECK").replace(/^.*?CMD\s+/, "");
  expect(healthcheck).toBe("curl -fsS http://127.0.0.1:9100/health || exit 1");
  expect(instruction("USER")).toBe("syncropel");
  expect(instruction("ENTRYPOINT")).toBe('["/usr/bin/tini", "--", "/usr/local/bin/spl"]');

  const inst = new Instance();
  const port = String(inst.port);
  const token = "smoke-" + "k9".repeat(20);
  const env = { ...inst.env, SYNCROPEL_HOME: join(inst.root, "syncropel"), SPL_BOOTSTRAP_TOKEN: token };
  const args = cmd.map((a) => (a === "9100" ? port : a));
  const proc = Bun.spawn([SPL, ...args], { env, stdout: "pipe", stderr: "pipe" });
  track(proc.pid);

  const probe = healthcheck.replace("9100", port);
  await waitFor(`the image's HEALTHCHECK command to pass (${probe})`, () => Bun.spawnSync(["sh", "-c", probe]).exitCode === 0, { stepMs: 100 });
  const health = JSON.parse(Bun.spawnSync(["curl", "-fsS", `http://127.0.0.1:${port}/health`]).stdout.toString());
  expect(health).toMatchObject({ status: "ok", store: `sqlite://${join(inst.root, "syncropel", "hub.db")}` });

  // Listening on all interfaces means auth is on: no bearer is 401, the bootstrap token works.
  const anon = await fetch(`http://127.0.0.1:${port}/v1/status`);
  expect(anon.status).toBe(401);
  const authed = await fetch(`http://127.0.0.1:${port}/v1/records`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ thread: "th_smoke", actor: "did:sync:user:tester", act: "KNOW", body: { text: "smoke" } }),
  });
  expect(authed.status).toBe(201);
  // `docker exec spl spl status` uses the socket under SYNCROPEL_HOME.
  const status = Bun.spawnSync([SPL, "status"], { env });
  expect(status.stdout.toString()).toContain("Status:   ok");

  const sent = Date.now();
  proc.kill("SIGTERM");
  const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => "timeout")]);
  expect({ code, withinTenSeconds: Date.now() - sent < 10_000 }).toEqual({ code: 0, withinTenSeconds: true });
  expect(existsSync(join(inst.root, "syncropel", "run", "spl.pid"))).toBe(false);
  // `docker logs` reads stdout and stderr as one stream: JSON lines only, the banner's facts in the ready line.
  expect(await new Response(proc.stdout).text()).toBe("");
  const ready = (await new Response(proc.stderr).text()).split("\n").filter(Boolean).map((l) => JSON.parse(l)).find((l) => l.msg === "ready");
  expect(ready).toMatchObject({ level: "INFO", bind: `0.0.0.0:${port}` });
});

// --- the Dockerfile itself ---------------------------------------------------------------------------

const REPO = join(import.meta.dir, "..");
const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
const lines = (name: string) => dockerfile.split("\n").filter((l) => l.startsWith(`${name} `)).map((l) => l.slice(name.length + 1).trim());

test("the Dockerfile lints clean (dockerfilelint)", () => {
  const lint = join(REPO, "node_modules", "dockerfilelint", "bin", "dockerfilelint");
  const r = Bun.spawnSync([process.execPath, lint, "-o", "json", join(REPO, "Dockerfile")]);
  const issues = (JSON.parse(r.stdout.toString()).files[0].issues as { content: string; title: string }[])
    // dockerfilelint 1.8 reads `--start-period` as `--start` and calls it unknown (its option regex
    // stops at the hyphen); that one finding is the linter's bug, anything else is ours.
    .filter((i) => !(i.content.startsWith("HEALTHCHECK ") && i.title === "Invalid Argument Format"));
  expect(issues).toEqual([]);
  // The exception above must not hide a real mistake: only the four known options are used.
  const opts = instruction("HEALTHCHECK").replace(/\s+CMD\s.*$/, "").split(/\s+/).map((o) => o.replace(/=.*/, ""));
  expect(opts.sort()).toEqual(["--interval", "--retries", "--start-period", "--timeout"]);
});

test("pinned bases, the project's Bun, labels, volumes, start period, stop signal and timeout", () => {
  const args = Object.fromEntries(lines("ARG").map((a) => a.split("=") as [string, string]));
  expect(`bun@${args.BUN_VERSION}`).toBe(pkg.packageManager);
  expect(args.SPL_VERSION).toBe(pkg.version); // bump both on release
  expect(args.DEBIAN_VERSION).toMatch(/^\d+\.\d+$/); // a point release, not a moving tag
  expect(lines("FROM")).toEqual(["oven/bun:${BUN_VERSION}-debian AS build", "debian:${DEBIAN_VERSION}-slim"]);
  for (const key of ["version", "revision", "source"]) expect(dockerfile).toContain(`org.opencontainers.image.${key}=`);
  expect(dockerfile).toContain('org.opencontainers.image.version="${SPL_VERSION}"');
  expect(dockerfile).toContain('org.opencontainers.image.revision="${SPL_COMMIT}"');
  expect(JSON.parse(instruction("VOLUME"))).toEqual(["/syncropel", "/home/syncropel/.local/share/syncropel/backups"]);
  expect(instruction("STOPSIGNAL")).toBe("SIGTERM");

  // Docker's stop timeout must outlast the daemon's shutdown grace (requests, then flush and
  // checkpoint): the README's `docker run` and the compose file both set one.
  const grace = Number(/SHUTDOWN_GRACE_MS = ([\d_]+)/.exec(readFileSync(join(REPO, "lib/daemon/serve.ts"), "utf8"))![1]!.replace(/_/g, ""));
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const stopTimeout = Number(/docker run [^`]*--stop-timeout (\d+)/.exec(readme)?.[1]);
  expect(stopTimeout * 1000).toBeGreaterThanOrEqual(2 * grace);
  const compose = Bun.YAML.parse(readFileSync(join(REPO, "docker-compose.yml"), "utf8")) as any;
  for (const svc of Object.values(compose.services) as any[]) expect(parseInt(svc.stop_grace_period) * 1000).toBeGreaterThanOrEqual(2 * grace);
  // The start period covers a long start (integrity check, startup backup, fold rebuild).
  expect(Number(/--start-period=(\d+)s/.exec(instruction("HEALTHCHECK"))![1])).toBeGreaterThanOrEqual(120);
});

test("SPL_BOOTSTRAP_TOKEN_FILE: the token from a mounted secret; a bad setting is one line", async () => {
  const inst = new Instance();
  const port = String(inst.port);
  const token = "secret-" + "q7".repeat(20);
  const secret = join(inst.root, "bootstrap_token");
  writeFileSync(secret, token + "\n"); // secrets files usually end in a newline
  const env = { ...inst.env, SYNCROPEL_HOME: join(inst.root, "syncropel"), SPL_BOOTSTRAP_TOKEN_FILE: secret };
  const serve = [SPL, "serve", "--port", port, "--host", "0.0.0.0"];

  for (const [extra, pattern] of [
    [{ SPL_BOOTSTRAP_TOKEN_FILE: join(inst.root, "missing") }, /^error: SPL_BOOTSTRAP_TOKEN_FILE \S+missing cannot be read \(ENOENT\) — point it at a readable file/m],
    [{ SPL_BOOTSTRAP_TOKEN: token }, /^error: both SPL_BOOTSTRAP_TOKEN and SPL_BOOTSTRAP_TOKEN_FILE are set — unset one of them/m],
  ] as const) {
    const r = Bun.spawnSync(serve, { env: { ...env, ...extra } });
    expect(r.exitCode).toBe(1);
    const stderr = r.stderr.toString();
    expect(stderr.split("\n").filter((l) => l.startsWith("error:"))).toHaveLength(1);
    expect(stderr).toMatch(pattern);
    expect(stderr).not.toContain("    at ");
  }

  const proc = Bun.spawn(serve, { env, stdout: "ignore", stderr: "ignore" });
  track(proc.pid);
  await waitFor(`GET /health to answer on :${port}`, () => Bun.spawnSync(["curl", "-fs", `http://127.0.0.1:${port}/health`]).exitCode === 0, { stepMs: 100 });
  const authed = await fetch(`http://127.0.0.1:${port}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  expect(authed.status).toBe(200);
  proc.kill("SIGTERM");
  expect(await proc.exited).toBe(0);
});

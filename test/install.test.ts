// End-to-end tests for install.sh against a real HTTP server on loopback serving a real release
// tree (two versions built by .ci/release.ts). Every install runs in its own temp HOME and
// INSTALL_DIR; the only processes started are the shells/binaries below, each awaited or killed by pid.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, normalize, resolve } from "node:path";
import { waitFor } from "./harness";

setDefaultTimeout(120_000); // each install moves a ~100 MB binary; builds take a few seconds

const REPO = resolve(import.meta.dir, "..");
const INSTALL_SH = join(REPO, "install.sh");
const SH = Bun.which("dash") ?? "sh"; // dash catches bash-isms that a bash-backed sh would forgive
const OLD = "0.1.0";
const NEW = "0.1.1";
const BUILDS = ["spl-linux-x64", "spl-linux-x64-baseline"];
// What install.sh picks on this machine: the baseline build when the CPU has no AVX2.
const AVX2 = !existsSync("/proc/cpuinfo") || /\bavx2\b/.test(readFileSync("/proc/cpuinfo", "utf8"));
const ARTIFACT = AVX2 ? BUILDS[0]! : BUILDS[1]!;

let root: string; // everything this file creates
let tree: string; // the release tree the host serves
let host: Host;
let cutoff: CutoffServer;
let sandboxes: string[] = [];

// --- test host -----------------------------------------------------------------------------------

type Host = {
  url: string;
  faults: Map<string, (req: Request) => Response>;
  stop: () => void;
};

// Static file server for `dir`, plus:
//  - `/install.sh?v=X` serves install.sh with the pin line filled in (what a real host would do);
//  - `faults` overrides any path with a custom response (404s, bad bytes, redirects).
function startHost(dir: string): Host {
  const faults = new Map<string, (req: Request) => Response>();
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    fetch(req) {
      const url = new URL(req.url);
      const fault = faults.get(url.pathname);
      if (fault) return fault(req);
      if (url.pathname === "/install.sh") {
        const script = readFileSync(join(dir, "install.sh"), "utf8");
        const v = url.searchParams.get("v");
        if (v === null) return new Response(script);
        // Only plain version characters go into the script: the value lands inside sh quotes.
        if (!/^[0-9A-Za-z.+-]+$/.test(v)) return new Response("bad version\n", { status: 400 });
        return new Response(script.replace(/^SPL_PINNED_VERSION=""$/m, `SPL_PINNED_VERSION="${v}"`));
      }
      const path = join(dir, normalize(decodeURIComponent(url.pathname)));
      if (!path.startsWith(dir + "/") || !existsSync(path) || !statSync(path).isFile()) {
        return new Response("not found\n", { status: 404 });
      }
      return new Response(Bun.file(path));
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, faults, stop: () => server.stop(true) };
}

// Bun.serve always frames bodies correctly, so it cannot lie about Content-Length. This raw
// TCP server answers every request with the full Content-Length of `bytes` but sends only the
// first half, then closes. The host redirects to it to simulate a download cut off part-way.
type CutoffServer = { url: string; bytes: Uint8Array | null; stop: () => void };
async function startCutoff(): Promise<CutoffServer> {
  const state: CutoffServer = { url: "", bytes: null, stop: () => {} };
  const server = net.createServer((sock) => {
    sock.once("data", () => {
      const bytes = state.bytes ?? new Uint8Array(0);
      sock.write(`HTTP/1.1 200 OK\r\nContent-Length: ${bytes.length}\r\nConnection: close\r\n\r\n`);
      sock.end(bytes.subarray(0, bytes.length >> 1));
    });
    sock.on("error", () => {});
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  state.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/cut`;
  state.stop = () => server.close();
  return state;
}

// A port nothing listens on: bind one, then close it.
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((ok) => s.listen(0, "127.0.0.1", ok));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((ok) => s.close(() => ok()));
  return port;
}

// --- helpers -------------------------------------------------------------------------------------

type Sandbox = { dir: string; home: string; bin: string };

function sandbox(): Sandbox {
  const dir = mkdtempSync(join(root, "sb-"));
  const home = join(dir, "home");
  mkdirSync(home);
  sandboxes.push(dir);
  return { dir, home, bin: join(dir, "bin") };
}

type Run = { code: number; stdout: string; stderr: string };

async function run(cmd: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  const proc = Bun.spawn(cmd, { env, cwd, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

function baseEnv(sb: Sandbox, extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: sb.home,
    SYNCROPEL_HOME: join(sb.home, ".syncro"),
    INSTALL_DIR: sb.bin,
    SPL_RELEASES_URL: host.url,
    ...extra,
  };
}

// Run the repo's install.sh directly.
function install(sb: Sandbox, args: string[] = [], extra: Record<string, string> = {}, prefix: string[] = [], script = INSTALL_SH) {
  return run([...prefix, SH, script, ...args], baseEnv(sb, extra), sb.dir);
}

// Run it the way users do: curl -sSf <url> | sh
function installPiped(sb: Sandbox, scriptUrl: string, extra: Record<string, string> = {}) {
  return run([SH, "-c", `curl -sSf "$SCRIPT_URL" | ${SH}`], baseEnv(sb, { SCRIPT_URL: scriptUrl, ...extra }), sb.dir);
}

async function splVersion(sb: Sandbox): Promise<string> {
  const r = await run([join(sb.bin, "spl"), "version"], baseEnv(sb), sb.dir);
  expect(r.code).toBe(0);
  return r.stdout.trim();
}

function sha256(path: string): string {
  return new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");
}

function releaseBinary(version: string): string {
  return join(tree, version, ARTIFACT);
}

// Put a known old binary in place without going through install.sh.
function seedOld(sb: Sandbox): string {
  mkdirSync(sb.bin, { recursive: true });
  copyFileSync(releaseBinary(OLD), join(sb.bin, "spl"));
  chmodSync(join(sb.bin, "spl"), 0o755);
  return sha256(join(sb.bin, "spl"));
}

async function expectOldIntact(sb: Sandbox, oldSha: string) {
  expect(sha256(join(sb.bin, "spl"))).toBe(oldSha);
  expect(await splVersion(sb)).toBe(`spl ${OLD}`);
  expect(readdirSync(sb.bin)).toEqual(["spl"]); // no temp file left behind
}

// A failed run: non-zero, and exactly one line from the installer saying what went wrong.
function expectFailure(r: Run, pattern: RegExp) {
  expect(r.code).not.toBe(0);
  const errors = r.stderr.split("\n").filter((l) => l.startsWith("spl install: error:"));
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(pattern);
}

// Serve `handler` as NEW's plain binary, with no .gz beside it (as in a tree from before
// compressed downloads), so the installer fetches the plain one.
function faultBinary(handler: (req: Request) => Response) {
  host.faults.set(`/${NEW}/${ARTIFACT}`, handler);
  host.faults.set(`/${NEW}/${ARTIFACT}.gz`, () => new Response("not found\n", { status: 404 }));
}

function serveBytes(bytes: Uint8Array | string) {
  return () => new Response(bytes);
}

function shaLine(bytes: Uint8Array | string) {
  return `${new Bun.CryptoHasher("sha256").update(bytes).digest("hex")}  ${ARTIFACT}\n`;
}

// --- setup ---------------------------------------------------------------------------------------

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "spl-install-test-"));
  chmodSync(root, 0o755); // the unwritable-dir case may run the installer as an unprivileged user
  tree = join(root, "release");
  mkdirSync(tree);
  // The host first: its URL is baked into the served install.sh (--base-url).
  host = startHost(tree);
  for (const v of [OLD, NEW]) {
    // The README's command: bun run release --base-url https://<your-host> [--out DIR] [--version X.Y.Z]
    const r = Bun.spawnSync([process.execPath, "run", "release", "--base-url", host.url, "--out", tree, "--version", v], {
      cwd: REPO,
      stdout: "pipe",
      stderr: "pipe",
    });
    if (r.exitCode !== 0) throw new Error(`release ${v} failed:\n${r.stdout}\n${r.stderr}`);
  }
  cutoff = await startCutoff();
});

afterEach(() => {
  host.faults.clear();
  for (const dir of sandboxes) {
    chmodSync(dir, 0o755);
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) chmodSync(p, 0o755); // undo the read-only cases
    }
    rmSync(dir, { recursive: true, force: true });
  }
  sandboxes = [];
});

afterAll(() => {
  host?.stop();
  cutoff?.stop();
  if (root) rmSync(root, { recursive: true, force: true });
});

// --- release tree --------------------------------------------------------------------------------

describe("release tree", () => {
  test("has both versions, both builds, sha256sum-format checksums, latest, and install.sh", async () => {
    for (const v of [OLD, NEW]) {
      for (const name of BUILDS) {
        const check = Bun.spawnSync(["sha256sum", "-c", `${name}.sha256`], { cwd: join(tree, v) });
        expect(check.exitCode).toBe(0);
        expect(readFileSync(join(tree, v, `${name}.sha256`), "utf8")).toMatch(new RegExp(`^[0-9a-f]{64}  ${name}\n$`));
      }
    }
    const latest = JSON.parse(readFileSync(join(tree, "latest", "version.json"), "utf8"));
    expect(latest.version).toBe(NEW);
    for (const name of BUILDS) expect(latest.artifacts[name].sha256).toBe(sha256(join(tree, NEW, name)));
    // --base-url changed exactly one line of the repo's install.sh.
    const repoLines = readFileSync(INSTALL_SH, "utf8").split("\n");
    const served = readFileSync(join(tree, "install.sh"), "utf8").split("\n");
    const changed = served.filter((l, i) => l !== repoLines[i]);
    expect(changed).toEqual([`DEFAULT_RELEASES_URL="${host.url}"`]);
    // Served over HTTP as-is.
    const res = await fetch(`${host.url}/latest/version.json`);
    expect(((await res.json()) as { version: string }).version).toBe(NEW);
  });

  test("--base-url refuses what cannot sit inside the script's quotes, in one line", () => {
    for (const bad of ['https://x.example/"; rm -rf ~; "', "ftp://x.example", "x.example"]) {
      const r = Bun.spawnSync([process.execPath, join(REPO, ".ci/release.ts"), "--out", join(root, "never"), "--base-url", bad], { cwd: REPO });
      expect(r.exitCode).toBe(1);
      expect(r.stderr.toString()).toMatch(/^release: invalid --base-url .*e\.g\. --base-url https:\/\/\S+\n$/);
      expect(existsSync(join(root, "never"))).toBe(false);
    }
  });

  test("install.sh is POSIX sh", () => {
    expect(Bun.spawnSync(["sh", "-n", INSTALL_SH]).exitCode).toBe(0);
    expect(Bun.spawnSync([SH, "-n", INSTALL_SH]).exitCode).toBe(0);
  });
});

// --- happy paths ---------------------------------------------------------------------------------

describe("install", () => {
  test("README: `curl -sSf <host>/install.sh | sh` into the default ~/.local/bin, nothing else set", async () => {
    const sb = sandbox();
    const env = baseEnv(sb);
    delete env.INSTALL_DIR;
    delete env.SPL_RELEASES_URL; // the host is baked in by `bun run release --base-url`
    const r = await run([SH, "-c", `curl -sSf "${host.url}/install.sh" | ${SH}`], env, sb.dir);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const bin = join(sb.home, ".local", "bin", "spl");
    expect(r.stdout).toContain(`installed spl ${NEW} to ${bin}`);
    expect(r.stdout).toContain("is not on your PATH");
    expect(statSync(bin).mode & 0o777).toBe(0o755);
    expect(sha256(bin)).toBe(sha256(releaseBinary(NEW)));
    expect(readdirSync(join(sb.home, ".local", "bin"))).toEqual(["spl"]);
    expect(Bun.spawnSync([bin, "version"]).stdout.toString().trim()).toBe(`spl ${NEW}`);
  });

  test("upgrade 0.1.0 -> 0.1.1, then roll back with SPL_VERSION and with --version", async () => {
    const sb = sandbox();
    const onPath = { PATH: `${sb.bin}:${process.env.PATH}` };

    let r = await install(sb, [], { SPL_VERSION: OLD, ...onPath });
    expect(r.code).toBe(0);
    expect(await splVersion(sb)).toBe(`spl ${OLD}`);
    expect(r.stdout).not.toContain("is not on your PATH");

    r = await install(sb, [], onPath); // latest
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`installed spl ${NEW} to ${join(sb.bin, "spl")} (was: spl ${OLD})`);
    expect(await splVersion(sb)).toBe(`spl ${NEW}`);

    r = await install(sb, [], { SPL_VERSION: OLD, ...onPath });
    expect(r.code).toBe(0);
    expect(await splVersion(sb)).toBe(`spl ${OLD}`);
    expect(sha256(join(sb.bin, "spl"))).toBe(sha256(releaseBinary(OLD)));

    r = await install(sb, ["--version", NEW], onPath);
    expect(r.code).toBe(0);
    expect(await splVersion(sb)).toBe(`spl ${NEW}`);

    // The argument beats the environment.
    r = await install(sb, ["--version", OLD], { SPL_VERSION: NEW, ...onPath });
    expect(r.code).toBe(0);
    expect(await splVersion(sb)).toBe(`spl ${OLD}`);
    expect(readdirSync(sb.bin)).toEqual(["spl"]);
  });

  test("README: every command of the Install block, against the host, in order", async () => {
    const readme = readFileSync(join(REPO, "README.md"), "utf8");
    const block = readme.slice(readme.indexOf("## Install and upgrade")).match(/```sh\n([\s\S]*?)```/)![1]!;
    const commands = block.trim().split("\n").map((l) => l.replace(/\s+# .*$/, "").replace(/https:\/\/<your-host>/g, host.url));
    expect(commands.length).toBe(6);
    const sb = sandbox();
    const env = baseEnv(sb, { PATH: `${sb.bin}:${process.env.PATH}` });
    delete env.SPL_RELEASES_URL; // as on a real machine: the host is baked into install.sh
    // What each line leaves behind: the installed version, or no binary at all.
    const after = [NEW, OLD, OLD, OLD, null, null];
    for (const [i, cmd] of commands.entries()) {
      const r = await run([SH, "-c", cmd], env, sb.dir);
      expect({ cmd, code: r.code, stderr: r.stderr }).toEqual({ cmd, code: 0, stderr: "" });
      if (after[i]) expect(await splVersion(sb)).toBe(`spl ${after[i]}`);
      else expect(existsSync(join(sb.bin, "spl"))).toBe(false);
      if (cmd.includes("--help")) expect(r.stdout).toContain("--uninstall");
    }
  });

  test("a host-baked ?v= pin: curl -sSf \"<host>/install.sh?v=X\" | sh", async () => {
    const sb = sandbox();
    let r = await installPiped(sb, `${host.url}/install.sh`); // latest
    expect(r.code).toBe(0);
    expect(await splVersion(sb)).toBe(`spl ${NEW}`);

    const served = await (await fetch(`${host.url}/install.sh?v=${OLD}`)).text();
    expect(served).toContain(`\nSPL_PINNED_VERSION="${OLD}"\n`);

    // The pin in the URL beats a stray SPL_VERSION in the environment.
    r = await installPiped(sb, `${host.url}/install.sh?v=${OLD}`, { SPL_VERSION: NEW });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`installed spl ${OLD}`);
    expect(await splVersion(sb)).toBe(`spl ${OLD}`);

    // The host refuses anything that is not a plain version; curl -f turns that into a failure.
    expect((await fetch(`${host.url}/install.sh?v=${encodeURIComponent('1"; rm -rf /')}`)).status).toBe(400);
  });
});

// --- installer options and platforms --------------------------------------------------------------

// A directory of stand-ins for system tools (uname, ldd), put first on PATH: the installer asks
// them what machine it is on.
function shims(sb: Sandbox, tools: Record<string, string>): Record<string, string> {
  const dir = join(sb.dir, "shims");
  mkdirSync(dir, { recursive: true });
  for (const [name, body] of Object.entries(tools)) {
    writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  }
  return { PATH: `${dir}:${process.env.PATH}` };
}

// `spl serve` from the installed binary, in the sandbox's own home and a free port.
async function startDaemon(sb: Sandbox): Promise<Bun.Subprocess> {
  const port = await closedPort();
  const proc = Bun.spawn([join(sb.bin, "spl"), "serve", "--port", String(port)], { env: baseEnv(sb), stdout: "ignore", stderr: "ignore" });
  await waitFor(`the installed daemon's GET /health on :${port}`, () => Bun.spawnSync(["curl", "-fs", `http://127.0.0.1:${port}/health`]).exitCode === 0, { stepMs: 100 });
  return proc;
}

async function stopDaemon(proc: Bun.Subprocess) {
  proc.kill("SIGTERM");
  await proc.exited;
}

describe("installer", () => {
  test("--help works under curl | sh and installs nothing", async () => {
    const sb = sandbox();
    const r = await run([SH, "-c", `curl -sSf "${host.url}/install.sh" | ${SH} -s -- --help`], baseEnv(sb), sb.dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("--uninstall");
    expect(r.stdout).toContain(`SPL_RELEASES_URL  base URL of the release tree (default: ${host.url})`);
    expect(existsSync(sb.bin)).toBe(false);
  });

  const platforms: [string, Record<string, string>, RegExp][] = [
    ["macOS", { uname: 'case "$1" in -s) echo Darwin ;; *) echo x86_64 ;; esac' }, /no prebuilt spl for Darwin .*build from source/],
    ["arm64 Linux", { uname: 'case "$1" in -s) echo Linux ;; *) echo aarch64 ;; esac' }, /no arm64 build of spl is published yet/],
    ["riscv64 Linux", { uname: 'case "$1" in -s) echo Linux ;; *) echo riscv64 ;; esac' }, /no prebuilt spl for riscv64/],
    ["musl libc (Alpine)", { ldd: 'echo "musl libc (x86_64)" >&2; exit 1' }, /musl libc .*needs glibc/],
  ];
  for (const [name, tools, pattern] of platforms) {
    test(`refuses ${name} by name, before downloading anything`, async () => {
      const sb = sandbox();
      const oldSha = seedOld(sb);
      let requests = 0;
      for (const path of [`/${NEW}/${ARTIFACT}`, `/${NEW}/${ARTIFACT}.gz`]) host.faults.set(path, () => (requests++, new Response("x")));
      const r = await install(sb, [], { SPL_VERSION: NEW, ...shims(sb, tools) });
      expectFailure(r, pattern);
      expect(requests).toBe(0);
      await expectOldIntact(sb, oldSha);
    });
  }

  test("SPL_BASELINE=1 installs the -baseline build (chosen by itself on CPUs without AVX2)", async () => {
    const sb = sandbox();
    const r = await install(sb, [], { SPL_BASELINE: "1" });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`/${NEW}/spl-linux-x64-baseline`);
    expect(sha256(join(sb.bin, "spl"))).toBe(sha256(join(tree, NEW, "spl-linux-x64-baseline")));
    expect(await splVersion(sb)).toBe(`spl ${NEW}`);
  });

  test("transient server errors are retried (503 twice, then the binary)", async () => {
    const sb = sandbox();
    let requests = 0;
    host.faults.set(`/${NEW}/${ARTIFACT}.gz`, () =>
      ++requests <= 2 ? new Response("busy", { status: 503 }) : new Response(Bun.file(`${releaseBinary(NEW)}.gz`)),
    );
    const r = await install(sb);
    expect(r.code).toBe(0);
    expect(requests).toBe(3);
    expect(sha256(join(sb.bin, "spl"))).toBe(sha256(releaseBinary(NEW)));
  });

  test("compressed downloads: the .gz when the tree has one, else the plain binary; checksum over the result", async () => {
    const sb = sandbox();
    const hits: string[] = [];
    for (const path of [`/${NEW}/${ARTIFACT}`, `/${NEW}/${ARTIFACT}.gz`]) {
      host.faults.set(path, () => (hits.push(path), new Response(Bun.file(join(tree, path)))));
    }
    let r = await install(sb);
    expect(r.code).toBe(0);
    expect(hits).toEqual([`/${NEW}/${ARTIFACT}.gz`]);
    expect(statSync(`${releaseBinary(NEW)}.gz`).size).toBeLessThan(statSync(releaseBinary(NEW)).size);
    expect(sha256(join(sb.bin, "spl"))).toBe(sha256(releaseBinary(NEW)));
    expect(readdirSync(sb.bin)).toEqual(["spl"]);

    hits.length = 0;
    faultBinary(() => (hits.push("plain"), new Response(Bun.file(releaseBinary(NEW)))));
    r = await install(sb, [], { SPL_VERSION: NEW });
    expect(r.code).toBe(0);
    expect(hits).toEqual(["plain"]);
    expect(sha256(join(sb.bin, "spl"))).toBe(sha256(releaseBinary(NEW)));
  });

  test("a .gz that is corrupt, or holds another binary, fails and leaves the old one", async () => {
    const sb = sandbox();
    const oldSha = seedOld(sb);
    const gz = readFileSync(`${releaseBinary(NEW)}.gz`);
    gz[gz.length >> 1]! ^= 0xff;
    host.faults.set(`/${NEW}/${ARTIFACT}.gz`, serveBytes(gz));
    expectFailure(await install(sb), /cannot decompress .*\.gz; the download is corrupt/);
    await expectOldIntact(sb, oldSha);

    host.faults.set(`/${NEW}/${ARTIFACT}.gz`, () => new Response(Bun.file(`${releaseBinary(OLD)}.gz`)));
    expectFailure(await install(sb), /checksum mismatch/);
    await expectOldIntact(sb, oldSha);
  });

  test("a progress bar on a terminal, none when piped", async () => {
    const sb = sandbox();
    const script = Bun.which("script");
    if (!script) {
      console.warn("skipped: no `script` (util-linux) to give the installer a terminal");
      return;
    }
    const r = await run([script, "-qec", `${SH} ${INSTALL_SH}`, "/dev/null"], baseEnv(sb), sb.dir);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/#+\s*100[.,]0%/);
    expect(await splVersion(sb)).toBe(`spl ${NEW}`);
    // Piped: the "fresh install" test above expects an empty stderr.
  });

  test("restart hint only while a daemon runs; --uninstall refused until it stops, data kept", async () => {
    const sb = sandbox();
    let r = await install(sb, [], { SPL_VERSION: OLD });
    expect(r.stdout).toContain("next: spl init");
    r = await install(sb);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain("restart");
    expect(r.stdout).not.toContain("next: spl init");

    const daemon = await startDaemon(sb);
    try {
      r = await install(sb, ["--uninstall"]);
      expectFailure(r, new RegExp(`an spl daemon is running from .* \\(pid ${daemon.pid}\\); stop it first with 'spl serve --stop'`));
      expect(await splVersion(sb)).toBe(`spl ${NEW}`);

      r = await install(sb, [], { SPL_VERSION: OLD });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`a daemon still runs the previous binary (pid ${daemon.pid}); restart it`);
    } finally {
      await stopDaemon(daemon);
    }

    r = await install(sb, ["--uninstall"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`removed ${join(sb.bin, "spl")} (spl ${OLD})`);
    expect(r.stdout).toContain("your data is untouched");
    expect(readdirSync(sb.bin)).toEqual([]);
    expect(existsSync(join(sb.home, ".syncro", "hub.db"))).toBe(true);

    r = await install(sb, ["--uninstall"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("nothing to uninstall");
  });
});

// --- failures: non-zero, one clear line, old binary byte-identical and working --------------------

describe("failures leave the old binary intact", () => {
  test("server unreachable", async () => {
    const sb = sandbox();
    const oldSha = seedOld(sb);
    const r = await install(sb, [], { SPL_RELEASES_URL: `http://127.0.0.1:${await closedPort()}` });
    expectFailure(r, /cannot fetch .*latest\/version\.json \(cannot connect to the server\)/);
    await expectOldIntact(sb, oldSha);
  });

  test("404 for the pinned version", async () => {
    const sb = sandbox();
    const oldSha = seedOld(sb);
    const r = await install(sb, [], { SPL_VERSION: "9.9.9" });
    expectFailure(r, /cannot download spl 9\.9\.9 .*HTTP 404.*check the version exists/);
    await expectOldIntact(sb, oldSha);
  });

  test("download cut off part-way (Content-Length longer than the body)", async () => {
    const sb = sandbox();
    const oldSha = seedOld(sb);
    cutoff.bytes = readFileSync(releaseBinary(NEW));
    faultBinary(() => Response.redirect(cutoff.url, 302));
    const r = await install(sb);
    expectFailure(r, /cannot download spl 0\.1\.1 .*cut off part-way/);
    await expectOldIntact(sb, oldSha);
  });

  test("checksum mismatch (one flipped byte)", async () => {
    const sb = sandbox();
    const oldSha = seedOld(sb);
    const corrupt = readFileSync(releaseBinary(NEW));
    const mid = corrupt.length >> 1;
    corrupt[mid] = corrupt[mid]! ^ 0xff;
    faultBinary(serveBytes(corrupt));
    const r = await install(sb);
    expectFailure(r, /checksum mismatch/);
    await expectOldIntact(sb, oldSha);
  });

  test("checksum file missing", async () => {
    const sb = sandbox();
    const oldSha = seedOld(sb);
    host.faults.set(`/${NEW}/${ARTIFACT}.sha256`, () => new Response("gone", { status: 404 }));
    const r = await install(sb);
    expectFailure(r, /cannot download the checksum .*HTTP 404/);
    await expectOldIntact(sb, oldSha);
  });

  test("latest/version.json without a version", async () => {
    const sb = sandbox();
    const oldSha = seedOld(sb);
    host.faults.set("/latest/version.json", serveBytes("<html>maintenance</html>"));
    const r = await install(sb);
    expectFailure(r, /has no "version" field/);
    await expectOldIntact(sb, oldSha);
  });

  // Each served with a matching checksum, so only the content checks can catch them.
  const impostors: [string, () => Uint8Array | string, RegExp][] = [
    ["a shell script", () => `#!/bin/sh\necho "spl ${NEW}"\n`, /is not a Linux executable/],
    ["random bytes", () => pseudoRandomBytes(64 * 1024), /is not a Linux executable/],
    ["some other executable", () => readFileSync(Bun.which("true")!), /did not report 'spl 0\.1\.1'/],
    ["spl 0.1.0 published as 0.1.1", () => readFileSync(releaseBinary(OLD)), /did not report 'spl 0\.1\.1' .*got 'spl 0\.1\.0'/],
  ];
  for (const [name, bytes, pattern] of impostors) {
    test(`not an spl ${NEW} binary: ${name}`, async () => {
      const sb = sandbox();
      const oldSha = seedOld(sb);
      const body = bytes();
      faultBinary(serveBytes(body));
      host.faults.set(`/${NEW}/${ARTIFACT}.sha256`, serveBytes(shaLine(body)));
      const r = await install(sb);
      expectFailure(r, pattern);
      await expectOldIntact(sb, oldSha);
    });
  }

  test("install dir not writable (chmod 0555)", async () => {
    const sb = sandbox();
    const oldSha = seedOld(sb);
    chmodSync(sb.bin, 0o555);
    // Root ignores directory modes. Then run the installer as nobody, if we can drop privileges.
    let prefix: string[] = [];
    if (canWrite(sb.bin)) {
      const setpriv = Bun.which("setpriv");
      const drop = setpriv ? [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
      if (!setpriv || Bun.spawnSync([...drop, "true"]).exitCode !== 0) {
        console.warn("skipped: running privileged and cannot drop privileges; see the regular-file case");
        return;
      }
      chmodSync(sb.dir, 0o755);
      prefix = drop;
    }
    // The unprivileged user may not be able to read the checkout (a clone under a 0700 dir):
    // it runs a world-readable copy of the script from the sandbox instead.
    const script = join(sb.dir, "install.sh");
    copyFileSync(INSTALL_SH, script);
    chmodSync(script, 0o644);
    const r = await install(sb, [], {}, prefix, script);
    expectFailure(r, /install dir .* is not writable/);
    chmodSync(sb.bin, 0o755);
    await expectOldIntact(sb, oldSha);
  });

  test("a truncated install script runs nothing", async () => {
    const sb = sandbox();
    const oldSha = seedOld(sb);
    const script = readFileSync(INSTALL_SH, "utf8");
    host.faults.set("/install.sh", serveBytes(script.slice(0, Math.floor(script.length * 0.8))));
    const r = await installPiped(sb, `${host.url}/install.sh`, { SPL_VERSION: NEW });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe(""); // not even the "downloading" line: main never ran
    await expectOldIntact(sb, oldSha);
  });

  test("install dir cannot be created (a path component is a regular file)", async () => {
    const sb = sandbox();
    const file = join(sb.dir, "not-a-dir");
    writeFileSync(file, "keep me\n");
    const r = await install(sb, [], { INSTALL_DIR: join(file, "bin") });
    expectFailure(r, /cannot create install dir/);
    expect(readFileSync(file, "utf8")).toBe("keep me\n");
  });
});

// --- concurrency -----------------------------------------------------------------------------------

describe("atomic swap", () => {
  test("a concurrent `spl version` loop never sees a partial or failed binary", async () => {
    const sb = sandbox();
    expect((await install(sb, [], { SPL_VERSION: OLD })).code).toBe(0);

    const log = join(sb.dir, "loop.log");
    const stop = join(sb.dir, "stop");
    const loop = Bun.spawn(
      [SH, "-c", 'while [ ! -e "$STOP" ]; do out=$("$BIN" version 2>&1); echo "$?|$out" >>"$LOG"; done'],
      { env: { ...baseEnv(sb), BIN: join(sb.bin, "spl"), STOP: stop, LOG: log }, stdout: "ignore", stderr: "ignore" },
    );
    try {
      const swaps = [NEW, OLD, NEW, OLD, NEW, OLD];
      for (const v of swaps) {
        const r = await install(sb, [], { SPL_VERSION: v });
        expect(r.code).toBe(0);
        // Wait until the loop has run the freshly swapped binary, so every version is exercised.
        await waitFor(`the version loop to run the swapped-in spl ${v} (its last line)`, () => lastLine(log), { stepMs: 10, until: (l) => l === `0|spl ${v}` });
      }
    } finally {
      writeFileSync(stop, "");
      const done = await Promise.race([loop.exited, Bun.sleep(10_000).then(() => null)]);
      if (done === null) process.kill(loop.pid, "SIGKILL");
    }

    const lines = readFileSync(log, "utf8").trim().split("\n");
    const bad = lines.filter((l) => l !== `0|spl ${OLD}` && l !== `0|spl ${NEW}`);
    expect(bad).toEqual([]);
    expect(lines.length).toBeGreaterThan(6);
    expect(readdirSync(sb.bin).sort()).toEqual(["spl"]);
  });
});

// --- small utilities --------------------------------------------------------------------------------

function canWrite(dir: string): boolean {
  const probe = join(dir, ".probe");
  try {
    writeFileSync(probe, "");
    rmSync(probe);
    return true;
  } catch {
    return false;
  }
}

// Deterministic, so a failure reproduces.
function pseudoRandomBytes(n: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = 0x2545f491;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function lastLine(path: string): string {
  if (!existsSync(path)) return "";
  const lines = readFileSync(path, "utf8").trimEnd().split("\n");
  return lines[lines.length - 1] ?? "";
}

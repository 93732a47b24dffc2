// bun run release [--out DIR] [--version X.Y.Z] [--base-url URL]
// Writes a static release tree that any static web server can host:
//   <out>/<version>/spl-linux-x64[-baseline]          the compiled binaries (built by .ci/build.ts;
//                                                     -baseline runs on x86-64 CPUs without AVX2)
//   <out>/<version>/spl-linux-x64[-baseline].sha256   "<hex>  <name>" (sha256sum -c format)
//   <out>/<version>/spl-linux-x64[-baseline].gz       the same binary gzip'd (about half the size);
//                                                     install.sh prefers it, the checksum is the
//                                                     binary's
//   <out>/<version>/release.json           version, commit, build time, sha256 and size per binary
//   <out>/latest/version.json              release.json of the highest version in the tree
//   <out>/install.sh                       the repo's install.sh; with --base-url, its default
//                                          release URL is URL, so `curl -sSf URL/install.sh | sh`
//                                          installs from this tree with nothing else set
// Versions already in <out> are kept, so old pins keep working. Every file is written under a
// temporary name and renamed, and latest/version.json goes last: a server hosting the tree while
// this runs never points `latest` at a half-written release.
import { parseArgs } from "node:util";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pkg from "../package.json";

const ARTIFACT = "spl-linux-x64"; // what install.sh fetches on x86-64 Linux with AVX2
// name → Bun compile target. arm64 is not published yet (install.sh refuses it by name).
const BUILDS: Record<string, string> = { [ARTIFACT]: "bun-linux-x64", [`${ARTIFACT}-baseline`]: "bun-linux-x64-baseline" };
// Semver only, so `latest` can be picked by Bun.semver.order; these characters are also all that
// install.sh accepts in a version.
const VERSION_RE = /^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$/;

const repoRoot = resolve(import.meta.dir, "..");
const { values } = parseArgs({
  options: { out: { type: "string" }, version: { type: "string" }, "base-url": { type: "string" } },
});
const version = values.version ?? pkg.version;
const out = resolve(values.out ?? join(repoRoot, "dist/release"));

if (!VERSION_RE.test(version)) {
  console.error(`release: invalid version '${version}' (expected semver like 0.1.0)`);
  process.exit(1);
}
// The URL lands inside double quotes in a shell script: plain URL characters only.
const baseUrl = values["base-url"]?.replace(/\/+$/, "");
if (baseUrl !== undefined && !/^https?:\/\/[A-Za-z0-9.:\[\]_~%\/-]+$/.test(baseUrl)) {
  console.error(`release: invalid --base-url '${values["base-url"]}' (expected http(s)://host[:port][/path], e.g. --base-url https://dl.example.com/spl)`);
  process.exit(1);
}

const versionDir = join(out, version);
mkdirSync(versionDir, { recursive: true });
mkdirSync(join(out, "latest"), { recursive: true });

// Write a file next to its final name, then rename it into place.
function writeAtomic(path: string, data: string | Uint8Array) {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

// 1. Build each binary straight into the version dir under a temp name, with its checksum.
const artifacts: Record<string, { sha256: string; size: number }> = {};
let facts: { commit: string; build_time: string } | null = null;
const built: [string, string][] = [];
for (const [name, target] of Object.entries(BUILDS)) {
  const binPath = join(versionDir, name);
  const binTmp = `${binPath}.tmp-${process.pid}`;
  const build = Bun.spawnSync(
    [process.execPath, join(repoRoot, ".ci/build.ts"), "--version", version, "--outfile", binTmp, "--target", target],
    { cwd: repoRoot, stdout: "inherit", stderr: "inherit" },
  );
  if (build.exitCode !== 0 || !existsSync(binTmp)) {
    for (const [, tmp] of built) rmSync(tmp, { force: true }), rmSync(`${tmp}.gz`, { force: true });
    rmSync(binTmp, { force: true });
    console.error(`release: build of ${name} failed (exit ${build.exitCode})`);
    process.exit(1);
  }
  built.push([binPath, binTmp]);
  const bytes = await Bun.file(binTmp).bytes();
  writeFileSync(`${binTmp}.gz`, Bun.gzipSync(bytes, { level: 6 }));
  artifacts[name] = { sha256: new Bun.CryptoHasher("sha256").update(bytes).digest("hex"), size: bytes.length };
  // The facts come from what the binary reports about itself; one that cannot is not released.
  facts ??= selfReport(binTmp);
  if (!facts) {
    for (const [, tmp] of built) rmSync(tmp, { force: true }), rmSync(`${tmp}.gz`, { force: true });
    console.error(`release: ${name} does not answer 'version -o json' with version ${version}`);
    process.exit(1);
  }
}

// 2. Binaries, checksums, metadata.
for (const [binPath, binTmp] of built) renameSync(binTmp, binPath), renameSync(`${binTmp}.gz`, `${binPath}.gz`);
for (const [name, a] of Object.entries(artifacts)) writeAtomic(join(versionDir, `${name}.sha256`), `${a.sha256}  ${name}\n`);
const release = { version, commit: facts!.commit, build_time: facts!.build_time, artifacts };
writeAtomic(join(versionDir, "release.json"), JSON.stringify(release, null, 2) + "\n");

// 3. install.sh, then latest/version.json last.
let script = readFileSync(join(repoRoot, "install.sh"), "utf8");
if (baseUrl !== undefined) {
  const line = /^DEFAULT_RELEASES_URL="[^"]*"$/m;
  if (!line.test(script)) throw new Error("install.sh has no DEFAULT_RELEASES_URL line to bake the base URL into");
  script = script.replace(line, `DEFAULT_RELEASES_URL="${baseUrl}"`);
}
writeAtomic(join(out, "install.sh"), script);

const latest = highestVersion(out);
const latestRelease = readRelease(out, latest);
writeAtomic(join(out, "latest", "version.json"), JSON.stringify(latestRelease) + "\n");

for (const [name, a] of Object.entries(artifacts)) console.log(`release: ${out}/${version}/${name} sha256 ${a.sha256}`);
if (baseUrl !== undefined) console.log(`release: install.sh installs from ${baseUrl}: curl -sSf ${baseUrl}/install.sh | sh`);
console.log(`release: latest is ${latest}${latest === version ? "" : ` (kept; ${version} is older)`}`);

// --- helpers -------------------------------------------------------------------------------------

function selfReport(bin: string): { commit: string; build_time: string } | null {
  // A throwaway HOME: `version` should not touch one, but a release build must never write to ~/.syncro.
  const home = mkdtempSync(join(tmpdir(), "spl-release-"));
  const r = Bun.spawnSync([bin, "version", "-o", "json"], {
    stderr: "ignore",
    env: { ...process.env, HOME: home, SYNCROPEL_HOME: join(home, ".syncro") },
  });
  rmSync(home, { recursive: true, force: true });
  if (r.exitCode !== 0) return null;
  try {
    const j = JSON.parse(r.stdout.toString());
    if (j.version === version && typeof j.commit === "string" && typeof j.build_time === "string") {
      return { commit: j.commit, build_time: j.build_time };
    }
  } catch {}
  return null;
}

// Published versions are the dirs holding both the binary and its checksum.
function highestVersion(root: string): string {
  const versions = readdirSync(root).filter(
    (name) =>
      VERSION_RE.test(name) &&
      statSync(join(root, name)).isDirectory() &&
      existsSync(join(root, name, ARTIFACT)) &&
      existsSync(join(root, name, `${ARTIFACT}.sha256`)),
  );
  versions.sort(Bun.semver.order);
  return versions[versions.length - 1]!;
}

function readRelease(root: string, v: string): object {
  try {
    return JSON.parse(readFileSync(join(root, v, "release.json"), "utf8"));
  } catch {
    // A tree written before release.json existed: the version alone is enough for install.sh.
    const sha = readFileSync(join(root, v, `${ARTIFACT}.sha256`), "utf8").split(/\s+/)[0];
    return { version: v, artifacts: { [ARTIFACT]: { sha256: sha } } };
  }
}

// bun run release [--out DIR] [--version X.Y.Z]
// Writes a static release tree that any static web server can host:
//   <out>/<version>/spl-linux-x64          the compiled binary (built by .ci/build.ts)
//   <out>/<version>/spl-linux-x64.sha256   "<hex>  spl-linux-x64" (sha256sum -c format)
//   <out>/<version>/release.json           version, commit, build time, sha256, size
//   <out>/latest/version.json              release.json of the highest version in the tree
//   <out>/install.sh                       copy of the repo's install.sh
// Versions already in <out> are kept, so old pins keep working. Every file is written under a
// temporary name and renamed, and latest/version.json goes last: a server hosting the tree while
// this runs never points `latest` at a half-written release.
import { parseArgs } from "node:util";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import pkg from "../package.json";

const ARTIFACT = "spl-linux-x64"; // the only target published for now
const BUILD_TARGET = "bun-linux-x64";
// Semver only, so `latest` can be picked by Bun.semver.order; these characters are also all that
// install.sh accepts in a version.
const VERSION_RE = /^\d+\.\d+\.\d+([-+][0-9A-Za-z.+-]+)?$/;

const repoRoot = resolve(import.meta.dir, "..");
const { values } = parseArgs({
  options: { out: { type: "string" }, version: { type: "string" } },
});
const version = values.version ?? pkg.version;
const out = resolve(values.out ?? join(repoRoot, "dist/release"));

if (!VERSION_RE.test(version)) {
  console.error(`release: invalid version '${version}' (expected semver like 0.1.0)`);
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

// 1. Build straight into the version dir under a temp name.
const binPath = join(versionDir, ARTIFACT);
const binTmp = `${binPath}.tmp-${process.pid}`;
const build = Bun.spawnSync(
  [process.execPath, join(repoRoot, ".ci/build.ts"), "--version", version, "--outfile", binTmp, "--target", BUILD_TARGET],
  { cwd: repoRoot, stdout: "inherit", stderr: "inherit" },
);
if (build.exitCode !== 0 || !existsSync(binTmp)) {
  rmSync(binTmp, { force: true });
  console.error(`release: build failed (exit ${build.exitCode})`);
  process.exit(1);
}

// 2. Checksum and metadata. Prefer the facts the binary reports about itself (`spl version -o json`);
//    fall back to git + now while the binary does not support that yet.
const bytes = await Bun.file(binTmp).bytes();
const sha256 = new Bun.CryptoHasher("sha256").update(bytes).digest("hex");
const facts = selfReport(binTmp) ?? { commit: gitCommit(), build_time: new Date().toISOString() };
const release = {
  version,
  commit: facts.commit,
  build_time: facts.build_time,
  artifacts: { [ARTIFACT]: { sha256, size: bytes.length } },
};

renameSync(binTmp, binPath);
writeAtomic(`${binPath}.sha256`, `${sha256}  ${ARTIFACT}\n`);
writeAtomic(join(versionDir, "release.json"), JSON.stringify(release, null, 2) + "\n");

// 3. install.sh, then latest/version.json last.
const installTmp = join(out, `install.sh.tmp-${process.pid}`);
copyFileSync(join(repoRoot, "install.sh"), installTmp);
renameSync(installTmp, join(out, "install.sh"));

const latest = highestVersion(out);
const latestRelease = readRelease(out, latest);
writeAtomic(join(out, "latest", "version.json"), JSON.stringify(latestRelease) + "\n");

console.log(`release: ${out}/${version}/${ARTIFACT} sha256 ${sha256}`);
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

function gitCommit(): string {
  const r = Bun.spawnSync(["git", "rev-parse", "--short=12", "HEAD"], { cwd: repoRoot, stderr: "ignore" });
  return r.exitCode === 0 ? r.stdout.toString().trim() : "unknown";
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

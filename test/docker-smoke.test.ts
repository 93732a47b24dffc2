// drills/docker-smoke.sh on a machine without registry access: with Podman and Buildah (when
// installed) it must name the base image it could not pull and skip with exit 0, never fail CI.
// The registry is made unreachable on purpose: docker.io is redirected to a closed loopback port.
import { afterAll, expect, setDefaultTimeout, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort } from "./harness";

setDefaultTimeout(120_000);
const REPO = resolve(import.meta.dir, "..");
const root = mkdtempSync(join(tmpdir(), "spl-smoke-test-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

// The first FROM of the Dockerfile with its ARG defaults filled in.
function firstBase(): string {
  const text = readFileSync(join(REPO, "Dockerfile"), "utf8");
  const args = Object.fromEntries([...text.matchAll(/^ARG (\w+)=(\S*)$/gm)].map((m) => [m[1], m[2]]));
  return text.match(/^FROM (\S+)/m)![1]!.replace(/\$\{(\w+)\}/g, (_, k) => args[k]);
}

for (const engine of ["podman", "buildah"]) {
  test(`${engine}: a base image that cannot be pulled is named, and the drill skips`, () => {
    if (!Bun.which(engine)) {
      console.warn(`skipped: ${engine} is not installed (CI installs it when apt can)`);
      return;
    }
    const conf = join(root, `${engine}-registries.conf`);
    writeFileSync(conf, `[[registry]]\nprefix = "docker.io"\nlocation = "127.0.0.1:${freePort()}"\ninsecure = true\n`);
    const r = Bun.spawnSync(["bash", join(REPO, "drills/docker-smoke.sh")], {
      env: { ...process.env, SPL_SMOKE_ENGINE: engine, CONTAINERS_REGISTRIES_CONF: conf },
    });
    const out = r.stdout.toString();
    expect({ code: r.exitCode, out }).toEqual({ code: 0, out: expect.stringContaining(`skipped: cannot pull base image docker.io/${firstBase()} with ${engine}`) });
    expect(out).not.toContain("building");
  });
}

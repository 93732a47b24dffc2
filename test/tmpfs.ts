// A small real filesystem for tests that need one to fill up: tmpfs mounted on a
// directory of the test's own temp home (root only; the tests skip with the reason otherwise).
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function run(args: string[]): { ok: boolean; out: string } {
  const r = Bun.spawnSync(args, { stdout: "pipe", stderr: "pipe" });
  return { ok: r.exitCode === 0, out: `${r.stdout.toString()}${r.stderr.toString()}`.trim() };
}

/** Why tmpfs cannot be mounted here (not root, no CAP_SYS_ADMIN, no mount binary), or null. */
export const tmpfsUnavailable: string | null = (() => {
  const probe = mkdtempSync(join(tmpdir(), "spl-tmpfs-probe-"));
  try {
    const m = run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", probe]);
    if (!m.ok) return `cannot mount tmpfs here (${m.out || "mount failed"}); these tests need root or CAP_SYS_ADMIN`;
    run(["umount", probe]);
    return null;
  } catch (err) {
    return `cannot run mount: ${(err as Error).message}`;
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();

const mounted = new Set<string>();

/** Mounts a tmpfs of `size` (e.g. "20m") on dir (created if missing). */
export function mountTmpfs(dir: string, size: string): void {
  mkdirSync(dir, { recursive: true });
  const m = run(["mount", "-t", "tmpfs", "-o", `size=${size},mode=0700`, "tmpfs", dir]);
  if (!m.ok) throw new Error(`mount tmpfs on ${dir}: ${m.out}`);
  mounted.add(dir);
}

/** Unmounts every tmpfs this file mounted (lazily, so a process still holding a file cannot block it). */
export function unmountAll(): void {
  for (const dir of mounted) {
    run(["umount", "-l", dir]);
    mounted.delete(dir);
  }
}

// Writing a secret-bearing file: mode 0600 from the first byte, and atomically (a temp file
// renamed into place), so nobody ever reads a half-written token or key.
import { chmodSync, renameSync, rmSync, writeFileSync } from "node:fs";

export function writePrivateFile(path: string, content: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, content, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, path);
  } finally {
    rmSync(tmp, { force: true });
  }
}

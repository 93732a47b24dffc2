// The Unix socket's file: Bun does not remove it on stop, so a crash leaves a stale one behind.
// Remove it only when it is a socket that nothing answers on; refuse anything else.
import { chmodSync, lstatSync, rmSync } from "node:fs";
import { UserError } from "../errors";

export async function socketAnswers(path: string): Promise<boolean> {
  try {
    const res = await fetch("http://localhost/health", { unix: path, signal: AbortSignal.timeout(1000) } as RequestInit);
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/** Returns true if a stale socket file was removed. */
export async function clearStaleSocket(path: string): Promise<boolean> {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return false;
  }
  if (!st.isSocket()) {
    throw new UserError(`${path} exists and is not a socket`, "move it out of the way, then start again");
  }
  if (await socketAnswers(path)) {
    throw new UserError(`another daemon is answering on ${path}`, "stop it with 'spl serve --stop' first");
  }
  rmSync(path, { force: true });
  return true;
}

export function restrictSocket(path: string): void {
  chmodSync(path, 0o600);
}

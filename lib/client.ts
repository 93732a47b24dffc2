// How the CLI reaches the daemon: the Unix socket by default (trusted by its file mode), or
// HTTP when SPL_SERVE_URL / --url is set (with a bearer token from SPL_TOKEN or <home>/token).
import { existsSync, readFileSync } from "node:fs";
import { UserError } from "./errors";
import { homePaths } from "./paths";

export interface Target {
  socket?: string;
  url: string;
  token?: string;
  describe: string;
}

export function resolveTarget(urlOverride?: string): Target {
  const url = urlOverride || process.env.SPL_SERVE_URL;
  const p = homePaths();
  if (url) {
    let token = process.env.SPL_TOKEN;
    if (!token && existsSync(p.token)) token = readFileSync(p.token, "utf8").trim() || undefined;
    return { url: url.replace(/\/+$/, ""), token, describe: url };
  }
  return { socket: p.socket, url: "http://localhost", describe: p.socket };
}

export class NotRunningError extends UserError {
  constructor(target: Target) {
    super(`spl serve is not running (nothing answered on ${target.describe})`, "start it with 'spl serve --daemon'");
  }
}

export interface Reply<T = any> {
  status: number;
  body: T;
}

/** One request to the daemon. Connection failures become NotRunningError. */
export async function request<T = any>(method: string, path: string, body?: unknown, target = resolveTarget(), timeoutMs = 30_000): Promise<Reply<T>> {
  const headers: Record<string, string> = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (target.token) headers.authorization = `Bearer ${target.token}`;
  let res: Response;
  try {
    res = await fetch(target.url + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      unix: target.socket,
      signal: AbortSignal.timeout(timeoutMs),
    } as RequestInit);
  } catch (err) {
    if ((err as Error).name === "TimeoutError") {
      throw new UserError(`the daemon at ${target.describe} did not answer within ${timeoutMs / 1000} s`, "check 'spl status' and the log");
    }
    throw new NotRunningError(target);
  }
  const text = await res.text();
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, body: parsed };
}

/** A request whose non-2xx answer becomes a UserError carrying the daemon's message. */
export async function call<T = any>(method: string, path: string, body?: unknown, target?: Target): Promise<T> {
  const reply = await request<T>(method, path, body, target);
  if (reply.status >= 200 && reply.status < 300) return reply.body;
  const b = reply.body as any;
  if (b?.code === "PERMISSION_DENIED" && b.permission) {
    // The daemon says which rule refused what; the fix is a rule that allows exactly that.
    const { allowCommand } = await import("./engine/permissions");
    const p = b.permission;
    const what = String(b.message).replace(/ — an operator can.*$/, "");
    throw new UserError(`${what} [PERMISSION_DENIED]`, `an operator can allow it with: ${allowCommand(p.actor, p.resource, p.priority)}`);
  }
  const message = b && typeof b === "object" && b.message ? `${b.message}` : `daemon answered HTTP ${reply.status}`;
  throw new UserError(b?.code ? `${message} [${b.code}]` : message);
}

// How the CLI reaches the daemon: the Unix socket by default (trusted by its file mode), or
// HTTP when SPL_SERVE_URL / --url is set (with a bearer token from SPL_TOKEN or <home>/token).
import { existsSync, readFileSync } from "node:fs";
import { UserError } from "./errors";
import { isTlsFailure } from "./net";
import { homePaths } from "./paths";

export interface Target {
  socket?: string;
  url: string;
  token?: string;
  describe: string;
  /** A CA (PEM) an https daemon's certificate must come from ([fleet] ca_file); none: the system roots. */
  ca?: string;
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
      tls: target.ca ? { ca: target.ca } : undefined,
    } as RequestInit);
  } catch (err) {
    if ((err as Error).name === "TimeoutError") {
      throw new UserError(`the daemon at ${target.describe} did not answer within ${timeoutMs / 1000} s`, "check 'spl status' and the log");
    }
    if (isTlsFailure(err)) {
      throw new UserError(`the daemon at ${target.describe} presented a certificate this host does not trust (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, "set [fleet] ca_file to the CA that signed it, and check that the certificate names the host in the URL");
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

/**
 * A non-2xx answer from the daemon: its HTTP status, error code and message, and the fix when the
 * message names one (the daemon writes "<what> — <fix>"). Callers branch on `code`, never on text.
 */
export class DaemonError extends UserError {
  constructor(
    readonly status: number,
    readonly code: string | undefined,
    message: string,
    fix?: string,
  ) {
    super(message, fix);
  }

  static fromReply(reply: Reply): DaemonError {
    const b = reply.body as { code?: unknown; message?: unknown } | null;
    const code = b && typeof b === "object" && typeof b.code === "string" ? b.code : undefined;
    const text = b && typeof b === "object" && typeof b.message === "string" && b.message ? b.message : `daemon answered HTTP ${reply.status}`;
    const cut = text.indexOf(" — ");
    return cut < 0 ? new DaemonError(reply.status, code, text) : new DaemonError(reply.status, code, text.slice(0, cut), text.slice(cut + 3));
  }

  /** The same answer with another fix (a verb that knows the way out better). */
  withFix(fix: string): DaemonError {
    return new DaemonError(this.status, this.code, this.message, fix);
  }

  /** `what — fix [CODE]`; a fix with lines of its own (a command to paste) follows the first line. */
  override get oneLine(): string {
    const line = super.oneLine;
    const code = this.code ? ` [${this.code}]` : "";
    const nl = line.indexOf("\n");
    return nl < 0 ? line + code : line.slice(0, nl) + code + line.slice(nl);
  }
}

/** A request whose non-2xx answer becomes a DaemonError. */
export async function call<T = any>(method: string, path: string, body?: unknown, target?: Target): Promise<T> {
  const reply = await request<T>(method, path, body, target);
  if (reply.status >= 200 && reply.status < 300) return reply.body;
  const err = DaemonError.fromReply(reply);
  const p = (reply.body as { permission?: { actor: string; resource: string; priority: number | null } } | null)?.permission;
  if (err.code === "PERMISSION_DENIED" && p) {
    // The daemon says which rule refused what; the fix is a rule that allows exactly that.
    const [{ allowRule }, { permissionRuleCommand }] = await Promise.all([import("./engine/permissions"), import("./cli/rule-command")]);
    // On a line of its own, so it can be pasted as it is.
    throw err.withFix(`an operator can allow it with the command below\n  ${permissionRuleCommand(allowRule(p.actor, p.resource, p.priority))}`);
  }
  throw err;
}

/** The --url option of every verb that talks to the daemon. */
export const urlArg = { url: { type: "string", description: "Daemon URL (default: the local socket; or SPL_SERVE_URL)" } } as const;

// `spl doctor` building blocks. A check is a small function of the DoctorContext that returns
// one row (or several, or null to leave itself out); rows are ✓ pass, ! warn, ✗ fail and the
// exit code is the worst row (0/1/2). To add a row, write a Check and list it in checks.ts.
import type { SplConfig } from "../config";
import type { Target } from "../client";
import type { HomePaths } from "../paths";

export type CheckStatus = "pass" | "warn" | "fail";

export interface CheckResult {
  name: string;
  status: CheckStatus;
  detail: string;
}

export interface DoctorContext {
  paths: HomePaths;
  /** config.toml, or null when it cannot be parsed (configError says why). */
  config: SplConfig | null;
  configError: string | null;
  target: Target;
  /** GET /health: status code and body, or null when nothing answered. */
  health: { status: number; body: any } | null;
  /** GET /v1/status body when it answered 200 (may need a token on TCP), else null. */
  status: any | null;
  /** true when the answering daemon serves this home (so its pid and store are ours). */
  daemonIsOurs: boolean;
  /** The socket did not answer; the daemon was found on its TCP port (ctx.target). */
  reachedByPort?: boolean;
}

export type Check = (ctx: DoctorContext) => CheckResult | CheckResult[] | null | Promise<CheckResult | CheckResult[] | null>;

export const pass = (name: string, detail: string): CheckResult => ({ name, status: "pass", detail });
export const warn = (name: string, detail: string): CheckResult => ({ name, status: "warn", detail });
export const fail = (name: string, detail: string): CheckResult => ({ name, status: "fail", detail });

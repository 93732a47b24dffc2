// CLI side of engine config: check a rule exactly as the daemon's fold will (same code, so a rule
// the CLI accepts is one the daemon keeps), and write it as a LEARN on th_engine_config through
// the daemon so it applies on the next request.
import { call, resolveTarget } from "../client";
import { loadConfig } from "../config";
import { UsageError, UserError } from "../errors";
import { homePaths } from "../paths";
import { ENGINE_CONFIG_THREAD, type RuleTopic } from "../engine/config-fold";
import { configBodyProblem } from "../engine/config-validate";

export function operatorActor(): string {
  return loadConfig(homePaths().config).identity.actor;
}

export function parsePriority(value: string | undefined, fallback = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new UsageError(`--priority must be an integer, got '${value}'`, "e.g. --priority 100");
  return n;
}

export function requireFlag(value: string | undefined, flag: string, example: string): string {
  if (value === undefined || value.trim() === "") throw new UsageError(`${flag} is required`, `e.g. ${flag} ${example}`);
  return value;
}

/** Checks the candidate as the daemon's fold will; a refusal becomes a one-line error with the column. */
export function validateRule(topic: RuleTopic, body: Record<string, unknown>): void {
  const problem = configBodyProblem({ topic, ...body });
  if (problem) {
    const context = topic === "permission_rule" ? "permission" : topic === "routing_rule" ? "routing" : topic === "aitl_rule" ? "aitl" : topic;
    throw new UsageError(`${topic} "${body.name ?? body.id ?? ""}" not written: ${problem.error}`, `check it with: spl expr check '<expr>' --context ${context}`);
  }
}

/** Posts one config LEARN as the operator's actor; answers the stored record. */
export async function writeConfig(body: Record<string, unknown>, url?: string, clock?: number): Promise<any> {
  const record: Record<string, unknown> = { thread: ENGINE_CONFIG_THREAD, actor: operatorActor(), act: "LEARN", body };
  if (clock !== undefined) record.clock = clock;
  return call("POST", "/v1/records", record, resolveTarget(url));
}

/** Adds the way out to a 403 on a config verb. */
export function lockoutHint(err: unknown): never {
  if (err instanceof UserError && /PERMISSION_DENIED/.test(err.message)) {
    throw new UserError(
      err.message.replace(/ — an operator can.*$/, "").replace(/ \[PERMISSION_DENIED\]$/, "") + " [PERMISSION_DENIED]",
      "if the rules lock you out: spl serve --stop; spl config permissions-unlock; spl serve --daemon",
    );
  }
  throw err;
}

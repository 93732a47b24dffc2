// Ad-hoc evaluation (`spl expr eval`, POST /v1/engine/expr/eval) runs in a worker thread: the
// daemon keeps answering while it runs, and a wall-clock limit ends what the step budget cannot
// see (one regular expression that backtracks for minutes). Rules stay in-process (cel.ts).
import { CelCostError, CelEvaluationError, toCelVars, type CelContextName, type RawCelVars } from "./cel";
import { workerEntry } from "../worker-entry";

/** What the worker needs of the caller: who it is, when, and a snapshot of each provider's facts (by name). */
export interface AdHocScope {
  actor: string;
  nowSecs: number;
  facts: Record<string, unknown>;
}

export interface AdHocRequest {
  context: CelContextName;
  expression: string;
  vars: RawCelVars;
  scope: AdHocScope;
}

export type AdHocReply =
  | { ok: true; type: string; value: unknown }
  | { ok: false; costly: boolean; code: string; message: string };

/** Longest an ad-hoc evaluation may run before its worker is terminated. */
export const AD_HOC_TIMEOUT_MS = 2000;
/** Evaluations running at once; more wait their turn (each ends within the timeout). */
const MAX_RUNNING = 2;

let running = 0;
const waiting: Array<() => void> = [];

async function slot(): Promise<() => void> {
  if (running >= MAX_RUNNING) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  return () => {
    running--;
    waiting.shift()?.();
  };
}

/** Evaluates an expression of any type; throws CelCostError or CelEvaluationError like cel.ts. */
export async function evaluateAdHoc(context: CelContextName, expression: string, vars: RawCelVars, scope: AdHocScope): Promise<{ type: string; value: unknown }> {
  toCelVars(vars); // refuses bindings nested too deep before they are copied to the worker
  const release = await slot();
  const worker = new Worker(workerEntry("lib/engine/expr-worker.ts"));
  try {
    const reply = await new Promise<AdHocReply>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new CelCostError(`expression is too costly: it did not finish within ${AD_HOC_TIMEOUT_MS / 1000} s — simplify it (a backtracking regular expression?)`)),
        AD_HOC_TIMEOUT_MS,
      );
      worker.onmessage = (event: MessageEvent<AdHocReply>) => {
        clearTimeout(timer);
        resolve(event.data);
      };
      worker.onerror = (event) => {
        clearTimeout(timer);
        reject(new CelEvaluationError(`${context} expression failed: ${event.message}`, "evaluation_error"));
      };
      worker.postMessage({ context, expression, vars, scope } satisfies AdHocRequest);
    });
    if (reply.ok) return { type: reply.type, value: reply.value };
    throw reply.costly ? new CelCostError(reply.message) : new CelEvaluationError(reply.message, reply.code);
  } finally {
    worker.terminate();
    release();
  }
}

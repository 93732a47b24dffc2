// Worker thread for one ad-hoc evaluation (POST /v1/engine/expr/eval): the expression runs here,
// off the daemon's event loop, under the same cost budget as in-process rules. expr-eval.ts
// starts it and may terminate it; it answers one message and is done. The capability list is
// imported for its CEL functions; each provider's facts arrive as a snapshot and are read back
// through the provider's own restore().
import "../capabilities";
import { CelCostError, celToJson, celType, evaluateValue, scopeWith, toCelVars } from "./cel";
import { factProviders } from "./vocabulary";
import type { AdHocReply, AdHocRequest } from "./expr-eval";

declare const self: Worker;

self.onmessage = (event: MessageEvent<AdHocRequest>) => {
  const { context, expression, vars, scope } = event.data;
  const lookups: Record<string, unknown> = {};
  for (const p of factProviders()) if (Object.hasOwn(scope.facts, p.name)) lookups[p.name] = p.restore(scope.facts[p.name]);
  let reply: AdHocReply;
  try {
    const value = evaluateValue(context, expression, toCelVars(vars), scopeWith(scope.actor, scope.nowSecs, lookups));
    reply = { ok: true, type: celType(value), value: celToJson(value) };
  } catch (err) {
    const e = err as Error & { code?: unknown };
    reply = { ok: false, costly: err instanceof CelCostError, code: typeof e.code === "string" ? e.code : "evaluation_error", message: e.message ?? String(err) };
  }
  postMessage(reply);
};

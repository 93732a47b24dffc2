// Worker thread for one ad-hoc evaluation (POST /v1/engine/expr/eval): the expression runs here,
// off the daemon's event loop, under the same cost budget as in-process rules. expr-eval.ts
// starts it and may terminate it; it answers one message and is done.
import { CelCostError, celToJson, celType, evaluateValue, toCelVars } from "./cel";
import type { AdHocReply, AdHocRequest } from "./expr-eval";

declare const self: Worker;

self.onmessage = (event: MessageEvent<AdHocRequest>) => {
  const { context, expression, vars, scope } = event.data;
  const rows = new Map(scope.trust.map(([actor, domain, score, count]) => [`${actor}\u0000${domain}`, { score, count }]));
  const tasks = new Map(scope.tasks ?? []);
  const fanouts = new Map(scope.fanouts ?? []);
  const celScope = {
    actor: scope.actor,
    nowSecs: scope.nowSecs,
    trust: (actor: string, domain: string) => rows.get(`${actor}\u0000${domain}`)?.score ?? scope.prior,
    trustCount: (actor: string, domain: string) => rows.get(`${actor}\u0000${domain}`)?.count ?? 0,
    task: (ref: string) => tasks.get(ref.toUpperCase()) ?? tasks.get(ref),
    fleet: () => scope.fleet,
    fanoutStatus: (thread: string) => fanouts.get(thread) ?? "none",
  };
  let reply: AdHocReply;
  try {
    const value = evaluateValue(context, expression, toCelVars(vars), celScope);
    reply = { ok: true, type: celType(value), value: celToJson(value) };
  } catch (err) {
    const e = err as Error & { code?: unknown };
    reply = { ok: false, costly: err instanceof CelCostError, code: typeof e.code === "string" ? e.code : "evaluation_error", message: e.message ?? String(err) };
  }
  postMessage(reply);
};

// spl trust [-o json]: trust per (actor, domain), folded from verdict KNOWs.
import { defineCommand } from "citty";
import { call, resolveTarget, urlArg } from "../lib/client";
import { out, outputArgs, printJson, table, wantsJson } from "../lib/cli/output";

export default defineCommand({
  meta: { name: "trust", description: "Show trust scores (Wilson lower bound over decayed verdicts)" },
  args: { ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const { data } = await call("GET", "/v1/trust", undefined, resolveTarget(args.url));
    if (json) return printJson(data);
    if (!data.length) return out("no trust evidence yet — verdicts are KNOW records with body.verdict accept|reject about another actor's work");
    out(table(["ACTOR", "DOMAIN", "SUCCESS", "TOTAL", "TRUST"], data.map((r: any) => [r.actor, r.domain, r.success, r.total, r.trust.toFixed(3)])));
  },
});

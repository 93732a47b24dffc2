// spl dispatch list [--active] [--limit N] [-o json]: INTENDs the reconciler handed to an adapter.
import { defineCommand } from "citty";
import { call, resolveTarget, urlArg } from "../lib/client";
import { out, outputArgs, printJson, table, wantsJson } from "../lib/cli/output";
import { UsageError } from "../lib/errors";

const when = (secs: number) => new Date(secs * 1000).toISOString().replace(".000Z", "Z");
const status = (d: any) => (d.finished_at === null ? "running" : d.success ? "ok" : "failed");

const list = defineCommand({
  meta: { name: "list", description: "List dispatches, most recent first (running, ok, failed with the reason)" },
  args: {
    active: { type: "boolean", description: "Only dispatches that have not finished" },
    limit: { type: "string", description: "At most this many (default 100)", valueHint: "100" },
    ...outputArgs,
    ...urlArg,
  },
  async run({ args }) {
    const json = wantsJson(args);
    if (args.limit !== undefined && !/^\d{1,5}$/.test(args.limit)) throw new UsageError(`--limit must be a number, got '${args.limit}'`, "e.g. --limit 20");
    const query = new URLSearchParams();
    if (args.active) query.set("active", "true");
    if (args.limit !== undefined) query.set("limit", args.limit);
    const q = query.size ? `?${query}` : "";
    const reply = await call("GET", `/v1/dispatches${q}`, undefined, resolveTarget(args.url));
    if (json) return printJson(reply.data);
    if (!reply.data.length) {
      return out(args.active ? "no dispatches running" : "no dispatches yet — an INTEND is dispatched when a routing rule, body.to or trust names a target (README: Dispatch)");
    }
    out(
      table(
        ["INTEND", "TARGET", "RULE", "STATUS", "STARTED", "LATENCY", "REASON"],
        reply.data.map((d: any) => [d.intend.slice(0, 12), d.target, d.rule, status(d), when(d.started_at), d.latency_ms === null ? "-" : `${d.latency_ms}ms`, d.failure_reason ?? ""]),
      ),
    );
    if (reply.data.length < (args.active ? reply.active : reply.total)) out(`(${reply.data.length} of ${args.active ? reply.active : reply.total}; --limit N for more)`);
  },
});

export default defineCommand({
  meta: { name: "dispatch", description: "Inspect dispatches (routed INTENDs handed to adapters)" },
  subCommands: { list },
});

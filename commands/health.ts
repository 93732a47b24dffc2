// spl health check: run the engine's health checks; exit 0 ok, 1 a warn check fails, 2 a critical one.
import { defineCommand } from "citty";
import { call, resolveTarget, urlArg } from "../lib/client";
import { out, outputArgs, printJson, wantsJson } from "../lib/cli/output";

const EXIT = { ok: 0, warn: 1, critical: 2 } as const;
const MARK = { pass: "✓", fail: "✗", error: "✗" } as const;

const check = defineCommand({
  meta: { name: "check", description: "Evaluate every health check against live state (exit 0 ok, 1 warn, 2 critical)" },
  args: { ...outputArgs, ...urlArg },
  async run({ args }) {
    const json = wantsJson(args);
    const r = await call("GET", "/v1/engine/health", undefined, resolveTarget(args.url));
    if (json) printJson({ status: r.status, checks: r.checks });
    else if (!r.checks.length) out("no health checks — add one with 'spl config add-health'");
    else {
      for (const c of r.checks) {
        const mark = c.status === "pass" ? MARK.pass : c.severity === "warn" ? "!" : MARK[c.status as "fail" | "error"];
        out(`${mark} ${c.name} (${c.severity})${c.description ? ` — ${c.description}` : ""}${c.status === "pass" ? "" : `: ${c.detail}`}`);
      }
      out(`health: ${r.status}`);
    }
    process.exitCode = EXIT[r.status as keyof typeof EXIT] ?? 2;
  },
});

export default defineCommand({
  meta: { name: "health", description: "Engine health checks" },
  subCommands: { check },
});

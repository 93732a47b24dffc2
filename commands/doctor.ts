// spl doctor [--json]: read-only health audit of this instance; exit 0 all ok, 1 warnings, 2 failures.
import { defineCommand } from "citty";
import { out, outputArgs, printJson, wantsJson } from "../lib/cli/output";
import { portArg, useInstanceOnPort } from "../lib/daemonctl/home-by-port";

const MARK = { pass: "✓", warn: "!", fail: "✗" } as const;

export default defineCommand({
  meta: { name: "doctor", description: "Check this instance: daemon, pid file, socket, store, schema, backups, file modes" },
  args: { ...outputArgs, ...portArg },
  async run({ args }) {
    const json = wantsJson(args);
    useInstanceOnPort(args.port);
    const { runDoctor } = await import("../lib/doctor/run");
    const { homePaths } = await import("../lib/paths");
    const report = await runDoctor();
    process.exitCode = report.exitCode;
    if (json) return printJson({ object: "doctor_report", home: homePaths().home, exit_code: report.exitCode, checks: report.checks });
    const width = Math.max(...report.checks.map((c) => c.name.length)) + 2;
    const lines = report.checks.map((c) => `  ${MARK[c.status]} ${c.name.padEnd(width)}${c.detail}`);
    const n = (s: string) => report.checks.filter((c) => c.status === s).length;
    out([`spl doctor — ${homePaths().home}`, "", ...lines, "", `  ${n("pass")} ok · ${n("warn")} warning(s) · ${n("fail")} failed`].join("\n"));
  },
});

// spl kill --namespace NS [--level soft|hard] [--grace S] [--reason ..] | --emergency [--reason ..] (README "Fleet")
import { defineCommand } from "citty";
import { out, outputArgs, printJson, wantsJson } from "../lib/cli/output";
import { urlArg } from "../lib/client";

export default defineCommand({
  meta: { name: "kill", description: "Freeze a namespace (--level soft|hard) or stop all new work in the fleet (--emergency)" },
  args: {
    namespace: { type: "string", description: "The namespace (a record's body.namespace; children included)" },
    emergency: { type: "boolean", description: "Fleet-wide: no new INTEND/DO/CALL on any member" },
    level: { type: "string", description: "soft (default): new INTEND/DO/CALL refused; hard: everything, after --grace", valueHint: "soft|hard" },
    grace: { type: "string", description: "Seconds before a hard freeze refuses everything (default 60)" },
    reason: { type: "string", description: "Why (shown by spl fleet status)" },
    ...outputArgs,
    ...urlArg,
  },
  async run({ args }) {
    const { kill } = await import("../lib/fleet/kill");
    const done = await kill(args);
    if (wantsJson(args)) return printJson(done.record);
    out(done.line);
  },
});

// spl unkill --namespace NS | --emergency: the counter-record of spl kill (README "Fleet")
import { defineCommand } from "citty";
import { out, outputArgs, printJson, wantsJson } from "../lib/cli/output";
import { urlArg } from "../lib/client";

export default defineCommand({
  meta: { name: "unkill", description: "Lift a namespace freeze (--namespace NS) or the emergency stop (--emergency)" },
  args: {
    namespace: { type: "string", description: "The frozen namespace to release" },
    emergency: { type: "boolean", description: "Lift the fleet-wide emergency stop" },
    ...outputArgs,
    ...urlArg,
  },
  async run({ args }) {
    const { unkill } = await import("../lib/fleet/kill");
    const done = await unkill(args);
    if (wantsJson(args)) return printJson(done.record);
    out(done.line);
  },
});

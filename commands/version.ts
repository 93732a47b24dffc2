// spl version [-o json]
import { defineCommand } from "citty";
import { outputArgs, out, printJson, wantsJson } from "../lib/cli/output";
import { BUILD_TIME, COMMIT, VERSION } from "../lib/version";
import { SCHEMA_VERSION } from "../lib/store/schema";

export default defineCommand({
  meta: { name: "version", description: "Print the spl version (no daemon needed)" },
  args: { ...outputArgs },
  run({ args }) {
    if (wantsJson(args)) printJson({ version: VERSION, commit: COMMIT, build_time: BUILD_TIME, schema_version: SCHEMA_VERSION });
    else out(`spl ${VERSION}`);
  },
});

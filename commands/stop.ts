// spl stop: alias of `spl serve --stop`.
import { defineCommand } from "citty";
import { stopCommand } from "./serve";

export default defineCommand({
  meta: { name: "stop", description: "Stop the daemon (spl serve --stop)" },
  args: { force: { type: "boolean", description: "SIGKILL if it does not stop within 15 s" } },
  run: ({ args }) => stopCommand(args),
});

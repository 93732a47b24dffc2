// spl restart: alias of `spl serve --restart`.
import { defineCommand } from "citty";
import { bindArgs, restartCommand } from "./serve";

export default defineCommand({
  meta: { name: "restart", description: "Restart the daemon (spl serve --restart)" },
  args: { ...bindArgs, force: { type: "boolean", description: "SIGKILL if it does not stop within 15 s" } },
  run: ({ args }) => restartCommand(args),
});

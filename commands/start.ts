// spl start: alias of `spl serve --daemon`.
import { defineCommand } from "citty";
import { bindArgs, startCommand } from "./serve";

export default defineCommand({
  meta: { name: "start", description: "Start the daemon in the background (spl serve --daemon)" },
  args: { ...bindArgs },
  run: ({ args }) => startCommand(args),
});

// spl completion bash|zsh|fish: prints a completion script generated from the command tree.
import { defineCommand, type CommandDef } from "citty";
import { UsageError } from "../lib/errors";
import { commandTree, SHELLS } from "../lib/cli/completion";

/** Built with the root command, since the script covers every verb. */
export function completionCommand(root: CommandDef<any>) {
  return defineCommand({
    meta: { name: "completion", description: "Print a shell completion script: bash, zsh or fish" },
    args: { shell: { type: "positional", required: true, description: "bash | zsh | fish" } },
    async run({ args }) {
      const render = SHELLS[args.shell as keyof typeof SHELLS];
      if (!Object.hasOwn(SHELLS, args.shell)) {
        throw new UsageError(`unknown shell '${args.shell}'`, `use one of: ${Object.keys(SHELLS).join(", ")} (e.g. source <(spl completion bash))`);
      }
      process.stdout.write(render(await commandTree(root)));
    },
  });
}

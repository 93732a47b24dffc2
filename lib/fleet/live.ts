// `spl fleet status --live`: on a terminal, the view redrawn in place every second (cursor home,
// each line cleared as it is rewritten: no blank frame, so no flicker) until Ctrl-C, which exits
// 0; piped, one plain snapshot per heartbeat interval, separated by a blank line.
import { out } from "../cli/output";

export async function watch(render: () => Promise<{ text: string; interval: number }>, tty: boolean): Promise<never> {
  const bye = () => {
    if (tty) process.stdout.write("\x1b[?25h\n");
    process.exit(0);
  };
  process.on("SIGINT", bye);
  process.on("SIGTERM", bye);
  if (tty) process.stdout.write("\x1b[?25l\x1b[2J");
  for (let first = true; ; first = false) {
    let frame: { text: string; interval: number };
    try {
      frame = await render();
    } catch (err) {
      frame = { text: `error: ${(err as Error).message} (retrying)`, interval: 1 };
    }
    if (tty) process.stdout.write(`\x1b[H${frame.text.split("\n").map((l) => `${l}\x1b[K`).join("\n")}\n\x1b[J`);
    else out(`${first ? "" : "\n"}${frame.text}`);
    await Bun.sleep(tty ? 1000 : frame.interval * 1000);
  }
}

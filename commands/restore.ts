// spl restore <FILE> [--force]: replace the store with a verified backup (daemon must be stopped).
import { defineCommand } from "citty";
import { out, outputArgs, printJson, wantsJson } from "../lib/cli/output";
import { UsageError } from "../lib/errors";

export default defineCommand({
  meta: { name: "restore", description: "Restore hub.db from a backup file (moves the current files aside, never deletes)" },
  args: {
    file: { type: "positional", description: "Backup file to restore ('spl backup list' shows them)", required: false },
    force: { type: "boolean", description: "Restore even if the current store holds more records than the backup" },
    ...outputArgs,
  },
  async run({ args }) {
    if (!args.file) throw new UsageError("which backup? 'spl restore <FILE>'", "'spl backup list' shows the backups on this machine");
    const json = wantsJson(args);
    const { restoreStore } = await import("../lib/backup/restore");
    const { cliPhases } = await import("../lib/progress/phase");
    const r = await restoreStore(args.file, { force: args.force, phases: cliPhases() });
    if (json) return printJson({ object: "restore", ...r });
    out(
      [
        `Restored ${r.restored_from}`,
        `      to ${r.store}`,
        `  records:  ${r.records} across ${r.threads} threads (verified: quick_check ok)`,
        ...(r.instance_did ? [`  instance: ${r.instance_did}`] : []),
        ...(r.last_id ? [`  last id:  ${r.last_id}`] : []),
        ...(r.moved_aside.length ? [`  moved aside (not deleted): ${r.moved_aside.join(", ")}`] : ["  (there was no store to move aside)"]),
        ...r.notes.map((n) => `  note: ${n}`),
        "Next: spl serve --daemon, then spl status",
      ].join("\n"),
    );
  },
});

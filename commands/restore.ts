// spl restore <FILE|URL> [--force]: replace the store with a verified backup (daemon must be
// stopped). FILE is a store file; URL an off-host copy (s3://… or file://…, or a local .zst with
// its .sha256), downloaded and checked first.
import { defineCommand } from "citty";
import { out, outputArgs, printJson, wantsJson } from "../lib/cli/output";
import { UsageError } from "../lib/errors";

export default defineCommand({
  meta: { name: "restore", description: "Restore hub.db from a backup file or an off-host copy (moves the current files aside, never deletes)" },
  args: {
    file: { type: "positional", description: "Backup file, or off-host copy URL ('spl backup list [--remote]' shows them)", required: false },
    force: { type: "boolean", description: "Restore even if the current store holds more records than the backup" },
    ...outputArgs,
  },
  async run({ args }) {
    if (!args.file) throw new UsageError("which backup? 'spl restore <FILE|URL>'", "'spl backup list' (or 'spl backup list --remote') shows the backups");
    const json = wantsJson(args);
    const { restoreStore } = await import("../lib/backup/restore");
    const { isRemoteUrl, isCompressed } = await import("../lib/backup/offsite/fetch");
    let r;
    if (isRemoteUrl(args.file) || isCompressed(args.file)) {
      const { restoreOffsite } = await import("../lib/backup/offsite/restore");
      const { cliPhases } = await import("../lib/progress/phase");
      r = await restoreOffsite(args.file, { force: args.force, phases: cliPhases() });
    } else {
      const { cliPhases } = await import("../lib/progress/phase");
      r = await restoreStore(args.file, { force: args.force, phases: cliPhases() });
    }
    if (json) return printJson({ object: "restore", ...r });
    out(
      [
        `Restored ${r.restored_from}`,
        `      to ${r.store}`,
        `  records:  ${r.records} across ${r.threads} threads (verified: ${isRemoteUrl(args.file) || isCompressed(args.file) ? "sha256 and " : ""}quick_check ok)`,
        ...(r.instance_did ? [`  instance: ${r.instance_did}`] : []),
        ...(r.last_id ? [`  last id:  ${r.last_id}`] : []),
        ...(r.moved_aside.length ? [`  moved aside (not deleted): ${r.moved_aside.join(", ")}`] : ["  (there was no store to move aside)"]),
        ...r.notes.map((n) => `  note: ${n}`),
        "Next: spl serve --daemon, then spl status",
      ].join("\n"),
    );
  },
});

// spl backup [--out FILE] [--force] [-o json]: a verified online snapshot of the store.
// spl backup list [-o json]: this home's backups with time and record count.
import { defineCommand } from "citty";
import { out, outputArgs, printJson, table, wantsJson } from "../lib/cli/output";
import { formatBytes } from "../lib/progress/line";


const list = defineCommand({
  meta: { name: "list", description: "List this instance's backups with time and record count" },
  args: { ...outputArgs },
  async run({ args }) {
    const json = wantsJson(args);
    const { listHomeBackups } = await import("../lib/backup/list");
    const { files, dirs, home } = listHomeBackups();
    if (json) return printJson(files);
    if (!files.length) {
      out(
        `no backups of ${home} yet — the daemon writes one at every start of an existing store, ` +
          `or take one now with 'spl backup'${dirs.length ? ` (looked in ${dirs.join(", ")})` : ""}`,
      );
      return;
    }
    const label = (f: (typeof files)[number]) =>
      f.kind === "latest" ? "startup (latest)" : f.kind === "max" ? "largest ever (.max, never rotated out)" : f.kind === "manual" ? "spl backup" : `startup -${f.name.split(".").pop()}`;
    out(`Backups of ${home}`);
    out(
      table(
        ["WRITTEN", "RECORDS", "SIZE", "KIND", "FILE"],
        files.map((f) => [
          f.written_at.replace(/\.\d+Z$/, "Z"),
          f.records === null ? `unreadable: ${f.error}` : f.records,
          formatBytes(f.bytes),
          label(f),
          f.path,
        ]),
      ),
    );
    out("These copies live on this machine: copy one off-host too (runbook: Backup discipline).");
  },
});

export default defineCommand({
  meta: { name: "backup", description: "Take a verified snapshot of the store (works while the daemon runs)" },
  args: {
    out: { type: "string", description: "Write the snapshot to FILE (default: a timestamped file in this instance's backup dir)", valueHint: "FILE" },
    force: { type: "boolean", description: "Replace FILE if it already exists" },
    ...outputArgs,
  },
  subCommands: { list },
  async run({ args }) {
    const json = wantsJson(args);
    const { manualBackup } = await import("../lib/backup/manual");
    const { cliPhases } = await import("../lib/progress/phase");
    const b = await manualBackup({ out: args.out, force: args.force, phases: cliPhases() });
    if (json) {
      const { daemon, ...rest } = b;
      return printJson({ object: "backup", ...rest, quick_check: "ok", daemon_running: daemon !== null, daemon_pid: daemon?.pid ?? null });
    }
    out(
      [
        `Backup written: ${b.path}`,
        `  records:  ${b.records} across ${b.threads} threads (verified: quick_check ok, counted from the snapshot)`,
        `  size:     ${formatBytes(b.bytes)}`,
        `  source:   ${b.source} ${b.daemon ? `(online snapshot; daemon pid ${b.daemon.pid} kept running)` : "(daemon stopped)"}`,
        ...(b.instance_did ? [`  instance: ${b.instance_did}`] : []),
        "Copy it off this machine: a backup on the same disk is not an off-host backup.",
      ].join("\n"),
    );
  },
});

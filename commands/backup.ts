// spl backup [--out FILE] [--force] [-o json]: a verified online snapshot of the store.
// spl backup list [--remote] [-o json]: this home's backups (or the off-host copies), newest first.
// spl backup push [-o json]: push a verified, compressed snapshot off-host now ([backup.offsite]).
import { defineCommand } from "citty";
import { out, outputArgs, plural, printJson, table, wantsJson } from "../lib/cli/output";
import { formatBytes } from "../lib/progress/line";


const list = defineCommand({
  meta: { name: "list", description: "List this instance's backups with time and record count" },
  args: { remote: { type: "boolean", description: "List the off-host copies ([backup.offsite]) instead" }, ...outputArgs },
  async run({ args }) {
    const json = wantsJson(args);
    if (args.remote) return listRemoteCopies(json);
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
    out("These copies live on this machine: push one off-host with 'spl backup push' ([backup.offsite], README \"Backups and recovery\").");
  },
});

async function listRemoteCopies(json: boolean) {
  const { listRemote } = await import("../lib/backup/offsite/push");
  const { url, copies } = await listRemote();
  if (json) return printJson(copies);
  if (!copies.length) return out(`no off-host copies under ${url} yet — 'spl backup push' pushes one now`);
  out(`Off-host copies under ${url}`);
  out(
    table(
      ["WRITTEN", "SIZE", "CHECKSUM", "URL"],
      copies.map((c) => [c.written_at.replace(/\.\d+Z$/, "Z"), formatBytes(c.bytes), c.checksum ? "sha256" : "missing (incomplete)", c.url]),
    ),
  );
  out("Restore one with: spl serve --stop; spl restore <URL>");
}

const push = defineCommand({
  meta: { name: "push", description: "Push a verified, compressed snapshot off-host now ([backup.offsite] in config.toml)" },
  args: { ...outputArgs },
  async run({ args }) {
    const json = wantsJson(args);
    const { pushOffsite } = await import("../lib/backup/offsite/push");
    const { cliPhases } = await import("../lib/progress/phase");
    const r = await pushOffsite({ phases: cliPhases() });
    if (json) return printJson(r);
    const ratio = r.bytes ? (r.compressed_bytes / r.bytes) * 100 : 0;
    out(
      [
        `Pushed ${r.url}`,
        `  records:  ${r.records} across ${r.threads} threads (verified: quick_check ok, sha256 ${r.sha256.slice(0, 16)}… beside it)`,
        `  size:     ${formatBytes(r.compressed_bytes)} compressed (${ratio.toFixed(0)}% of ${formatBytes(r.bytes)})`,
        ...(r.deleted.length ? [`  retention: deleted ${plural(r.deleted.length, "copy", "copies")} older than keep_days`] : []),
      ].join("\n"),
    );
  },
});

export default defineCommand({
  meta: { name: "backup", description: "Take a verified snapshot of the store (works while the daemon runs)" },
  args: {
    out: { type: "string", description: "Write the snapshot to FILE (default: a timestamped file in this instance's backup dir)", valueHint: "FILE" },
    force: { type: "boolean", description: "Replace FILE if it already exists" },
    ...outputArgs,
  },
  subCommands: { list, push },
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

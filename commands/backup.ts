// spl backup [--out FILE] [--force] [-o json]: a verified online snapshot of the store.
// spl backup list [--remote] [-o json]: this home's backups (or the off-host copies), newest first.
// spl backup push [-o json]: push a verified, compressed snapshot off-host now ([backup.offsite]).
import { defineCommand } from "citty";
import { formatDuration, out, outputArgs, plural, printJson, table, wantsJson } from "../lib/cli/output";
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
  const { offsiteConfig } = await import("../lib/backup/offsite/push");
  const { remoteFor } = await import("../lib/backup/offsite/aws-chain");
  const { summarize } = await import("../lib/backup/offsite/summary");
  const { homePaths } = await import("../lib/paths");
  const paths = homePaths();
  const cfg = offsiteConfig(paths);
  const folders = await summarize(remoteFor(cfg.url, paths, cfg), paths);
  if (json) return printJson({ object: "remote_backups", url: cfg.url, folders });
  if (!folders.length) return out(`no off-host copies under ${cfg.url} yet — 'spl backup push' pushes one now`);
  out(`Off-host copies under ${cfg.url}`);
  const age = (iso: string | null) => (iso ? `${formatDuration(Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000)))} ago` : "never");
  for (const f of folders) {
    out(`\n${f.folder}`);
    if (f.copies.length) {
      out(
        table(
          ["WRITTEN", "SIZE", "RECORDS", "SEQ", "GENERATION", "CHECKSUM", "URL"],
          f.copies.map((c) => [
            c.written_at.replace(/\.\d+Z$/, "Z"),
            formatBytes(c.bytes),
            c.meta?.records ?? "-",
            c.meta?.last_seq ?? "-",
            c.meta?.generation ?? "-",
            c.checksum ? "sha256" : "missing (incomplete)",
            c.url,
          ]),
        ),
      );
    } else out("  no snapshot yet");
    for (const r of f.replication) {
      const range = r.through_seq === null ? "not restorable yet (no snapshot of this generation)" : `seq ${r.from_seq}..${r.through_seq} (${r.from_at ?? "?"} .. ${r.through_at ?? "?"})`;
      const lag = r.behind_records === null ? "" : r.behind_records === 0 ? "; this store is fully off-host" : `; this store is ${r.behind_records} records (${formatDuration(Math.floor(r.lag_secs ?? 0))}) ahead`;
      out(`  replicated${r.current ? "" : " (older generation)"}: ${r.generation}: ${range}, ${r.segments} segments (${formatBytes(r.segment_bytes)}), newest stored ${age(r.newest_segment_at)}${lag}`);
    }
  }
  out(`\nRestore the latest with: spl serve --stop; spl restore ${cfg.url}  (or a point: --to-time T, --to-seq N; one copy: spl restore <URL>)`);
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
        `  records:  ${r.records} across ${r.threads} threads, through seq ${r.last_seq} (verified: quick_check ok, sha256 ${r.sha256.slice(0, 16)}… beside it)`,
        ...(r.generation ? [`  generation: ${r.generation} (continuous replication ships the records after it)`] : []),
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

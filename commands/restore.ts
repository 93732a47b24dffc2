// spl restore <FILE|URL> [--to-seq N | --to-time T] [--endpoint URL] [--force]: replace the store
// with a verified backup (daemon must be stopped). FILE is a store file; URL an off-host copy
// (s3://… or file://…, or a local .zst with its .sha256), or an off-host folder to restore a point
// in time from (snapshot plus replicated segments; README "Continuous replication").
import { defineCommand } from "citty";
import { out, outputArgs, printJson, wantsJson } from "../lib/cli/output";
import { UsageError } from "../lib/errors";

/** --to-time: an ISO 8601 time ("2026-11-27T12:00:00Z") or unix seconds. */
function parseTime(v: string): number {
  const ms = /^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : Date.parse(v);
  if (!Number.isFinite(ms)) throw new UsageError(`--to-time ${v} is not a time`, 'write it as ISO 8601 ("2026-11-27T12:00:00Z") or unix seconds');
  return ms;
}

export default defineCommand({
  meta: { name: "restore", description: "Restore hub.db from a backup file, an off-host copy, or a point in time off-host (moves the current files aside, never deletes)" },
  args: {
    file: { type: "positional", description: "Backup file, off-host copy URL, or off-host folder URL ('spl backup list [--remote]' shows them)", required: false },
    "to-seq": { type: "string", description: "From an off-host folder: the store as it was at this record sequence", valueHint: "N" },
    "to-time": { type: "string", description: "From an off-host folder: the store as it was at this time (ISO 8601 or unix seconds)", valueHint: "T" },
    endpoint: { type: "string", description: "S3-compatible endpoint for an s3:// URL (default: [backup.offsite] endpoint for that bucket, else AWS_ENDPOINT_URL)", valueHint: "URL" },
    region: { type: "string", description: "S3 region for an s3:// URL (default: [backup.offsite] region, else AWS_REGION)" },
    force: { type: "boolean", description: "Restore even if the current store holds more records than the backup" },
    ...outputArgs,
  },
  async run({ args }) {
    if (!args.file) throw new UsageError("which backup? 'spl restore <FILE|URL>'", "'spl backup list' (or 'spl backup list --remote') shows the backups");
    const json = wantsJson(args);
    if (args["to-seq"] !== undefined && args["to-time"] !== undefined) throw new UsageError("--to-seq and --to-time name two different points", "pass one of them");
    let seq: number | undefined;
    if (args["to-seq"] !== undefined) {
      seq = Number(args["to-seq"]);
      if (!Number.isSafeInteger(seq) || seq < 1) throw new UsageError(`--to-seq ${args["to-seq"]} is not a record sequence`, "pass a whole number >= 1 ('spl backup list --remote' shows the replicated range)");
    }
    const timeMs = args["to-time"] !== undefined ? parseTime(args["to-time"]) : undefined;
    if (args.endpoint !== undefined && !/^https?:\/\/[^@\s]+$/.test(args.endpoint)) throw new UsageError(`--endpoint ${args.endpoint} is not an http(s) URL`, "e.g. --endpoint https://s3.eu-central-1.amazonaws.com");
    const { restoreStore } = await import("../lib/backup/restore");
    const { isRemoteUrl, isCompressed } = await import("../lib/backup/offsite/fetch");
    const { cliPhases } = await import("../lib/progress/phase");
    const offsite = isRemoteUrl(args.file) || isCompressed(args.file);
    if (!offsite && (seq !== undefined || timeMs !== undefined)) throw new UsageError("--to-seq and --to-time restore from an off-host folder URL", "e.g. spl restore s3://bucket/prefix --to-time 2026-11-27T12:00:00Z");
    let r;
    if (offsite) {
      const { restoreOffsite } = await import("../lib/backup/offsite/restore");
      r = await restoreOffsite(args.file, { force: args.force, seq, timeMs, endpoint: args.endpoint, region: args.region, phases: cliPhases() });
    } else {
      r = { ...(await restoreStore(args.file, { force: args.force, phases: cliPhases() })), pitr: null };
    }
    if (json) return printJson({ object: "restore", ...r });
    const p = r.pitr;
    out(
      [
        `Restored ${r.restored_from}`,
        `      to ${r.store}`,
        `  records:  ${r.records} across ${r.threads} threads (verified: ${offsite ? "sha256, every record id, and " : ""}quick_check ok)`,
        ...(p
          ? [
              `  point:    ${p.target} → through seq ${p.restored_through.seq}${p.restored_through.at ? ` (accepted ${p.restored_through.at})` : ""}`,
              `  from:     ${p.base}${p.segments ? ` + ${p.segments} segments (${p.segment_records} records)` : ""}${p.generation ? `, generation ${p.generation}` : ""}`,
              ...p.notes.map((n) => `  note: ${n}`),
            ]
          : []),
        ...(r.instance_did ? [`  instance: ${r.instance_did}`] : []),
        ...(r.last_id ? [`  last id:  ${r.last_id}`] : []),
        ...(r.moved_aside.length ? [`  moved aside (not deleted): ${r.moved_aside.join(", ")}`] : ["  (there was no store to move aside)"]),
        ...r.notes.map((n) => `  note: ${n}`),
        "Next: spl serve --daemon, then spl status",
      ].join("\n"),
    );
  },
});

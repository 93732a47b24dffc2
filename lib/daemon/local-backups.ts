// The local backups of the running daemon's home, for GET /v1/backups (the console) and the
// backup timestamps of GET /metrics: the files `spl backup list` shows, found with a directory
// listing and a stat each; a file's record count is read once per version of the file (its
// path, size and mtime), so polling costs no store opens.
import { filesIn, type BackupFile } from "../backup/catalog";
import { homeBackupDirs } from "../backup/instance-key";
import { currentDirs } from "../backup/list";
import { peekStoreFile } from "../backup/snapshot";

export type LocalBackup = Pick<BackupFile, "path" | "name" | "kind" | "written_at" | "bytes" | "records"> & { error?: string };

export class LocalBackups {
  private facts = new Map<string, { records: number | null; error?: string }>();

  constructor(
    private readonly home: string,
    private readonly instanceDid: string,
  ) {}

  private found() {
    return homeBackupDirs(this.home, currentDirs(this.home, this.instanceDid)).flatMap(filesIn);
  }

  /** Every local backup, newest first, with its record count. */
  list(): LocalBackup[] {
    const files = this.found().sort((a, b) => b.mtime_ms - a.mtime_ms);
    const seen = new Set<string>();
    const out = files.map((f) => {
      const key = `${f.path}:${f.bytes}:${f.mtime_ms}`;
      seen.add(key);
      let facts = this.facts.get(key);
      if (!facts) {
        const peek = peekStoreFile(f.path);
        this.facts.set(key, (facts = "error" in peek ? { records: null, error: peek.error } : { records: peek.records }));
      }
      return { path: f.path, name: f.name, kind: f.kind, written_at: f.written_at, bytes: f.bytes, ...facts };
    });
    for (const key of this.facts.keys()) if (!seen.has(key)) this.facts.delete(key);
    return out;
  }

  /** When the newest startup backup (hub.db.bak) and manual backup were written (ms), without opening them. */
  newest(): { startup: number | null; manual: number | null } {
    let startup: number | null = null;
    let manual: number | null = null;
    for (const f of this.found()) {
      if (f.kind === "latest") startup = Math.max(startup ?? 0, f.mtime_ms);
      else if (f.kind === "manual") manual = Math.max(manual ?? 0, f.mtime_ms);
    }
    return { startup, manual };
  }
}

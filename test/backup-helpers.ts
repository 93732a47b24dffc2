// Helpers shared by the backup / recovery / doctor / schema tests: real files, real SQLite.
import { constants, Database } from "bun:sqlite";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { expect } from "bun:test";
import { Instance } from "./harness";

export const ACTOR = "did:sync:user:tester";

export function backupsRoot(inst: Instance): string {
  return join(inst.home, ".local", "share", "syncropel", "backups");
}

export function instanceDir(inst: Instance, did: string): string {
  return join(backupsRoot(inst), `instance-${did.slice("did:sync:instance:".length)}`);
}

/** Opens a store file read-only without creating -wal/-shm or taking locks. */
export function openImmutable(path: string): Database {
  return new Database(`file:${path}?immutable=1`, constants.SQLITE_OPEN_READONLY | constants.SQLITE_OPEN_URI);
}

export interface Facts {
  quick_check: string;
  records: number;
  schema_version: number;
  last_id: string | null;
  seqs: number[];
}

export function factsOf(path: string, withSeqs = false): Facts {
  const db = openImmutable(path);
  try {
    const qc = (db.query("PRAGMA quick_check").all() as { quick_check: string }[]).map((r) => r.quick_check).join("; ");
    const records = (db.query("SELECT COUNT(*) AS n FROM records").get() as { n: number }).n;
    const v = db.query("SELECT value FROM meta WHERE key='schema_version'").get() as { value: string } | null;
    const last = db.query("SELECT id FROM records ORDER BY seq DESC LIMIT 1").get() as { id: string } | null;
    const seqs = withSeqs ? (db.query("SELECT seq FROM records ORDER BY seq").all() as { seq: number }[]).map((r) => r.seq) : [];
    return { quick_check: qc, records, schema_version: Number(v?.value ?? 0), last_id: last?.id ?? null, seqs };
  } finally {
    db.close();
  }
}

/** sha256 of every file under dir (relative path → hash). */
export function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!existsSync(dir)) return out;
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out[relative(dir, p)] = createHash("sha256").update(readFileSync(p)).digest("hex");
    }
  };
  walk(dir);
  return out;
}

export function sha256File(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

/** Emits n KNOW records on a thread through the daemon's socket (one batch request per 500). */
export async function emit(inst: Instance, n: number, thread = "th_backup_test", prefix = "fact"): Promise<string[]> {
  const ids: string[] = [];
  for (let start = 0; start < n; start += 500) {
    const records = Array.from({ length: Math.min(500, n - start) }, (_, i) => ({
      thread,
      actor: ACTOR,
      act: "KNOW",
      body: { text: `${prefix} ${start + i}` },
    }));
    const r = await inst.socket("POST", "/v1/records/batch", { records });
    expect(r.status).toBe(200);
    for (const d of r.json.data) {
      expect(d.status).toBe("created");
      ids.push(d.id);
    }
  }
  return ids;
}

/** Every record id on a thread, paged through the daemon's socket. */
export async function threadIds(inst: Instance, thread: string): Promise<Set<string>> {
  const ids = new Set<string>();
  for (let after = ""; ; ) {
    const page = await inst.socket("GET", `/v1/threads/${thread}/records?limit=1000${after ? `&after=${after}` : ""}`);
    expect(page.status).toBe(200);
    for (const r of page.json.data) ids.add(r.id);
    if (!page.json.has_more) return ids;
    after = page.json.next_cursor;
  }
}

export async function health(inst: Instance): Promise<any> {
  const h = await inst.socket("GET", "/health");
  expect(h.status).toBe(200);
  return h.json;
}

export function logLines(inst: Instance): any[] {
  const p = inst.path("logs", "spl.log");
  if (!existsSync(p)) return [];
  return readFileSync(p, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/** Starts, and expects the banner's Backup line; returns { pid, backupLine }. */
export async function startWithBanner(inst: Instance): Promise<{ pid: number; backup: string }> {
  const r = await inst.spl(["serve", "--daemon", "--port", String(inst.port)]);
  if (r.code !== 0) throw new Error(`start failed (${r.code}): ${r.stderr}${r.stdout}`);
  const pid = Number(/PID:\s+(\d+)/.exec(r.stdout)![1]);
  (await import("./harness")).track(pid);
  return { pid, backup: await settledBackupLine(inst, r.stdout) };
}

/**
 * The banner's Backup line as it reads once the backup is done: a banner printed while the
 * backup was still being written must say so (path first, then the snapshot's record count);
 * its outcome is then taken from /v1/status.
 */
export async function settledBackupLine(inst: Instance, stdout: string): Promise<string> {
  const line = /Backup:\s+(.*)/.exec(stdout)![1]!;
  const m = /^(.*) \(in progress: snapshot of \d+ records taken at start\)$/.exec(line);
  if (!m) return line;
  const settled = await inst.backupSettled();
  expect(settled?.path).toBe(m[1]!);
  return `${m[1]} (${settled!.outcome})`;
}

export async function stopOk(inst: Instance): Promise<void> {
  const r = await inst.stop();
  expect(r.code).toBe(0);
  expect(r.stdout).toContain("Stopped spl serve");
}

// Installing a verified startup snapshot without ever losing the best one (the runbook's
// trap): hub.db.bak.max first (it only ever moves to a snapshot with at least as many records),
// then hub.db.bak → hub.db.bak.1 … hub.db.bak.N, then the new snapshot becomes hub.db.bak.
// At every instant each good snapshot is reachable under some real name, and hub.db.bak is
// replaced by a single atomic rename.
import { existsSync, readdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Logger } from "../log";
import { kindOf, rotationIndex } from "./catalog";
import { replaceWithLink } from "./fsutil";
import { LATEST, MAX } from "./instance-key";
import { peekStoreFile, type StoreFacts } from "./snapshot";

export interface InstallResult {
  /** true when hub.db.bak.max now names the new snapshot. */
  maxUpdated: boolean;
  /** Records in hub.db.bak.max after installing. */
  maxRecords: number;
}

function recordsIn(path: string): number | null {
  const f = peekStoreFile(path);
  return "error" in f ? null : f.records;
}

/**
 * Offers a verified snapshot (`candidate`, holding `records` records) as <dir>/hub.db.bak.max,
 * which only ever moves to a snapshot with at least as many records as it holds. When there is
 * no readable .max yet, the largest existing snapshot in the directory seeds it first.
 */
export function offerMax(dir: string, candidate: string, records: number, log?: Pick<Logger, "warn">): InstallResult {
  const max = join(dir, MAX);
  let maxRecords: number | null = existsSync(max) ? recordsIn(max) : null;
  if (existsSync(max) && maxRecords === null) {
    // Unreadable .max: keep it for forensics under another name, and rebuild the pointer.
    const aside = `${max}.unreadable.${Math.floor(Date.now() / 1000)}`;
    renameSync(max, aside);
    log?.warn("hub.db.bak.max could not be read; moved it aside", { path: aside });
  }
  if (maxRecords === null) {
    // First run with this layout (or a backup dir from an older spl).
    let best: { path: string; records: number } | null = null;
    for (const name of safeList(dir)) {
      const kind = kindOf(name);
      if (kind === null || kind === "max" || join(dir, name) === candidate) continue;
      const n = recordsIn(join(dir, name));
      if (n !== null && (!best || n > best.records)) best = { path: join(dir, name), records: n };
    }
    if (best && best.records > records) {
      replaceWithLink(best.path, max);
      return { maxUpdated: false, maxRecords: best.records };
    }
  } else if (records < maxRecords) {
    return { maxUpdated: false, maxRecords };
  }
  replaceWithLink(candidate, max);
  return { maxUpdated: true, maxRecords: records };
}

/**
 * Installs `tmp` (a verified snapshot holding facts.records records) as <dir>/hub.db.bak,
 * keeping `keep` rotated copies. Never removes the only copy of the largest snapshot.
 */
export function installStartupSnapshot(tmp: string, facts: StoreFacts, dir: string, keep: number, log?: Pick<Logger, "warn">): InstallResult {
  const latest = join(dir, LATEST);
  const rotated = (i: number) => `${latest}.${i}`;

  // 1. hub.db.bak.max first: the largest snapshot always has a name before anything rotates.
  const result = offerMax(dir, tmp, facts.records, log);

  // 2. Rotation: .N-1 → .N … .1 → .2, then hub.db.bak is linked as .1 (it stays in place).
  if (keep > 0 && existsSync(latest)) {
    for (let i = keep - 1; i >= 1; i--) if (existsSync(rotated(i))) renameSync(rotated(i), rotated(i + 1));
    replaceWithLink(latest, rotated(1));
  }
  // Copies beyond `keep` (left when [backup] keep was lowered). .max still holds the largest.
  for (const name of safeList(dir)) {
    if (kindOf(name) === "rotated" && rotationIndex(name) > keep) rmSync(join(dir, name), { force: true });
  }

  // 3. The new snapshot takes the documented name in one atomic rename.
  renameSync(tmp, latest);
  return result;
}

function safeList(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

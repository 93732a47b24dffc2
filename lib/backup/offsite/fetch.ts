// `spl restore <s3-url|file-url|path.zst>`: download the copy and its .sha256, check the
// checksum, decompress to a temporary file beside the store; the caller then runs the usual safe
// restore on it (integrity check, record-id comparison, current store moved aside).
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { basename, resolve } from "node:path";
import { loadConfig, sectionOf } from "../../config";
import { offsiteSection } from "./config";
import { UserError } from "../../errors";
import type { HomePaths } from "../../paths";
import { fsyncFile, tempPathFor } from "../fsutil";
import { remoteFor, splitUrl } from "./remote";
import { sha256, SUM } from "./push";
import { quietPhases, type Phases } from "../../progress/phase";

export const isRemoteUrl = (s: string) => /^(s3|file):\/\//.test(s);
export const isCompressed = (s: string) => s.endsWith(".zst");

/**
 * Downloads (or reads) a compressed copy, verifies it, and writes the store file to a temporary.
 * `phases`: on a terminal, the download's live percent and rate, then one line per step.
 */
export async function fetchCopy(source: string, paths: HomePaths, phases: Phases = quietPhases): Promise<string> {
  let data: Uint8Array;
  let sumText: string;
  const name = basename(source);
  if (isRemoteUrl(source)) {
    const { root, key } = splitUrl(source);
    let cfg = null;
    try {
      cfg = sectionOf(loadConfig(paths.config), offsiteSection);
    } catch {}
    const remote = remoteFor(root, paths, cfg && source.startsWith(cfg.url) ? cfg : {});
    let bar: ReturnType<Phases["start"]> | undefined;
    data = await remote.get(key, (done, total) => (bar ??= phases.start("download", total, "bytes")).update(done));
    bar?.end(data.length);
    try {
      sumText = new TextDecoder().decode(await remote.get(key + SUM));
    } catch {
      throw new UserError(`${source}${SUM} is missing: the copy cannot be verified (an interrupted push?)`, "restore another copy ('spl backup list --remote')");
    }
  } else {
    const path = resolve(source);
    if (!existsSync(path)) throw new UserError(`${path} does not exist`, "check the path ('spl backup list --remote' shows the off-host copies)");
    data = new Uint8Array(readFileSync(path));
    if (!existsSync(path + SUM)) throw new UserError(`${path}${SUM} is missing: the copy cannot be verified`, "download the .sha256 beside the copy, then try again");
    sumText = readFileSync(path + SUM, "utf8");
  }
  const want = sumText.trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  const got = sha256(data);
  if (got !== want) {
    throw new UserError(
      `checksum mismatch: ${name} has sha256 ${got.slice(0, 16)}… but its ${SUM} says ${want.slice(0, 16) || "(nothing)"}… — the copy is damaged, nothing was replaced`,
      "restore another copy ('spl backup list --remote')",
    );
  }
  let db: Uint8Array;
  const decompressing = phases.start("decompress", data.length, "bytes");
  try {
    db = Bun.zstdDecompressSync(data);
    decompressing.end(data.length);
  } catch (err) {
    throw new UserError(`${name} passed its checksum but does not decompress (${(err as Error).message})`, "restore another copy ('spl backup list --remote')");
  }
  mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  const tmp = tempPathFor(`${paths.store}.download`);
  try {
    await Bun.write(tmp, db);
    fsyncFile(tmp);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  return tmp;
}

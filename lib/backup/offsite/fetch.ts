// Getting one object back from a remote, streamed: read its .sha256 first (a copy without one is
// refused before anything is downloaded), download into a temporary file beside the store while
// hashing (a local or file:// copy is hashed where it is), compare, then decompress in chunks,
// capped at the size the .sha256 declares. Memory stays the same whatever the size; a terminal
// shows the download and the decompression as they go.
import { mkdirSync, rmSync, statfsSync } from "node:fs";
import { basename, dirname, resolve } from "node:path";
import { UserError } from "../../errors";
import type { HomePaths } from "../../paths";
import { quietPhases, type Phases } from "../../progress/phase";
import { tempPathFor } from "../fsutil";
import { COPY } from "./listing";
import { remoteFor } from "./aws-chain";
import { DirRemote, splitUrl, type Remote, type S3Options } from "./remote";
import { fileChunks, parseSum, SUM, Tally, writeChunks, zstdDecompress, type ObjectMeta } from "./transfer";

export const isRemoteUrl = (s: string) => /^(s3|file):\/\//.test(s);
export const isCompressed = (s: string) => s.endsWith(".zst");
/** An object `spl restore` takes as one copy (rather than a folder to restore a point in time from). */
export const isCopyName = (s: string) => COPY.test(basename(s)) || isCompressed(s);

const redo = "restore another copy ('spl backup list --remote')";

/** The remote and key a copy's URL or local path names. */
export function locate(source: string, paths: HomePaths, s3: S3Options = {}): { remote: Remote; key: string } {
  if (isRemoteUrl(source)) {
    const { root, key } = splitUrl(source);
    return { remote: remoteFor(root, paths, s3), key };
  }
  const path = resolve(source);
  return { remote: new DirRemote(dirname(path)), key: basename(path) };
}

/** Bytes free where `dir` is (a cap for copies that declare no size). */
function freeBytes(dir: string): number {
  try {
    const s = statfsSync(dir);
    return Number(s.bavail) * Number(s.bsize);
  } catch {
    return Number.MAX_SAFE_INTEGER;
  }
}

/**
 * The object `key` as a verified local file: its own path for a directory remote, else a
 * temporary downloaded into `workDir` (the caller removes it when `temporary`).
 */
export async function fetchVerified(remote: Remote, key: string, workDir: string, phases: Phases): Promise<{ path: string; temporary: boolean; meta: ObjectMeta | null }> {
  const name = remote.urlOf(key);
  let sum: string;
  try {
    sum = new TextDecoder().decode(await remote.get(key + SUM, 64 * 1024));
  } catch (err) {
    if (err instanceof UserError && /does not exist/.test(err.message)) {
      throw new UserError(`${name}${SUM} is missing: the copy cannot be verified (an interrupted push?)`, redo);
    }
    throw err;
  }
  const { sha256, meta } = parseSum(sum);
  const local = remote instanceof DirRemote ? `${remote.dir}/${key}` : null;
  const size = (await remote.list(key)).find((o) => o.key === key)?.bytes ?? 0;
  const tally = new Tally();
  const bar = phases.start(local ? `verify ${basename(key)}` : `download ${basename(key)}`, size, "bytes");
  let path = local ?? tempPathFor(`${workDir}/${basename(key)}.download`);
  try {
    if (local) for await (const _ of tally.tap(fileChunks(local), bar.update));
    else await writeChunks(tally.tap(remote.getStream(key), bar.update), path);
  } catch (err) {
    if (!local) rmSync(path, { force: true });
    if (err instanceof UserError) throw err;
    throw new UserError(`cannot read ${name}: ${(err as Error).message}`, redo);
  } finally {
    bar.end(tally.bytes);
  }
  if (tally.digest() !== sha256) {
    if (!local) rmSync(path, { force: true });
    throw new UserError(
      `checksum mismatch: ${basename(key)} has sha256 ${tally.digest().slice(0, 16)}… but its ${SUM} says ${sha256.slice(0, 16) || "(nothing)"}… — the copy is damaged, nothing was replaced`,
      redo,
    );
  }
  return { path, temporary: !local, meta };
}

/** Decompresses a verified .zst into `out`, capped at its declared size (else the free space). */
export async function decompressFile(src: string, out: string, meta: ObjectMeta | null, name: string, phases: Phases): Promise<number> {
  const cap = meta?.bytes ?? freeBytes(dirname(out));
  const bar = phases.start(`decompress ${basename(name)}`, meta?.bytes ?? 0, "bytes");
  let n = 0;
  try {
    n = await writeChunks(
      (async function* () {
        for await (const chunk of zstdDecompress(fileChunks(src), cap, name, meta !== null)) {
          n += chunk.length;
          bar.update(n);
          yield chunk;
        }
      })(),
      out,
    );
  } finally {
    bar.end(n);
  }
  return n;
}

/**
 * Downloads (or reads) one copy and verifies it; answers the store file: a temporary beside the
 * store (decompressed or downloaded), or the copy itself when it is a local uncompressed file.
 */
export async function fetchCopy(source: string, paths: HomePaths, opts: { s3?: S3Options; phases?: Phases } = {}): Promise<{ path: string; temporary: boolean }> {
  const phases = opts.phases ?? quietPhases;
  const { remote, key } = locate(source, paths, opts.s3);
  mkdirSync(paths.home, { recursive: true, mode: 0o700 });
  const got = await fetchVerified(remote, key, paths.home, phases);
  if (!isCompressed(key)) return { path: got.path, temporary: got.temporary };
  const out = tempPathFor(`${paths.store}.restore`);
  try {
    await decompressFile(got.path, out, got.meta, source, phases);
    return { path: out, temporary: true };
  } catch (err) {
    rmSync(out, { force: true });
    throw err;
  } finally {
    if (got.temporary) rmSync(got.path, { force: true });
  }
}

// Streams for off-host copies: hashing and counting on the way through, zstd compression and
// capped decompression (node:zlib's zstd streams; Bun.zstd*Sync would hold whole buffers), files
// read and written in chunks, and the checksum file beside every object.
//
// The checksum file is `sha256sum` format, so `sha256sum -c` checks a downloaded copy, plus one
// comment line (which sha256sum ignores) declaring what the object holds:
//   <sha256 hex>  <name>
//   # spl {"bytes":1234567,"records":1000,"last_seq":1000,...}
// `bytes` is the uncompressed size: decompression stops as soon as it produces more (a zstd bomb
// is refused after `bytes` + one chunk, however far it would expand).
import { createHash, type Hash } from "node:crypto";
import { closeSync, createReadStream, fsyncSync, openSync, rmSync, writeSync } from "node:fs";
import { Readable, pipeline, type Transform } from "node:stream";
import zlib from "node:zlib";
import { UserError } from "../../errors";
import type { Chunks } from "./remote";

export const SUM = ".sha256";

/** What an object holds, declared in its checksum file (all but `bytes` optional). */
export interface ObjectMeta {
  /** Uncompressed size in bytes. */
  bytes: number;
  records?: number;
  /** Sequence range of the records it holds (a snapshot: last_seq only). */
  first_seq?: number;
  last_seq?: number;
  /** Id of the record just before first_seq (the chain a segment continues). */
  prev_id?: string | null;
  last_id?: string | null;
  /** created_at (unix seconds) of the first and last record. */
  first_at?: number;
  last_at?: number;
  /** The replication generation this object belongs to (README "Continuous replication"). */
  generation?: string;
}

export const sumText = (hex: string, name: string, meta?: ObjectMeta) => `${hex}  ${name}\n${meta ? `# spl ${JSON.stringify(meta)}\n` : ""}`;

export function parseSum(text: string): { sha256: string; meta: ObjectMeta | null } {
  const lines = text.split("\n");
  const sha256 = (lines[0] ?? "").trim().split(/\s+/)[0]?.toLowerCase() ?? "";
  let meta: ObjectMeta | null = null;
  for (const line of lines) {
    if (!line.startsWith("# spl ")) continue;
    try {
      const m = JSON.parse(line.slice(6));
      if (m && typeof m === "object" && Number.isSafeInteger(m.bytes) && m.bytes >= 0) meta = m;
    } catch {}
  }
  return { sha256, meta };
}

export const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** Counts and hashes what passes through `tap`. */
export class Tally {
  bytes = 0;
  private readonly hash: Hash = createHash("sha256");
  private hex: string | null = null;

  async *tap(src: Chunks, onProgress?: (bytes: number) => void): Chunks {
    for await (const chunk of src) {
      this.hash.update(chunk);
      this.bytes += chunk.length;
      onProgress?.(this.bytes);
      yield chunk;
    }
  }

  digest(): string {
    return (this.hex ??= this.hash.digest("hex"));
  }
}

export async function* fileChunks(path: string): Chunks {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) yield chunk as Uint8Array;
}

function through(src: Chunks, t: Transform): Chunks {
  return pipeline(Readable.from(src, { objectMode: false }), t, () => {}) as unknown as Chunks;
}

/** zstd level 3: fast, and about 4-6x on records. */
export function zstdCompress(src: Chunks, level = 3): Chunks {
  return through(src, zlib.createZstdCompress({ params: { [zlib.constants.ZSTD_c_compressionLevel]: level, [zlib.constants.ZSTD_c_checksumFlag]: 1 } }));
}

/** The largest zstd window a copy may ask for (16 MiB; our own use 2 MiB): bounds decoder memory. */
const WINDOW_LOG_MAX = 24;

/**
 * Decompresses `src`, refusing it as soon as it yields more than `cap` bytes or is not zstd.
 * `exact`: the cap is the declared size, and a shorter result is refused too (a copy without a
 * declared size, pushed by an older spl, is capped by the free disk space instead).
 * `name` is the object, for the error.
 */
export async function* zstdDecompress(src: Chunks, cap: number, name: string, exact = true): Chunks {
  const dec = zlib.createZstdDecompress({ params: { [zlib.constants.ZSTD_d_windowLogMax]: WINDOW_LOG_MAX } });
  let n = 0;
  try {
    for await (const chunk of through(src, dec)) {
      n += chunk.length;
      if (n > cap) {
        throw new UserError(
          exact
            ? `${name} expands to more than the ${cap} bytes its ${SUM} declares — refused (damaged, or not a copy spl wrote)`
            : `${name} expands to more than the ${cap} bytes free on this disk — refused`,
          "restore another copy ('spl backup list --remote')",
        );
      }
      yield chunk;
    }
  } catch (err) {
    dec.destroy();
    if (err instanceof UserError) throw err;
    throw new UserError(`${name} does not decompress (${(err as Error).message})`, "restore another copy ('spl backup list --remote')");
  }
  if (exact && n !== cap) throw new UserError(`${name} expands to ${n} bytes but its ${SUM} declares ${cap}`, "restore another copy ('spl backup list --remote')");
}

/** Writes chunks to `path` (created 0600) and fsyncs it; the file is removed on failure. */
export async function writeChunks(src: Chunks, path: string): Promise<number> {
  const fd = openSync(path, "w", 0o600);
  let n = 0;
  try {
    for await (const chunk of src) {
      for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
      n += chunk.length;
    }
    fsyncSync(fd);
  } catch (err) {
    closeSync(fd);
    rmSync(path, { force: true });
    throw err;
  }
  closeSync(fd);
  return n;
}

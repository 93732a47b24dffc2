// Where off-host copies live, behind one small interface: a plain directory (file:///, e.g. an
// NFS or SFTP mount) or an S3-compatible bucket (Bun's built-in S3 client; credentials from
// credentials.ts). Large objects stream both ways: an upload reads its source chunk by chunk
// (S3: a multipart upload whose parts are flushed one at a time), a download hands out chunks as
// they arrive, so memory stays the same whatever the size.
// An object only ever appears under its final name complete: a directory gets a hidden temporary
// that is renamed; S3 objects appear only when their PUT (or multipart upload) completes.
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync, createReadStream } from "node:fs";
import { dirname, join } from "node:path";
import { loadConfig, sectionOf } from "../../config";
import { UserError } from "../../errors";
import type { HomePaths } from "../../paths";
import { fsyncDir, tempPathFor, writeFileAtomic } from "../fsutil";
import { offsiteSection, type OffsiteConfig } from "./config";
import { CredentialCache, credentialFix, type ChainLookup } from "./credentials";

export interface RemoteObject {
  /** Key relative to the remote's root, "/"-separated. */
  key: string;
  bytes: number;
  /** When it was stored (ms since the epoch). */
  modifiedMs: number;
}

export type Chunks = AsyncIterable<Uint8Array>;

export interface Remote {
  /** The URL of a key, as `spl restore` takes it. */
  urlOf(key: string): string;
  /** A small object in one piece (checksum files, segments). */
  put(key: string, data: Uint8Array): Promise<void>;
  /** A large object from a stream of chunks; nothing under `key` unless all of it arrived. */
  putStream(key: string, source: Chunks): Promise<void>;
  /** A small object whole; refused above `maxBytes`. */
  get(key: string, maxBytes?: number): Promise<Uint8Array>;
  /** An object as a stream of chunks. */
  getStream(key: string): Chunks;
  list(prefix: string): Promise<RemoteObject[]>;
  delete(key: string): Promise<void>;
}

/** A URL split into its remote root and the key of one object below it (for `spl restore URL`). */
export function splitUrl(url: string): { root: string; key: string } {
  const i = url.lastIndexOf("/");
  return { root: url.slice(0, i), key: url.slice(i + 1) };
}

const SMALL_MAX = 1 << 20;

// ---- file:/// ---------------------------------------------------------------------------------

export class DirRemote implements Remote {
  constructor(readonly dir: string) {}

  urlOf(key: string) {
    return `file://${key ? join(this.dir, key) : this.dir}`;
  }

  async put(key: string, data: Uint8Array) {
    const path = join(this.dir, key);
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileAtomic(path, data); // temp name, fsync, rename, fsync the folder: never a half copy
    } catch (err) {
      throw this.explain(err);
    }
  }

  async putStream(key: string, source: Chunks) {
    const path = join(this.dir, key);
    let tmp = "";
    let fd = -1;
    try {
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      tmp = tempPathFor(path);
      fd = openSync(tmp, "w", 0o600);
      for await (const chunk of source) for (let off = 0; off < chunk.length; ) off += writeSync(fd, chunk, off, chunk.length - off);
      fsyncSync(fd);
      closeSync(fd);
      fd = -1;
      renameSync(tmp, path);
      fsyncDir(dirname(path));
    } catch (err) {
      if (fd >= 0) closeSync(fd);
      if (tmp) rmSync(tmp, { force: true });
      throw err instanceof UserError ? err : this.explain(err);
    }
  }

  async get(key: string, maxBytes = SMALL_MAX) {
    const path = join(this.dir, key);
    let size: number;
    try {
      size = statSync(path).size;
    } catch (err) {
      throw this.explain(err, key);
    }
    if (size > maxBytes) throw new UserError(`${this.urlOf(key)} is ${size} bytes, more than the ${maxBytes} expected`, "it is not a file spl wrote; remove it");
    return new Uint8Array(await Bun.file(path).arrayBuffer());
  }

  async *getStream(key: string): Chunks {
    const path = join(this.dir, key);
    try {
      statSync(path);
    } catch (err) {
      throw this.explain(err, key);
    }
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) yield chunk as Uint8Array;
  }

  async list(prefix: string) {
    const out: RemoteObject[] = [];
    const walk = (rel: string) => {
      let names: string[];
      try {
        names = readdirSync(join(this.dir, rel));
      } catch (err) {
        if (rel === "" && (err as NodeJS.ErrnoException).code !== "ENOENT") throw this.explain(err);
        return;
      }
      for (const name of names) {
        if (name.startsWith(".")) continue; // temporaries of a push in progress (or cut off)
        const key = rel ? `${rel}/${name}` : name;
        // Only folders on the way to the prefix (or below it) are read.
        if (!key.startsWith(prefix) && !prefix.startsWith(`${key}/`)) continue;
        let st;
        try {
          st = lstatSync(join(this.dir, key));
        } catch {
          continue; // deleted meanwhile (retention, compaction)
        }
        // Pushes write folders and regular files only: a symlink (dangling, looping or not), a
        // socket or a fifo under the root is someone else's, and never stops a push.
        if (st.isDirectory()) walk(key);
        else if (st.isFile() && key.startsWith(prefix)) out.push({ key, bytes: st.size, modifiedMs: st.mtimeMs });
      }
    };
    walk("");
    return out;
  }

  async delete(key: string) {
    rmSync(join(this.dir, key), { force: true });
  }

  private explain(err: unknown, key?: string): Error {
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOENT" && key) return new UserError(`${this.urlOf(key)} does not exist`, "'spl backup list --remote' shows the copies");
    if (e.code === "EACCES" || e.code === "EROFS") return new UserError(`cannot write to ${this.dir} (${e.code})`, "check the mount and its permissions");
    if (e.code === "ENOSPC") return new UserError(`${this.dir} is full (ENOSPC)`, "free space on the mount, or lower keep_days");
    return new UserError(`${this.dir}: ${e.message}`, "check that the directory (or its mount) is reachable, and that nothing but folders and copies is in the way");
  }
}

// ---- s3:// -------------------------------------------------------------------------------------

/** S3's smallest part; parts go up one at a time, so an upload holds about one part in memory. */
const PART_BYTES = 5 << 20;

export interface S3Options {
  endpoint?: string;
  region?: string;
}

export class S3Remote implements Remote {
  private client: InstanceType<typeof Bun.S3Client> | null = null;
  private clientKey = "";
  private source = "";

  constructor(
    readonly bucket: string,
    readonly prefix: string,
    private readonly creds: CredentialCache,
    private readonly opts: S3Options,
    private readonly secretsDir: string,
  ) {}

  private async s3() {
    const c = await this.creds.get();
    const id = `${c.accessKeyId}\0${c.sessionToken ?? ""}`;
    if (!this.client || id !== this.clientKey) {
      this.client = new Bun.S3Client({
        bucket: this.bucket,
        accessKeyId: c.accessKeyId,
        secretAccessKey: c.secretAccessKey,
        sessionToken: c.sessionToken,
        endpoint: this.opts.endpoint,
        region: this.opts.region ?? "us-east-1",
      });
      this.clientKey = id;
      this.source = c.source;
    }
    return this.client;
  }

  private full(key: string) {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  urlOf(key: string) {
    return `s3://${this.bucket}/${key ? this.full(key) : this.prefix}`;
  }

  async put(key: string, data: Uint8Array) {
    await this.putStream(key, (async function* () {
      yield data;
    })());
  }

  async putStream(key: string, source: Chunks) {
    // A multipart upload exists as an object only once every part is in and it is completed; a
    // failed part (after retries) aborts it. An object smaller than one part goes up as a single
    // PUT, and some S3-compatible servers keep a PUT cut off mid-way as a short object: after a
    // failed upload, remove whatever landed under the final name (an object without its .sha256
    // is never listed as complete or restored either way).
    let w: ReturnType<ReturnType<InstanceType<typeof Bun.S3Client>["file"]>["writer"]> | null = null;
    try {
      await this.call(async () => {
        const s3 = await this.s3();
        w = s3.file(this.full(key)).writer({ partSize: PART_BYTES, queueSize: 1, retry: 3 });
        let pending = 0;
        for await (const chunk of source) {
          w.write(chunk);
          pending += chunk.length;
          if (pending >= PART_BYTES) {
            await w.flush(); // back-pressure: the part is sent before more is read
            pending = 0;
          }
        }
        await w.end();
        w = null;
      }, key);
    } catch (err) {
      try {
        await (w as any)?.end(err as Error);
      } catch {}
      await this.client?.delete(this.full(key)).catch(() => {});
      throw err;
    }
  }

  async get(key: string, maxBytes = SMALL_MAX) {
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const chunk of this.getStream(key)) {
      n += chunk.length;
      if (n > maxBytes) throw new UserError(`${this.urlOf(key)} is more than the ${maxBytes} bytes expected`, "it is not a file spl wrote; remove it");
      parts.push(chunk);
    }
    return Buffer.concat(parts);
  }

  async *getStream(key: string): Chunks {
    const s3 = await this.call(() => this.s3(), key);
    const it = s3.file(this.full(key)).stream()[Symbol.asyncIterator]();
    for (;;) {
      const r = await this.call(() => it.next(), key);
      if (r.done) return;
      yield r.value as Uint8Array;
    }
  }

  async list(prefix: string) {
    const out: RemoteObject[] = [];
    const base = this.prefix ? `${this.prefix}/` : "";
    let token: string | undefined;
    do {
      const page: any = await this.call(async () => (await this.s3()).list({ prefix: base + prefix, continuationToken: token }));
      for (const o of page.contents ?? []) {
        out.push({ key: String(o.key).slice(base.length), bytes: Number(o.size ?? 0), modifiedMs: o.lastModified ? Date.parse(o.lastModified) : 0 });
      }
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async delete(key: string) {
    await this.call(async () => (await this.s3()).delete(this.full(key)), key);
  }

  /** Bun's S3 errors, as one line naming the fix (and never a credential). */
  private async call<T>(fn: () => Promise<T>, key?: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof UserError) throw err;
      const e = err as Error & { code?: string };
      const where = key ? this.urlOf(key) : `s3://${this.bucket}/${this.prefix}`;
      switch (e.code) {
        case "InvalidAccessKeyId":
        case "SignatureDoesNotMatch":
        case "AccessDenied":
        case "InvalidSecurity":
        case "ExpiredToken":
        case "InvalidToken":
          this.creds.forget();
          throw new UserError(`S3 refused the credentials for ${where} (${e.code}; credentials from ${this.source || "the credential chain"})`, credentialFix(this.secretsDir));
        case "NoSuchBucket":
          throw new UserError(`bucket '${this.bucket}' does not exist on the S3 endpoint`, "create it, or fix url in [backup.offsite]");
        case "NoSuchKey":
          throw new UserError(`${where} does not exist`, "'spl backup list --remote' shows the copies");
        case "ConnectionRefused":
        case "ConnectionClosed":
        case "FailedToOpenSocket":
        case "ECONNREFUSED":
        case "ECONNRESET":
          throw new UserError(`cannot reach the S3 endpoint for ${where} (${e.code})`, "check endpoint in [backup.offsite] (or --endpoint) and that the server is up");
      }
      throw new UserError(`S3 request for ${where} failed: ${e.code ? `${e.code}: ` : ""}${String(e.message).split("\n")[0]}`, "check [backup.offsite] and the server");
    }
  }
}

/** The bucket of an s3:// URL (null for anything else). */
export const bucketOf = (url: string) => /^s3:\/\/([^/]+)/.exec(url)?.[1] ?? null;

/**
 * Endpoint and region for `url`: explicit ones (`spl restore --endpoint`) first, then the
 * configured [backup.offsite] ones when `url` is on the configured bucket (any prefix), then
 * AWS_ENDPOINT_URL / AWS_REGION.
 */
export function s3OptionsFor(url: string, paths: HomePaths, explicit: S3Options = {}): S3Options {
  let cfg: OffsiteConfig | null = null;
  try {
    cfg = sectionOf(loadConfig(paths.config), offsiteSection);
  } catch {}
  const same = cfg && bucketOf(cfg.url) !== null && bucketOf(cfg.url) === bucketOf(url);
  return {
    endpoint: explicit.endpoint ?? (same ? cfg!.endpoint : undefined) ?? process.env.AWS_ENDPOINT_URL ?? undefined,
    region: explicit.region ?? (same ? cfg!.region : undefined) ?? process.env.AWS_REGION ?? undefined,
  };
}

/**
 * The remote that `url` (s3://bucket/prefix or file:///dir) names; `chain` finds S3 credentials
 * beyond the environment and s3.toml (aws-chain.ts's remoteFor passes the AWS SDK's).
 */
export function openRemote(url: string, paths: HomePaths, opts: S3Options, chain: ChainLookup): Remote {
  if (url.startsWith("file://")) {
    const dir = decodeURIComponent(url.slice("file://".length)) || "/";
    if (!dir.startsWith("/")) throw new UserError(`${url} is not an absolute file URL`, "write it as file:///absolute/path");
    return new DirRemote(dir.length > 1 ? dir.replace(/\/+$/, "") : dir);
  }
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw new UserError(`${url} is neither an s3:// nor a file:/// URL`, 'e.g. "s3://bucket/prefix" or "file:///mnt/offsite/spl"');
  return new S3Remote(m[1]!, m[2]!.replace(/\/+$/, ""), new CredentialCache(paths, chain), s3OptionsFor(url, paths, opts), paths.secretsDir);
}

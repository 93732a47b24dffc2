// Where off-host copies live, behind one small interface: a plain directory (file:///, e.g. an
// NFS or SFTP mount) or an S3-compatible bucket (Bun's built-in S3 client, no SDK).
// A copy only ever appears under its final name complete: a directory gets a hidden temporary
// that is renamed; S3 objects appear only when their PUT (or multipart upload) completes.
import { type Dirent, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../../errors";
import type { HomePaths } from "../../paths";
import { writeFileAtomic } from "../fsutil";
import type { OffsiteConfig } from "./config";

export interface RemoteObject {
  /** Key relative to the remote's root, "/"-separated. */
  key: string;
  bytes: number;
}

export interface Remote {
  /** The URL of a key, as `spl restore` takes it. */
  urlOf(key: string): string;
  put(key: string, data: Uint8Array): Promise<void>;
  /** The object's bytes; `progress(done, total)` as they arrive. */
  get(key: string, progress?: Progress): Promise<Uint8Array>;
  list(prefix: string): Promise<RemoteObject[]>;
  delete(key: string): Promise<void>;
}

export type Progress = (done: number, total: number) => void;

/** Reads a stream to the end, reporting bytes as they come (total: the object's size, or 0). */
async function collect(stream: ReadableStream<Uint8Array>, total: number, progress?: Progress): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let done = 0;
  for await (const chunk of stream) {
    chunks.push(chunk);
    done += chunk.byteLength;
    progress?.(done, total);
  }
  const out = new Uint8Array(done);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** A URL split into its remote root and the key of one object below it (for `spl restore URL`). */
export function splitUrl(url: string): { root: string; key: string } {
  const i = url.lastIndexOf("/");
  return { root: url.slice(0, i), key: url.slice(i + 1) };
}

// ---- file:/// ---------------------------------------------------------------------------------

export class DirRemote implements Remote {
  constructor(readonly dir: string) {}

  urlOf(key: string) {
    return `file://${join(this.dir, key)}`;
  }

  async put(key: string, data: Uint8Array) {
    const path = join(this.dir, key);
    const parent = path.slice(0, path.lastIndexOf("/"));
    try {
      mkdirSync(parent, { recursive: true, mode: 0o700 });
      writeFileAtomic(path, data); // temp name, fsync, rename, fsync the folder: never a half copy
    } catch (err) {
      throw this.explain(err);
    }
  }

  async get(key: string, progress?: Progress) {
    try {
      const path = join(this.dir, key);
      if (!progress) return new Uint8Array(readFileSync(path));
      const file = Bun.file(path);
      return await collect(file.stream(), lstatSync(path).size, progress);
    } catch (err) {
      throw this.explain(err, key);
    }
  }

  async list(prefix: string) {
    const out: RemoteObject[] = [];
    const walk = (rel: string) => {
      let entries: Dirent[];
      try {
        entries = readdirSync(join(this.dir, rel), { withFileTypes: true });
      } catch (err) {
        if (rel === "" && (err as NodeJS.ErrnoException).code !== "ENOENT") throw this.explain(err);
        return;
      }
      for (const e of entries) {
        if (e.name.startsWith(".")) continue; // temporaries of a push in progress (or cut off)
        const key = rel ? `${rel}/${e.name}` : e.name;
        // Pushes write folders and regular files only: a symlink (dangling or not), a socket or a
        // fifo under the root is someone else's, and never stops a push.
        if (e.isDirectory()) walk(key);
        else if (e.isFile() && key.startsWith(prefix)) {
          try {
            out.push({ key, bytes: lstatSync(join(this.dir, key)).size });
          } catch {} // removed meanwhile (another push's retention)
        }
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
    return new UserError(`${this.dir}: ${e.message}`, "check that the directory (or its mount) is reachable, and that nothing but folders and copies is in the way");
  }
}

// ---- s3:// -------------------------------------------------------------------------------------

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  /** Where they came from, for error messages (never the values). */
  source: string;
}

const CRED_FIX = (secretsDir: string) =>
  `set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write them to ${secretsDir}/s3.toml as access_key_id = "..." and secret_access_key = "..." (mode 0600)`;

/** S3 credentials from the environment, else <home>/secrets/s3.toml. */
export function s3Credentials(paths: HomePaths): S3Credentials {
  const id = process.env.AWS_ACCESS_KEY_ID;
  const secret = process.env.AWS_SECRET_ACCESS_KEY;
  if (id && secret) return { accessKeyId: id, secretAccessKey: secret, source: "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY" };
  const file = join(paths.secretsDir, "s3.toml");
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    throw new UserError(`no S3 credentials for off-host backups`, CRED_FIX(paths.secretsDir));
  }
  let raw: Record<string, unknown>;
  try {
    raw = Bun.TOML.parse(text) as Record<string, unknown>;
  } catch {
    throw new UserError(`${file} is not valid TOML`, CRED_FIX(paths.secretsDir));
  }
  if (typeof raw.access_key_id !== "string" || typeof raw.secret_access_key !== "string") {
    throw new UserError(`${file} lacks access_key_id or secret_access_key`, CRED_FIX(paths.secretsDir));
  }
  return { accessKeyId: raw.access_key_id, secretAccessKey: raw.secret_access_key, source: file };
}

const PART_BYTES = 8 << 20;

export class S3Remote implements Remote {
  private client: InstanceType<typeof Bun.S3Client>;
  constructor(
    readonly bucket: string,
    readonly prefix: string,
    private creds: S3Credentials,
    opts: { endpoint?: string; region?: string },
    private secretsDir: string,
  ) {
    this.client = new Bun.S3Client({
      bucket,
      accessKeyId: creds.accessKeyId,
      secretAccessKey: creds.secretAccessKey,
      endpoint: opts.endpoint,
      region: opts.region ?? "us-east-1",
    });
  }

  private full(key: string) {
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  urlOf(key: string) {
    return `s3://${this.bucket}/${this.full(key)}`;
  }

  async put(key: string, data: Uint8Array) {
    // Large copies go up as a multipart upload: the object exists only once every part is in
    // and the upload is completed; a failed part (after retries) aborts it, leaving no object.
    // A copy smaller than one part goes up as a single PUT, and some S3-compatible servers keep a
    // PUT cut off mid-way as a short object: after a failed upload, remove whatever landed under
    // the final name (a copy without its .sha256 is never listed or restored either way).
    try {
      await this.call(async () => {
        const w = this.client.file(this.full(key)).writer({ partSize: PART_BYTES, queueSize: 4, retry: 3 });
        for (let off = 0; off < data.length; off += PART_BYTES) w.write(data.subarray(off, off + PART_BYTES));
        await w.end();
      }, key);
    } catch (err) {
      await this.client.delete(this.full(key)).catch(() => {});
      throw err;
    }
  }

  async get(key: string, progress?: Progress) {
    return this.call(async () => {
      const file = this.client.file(this.full(key));
      if (!progress) return new Uint8Array(await file.arrayBuffer());
      const { size } = await file.stat();
      return collect(file.stream(), size, progress);
    }, key);
  }

  async list(prefix: string) {
    const out: RemoteObject[] = [];
    const base = this.prefix ? `${this.prefix}/` : "";
    let token: string | undefined;
    do {
      const page: any = await this.call(() => this.client.list({ prefix: base + prefix, continuationToken: token }));
      for (const o of page.contents ?? []) out.push({ key: String(o.key).slice(base.length), bytes: Number(o.size ?? 0) });
      token = page.isTruncated ? page.nextContinuationToken : undefined;
    } while (token);
    return out;
  }

  async delete(key: string) {
    await this.call(() => this.client.delete(this.full(key)), key);
  }

  /** Bun's S3 errors, as one line naming the fix (and never a credential). */
  private async call<T>(fn: () => Promise<T>, key?: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      const e = err as Error & { code?: string };
      const where = key ? this.urlOf(key) : `s3://${this.bucket}/${this.prefix}`;
      switch (e.code) {
        case "InvalidAccessKeyId":
        case "SignatureDoesNotMatch":
        case "AccessDenied":
        case "InvalidSecurity":
          throw new UserError(`S3 refused the credentials for ${where} (${e.code}; credentials from ${this.creds.source})`, CRED_FIX(this.secretsDir));
        case "NoSuchBucket":
          throw new UserError(`bucket '${this.bucket}' does not exist on the S3 endpoint`, "create it, or fix url in [backup.offsite]");
        case "NoSuchKey":
          throw new UserError(`${where} does not exist`, "'spl backup list --remote' shows the copies");
        case "ConnectionRefused":
        case "ConnectionClosed":
        case "FailedToOpenSocket":
        case "ECONNREFUSED":
        case "ECONNRESET":
          throw new UserError(`cannot reach the S3 endpoint for ${where} (${e.code})`, "check endpoint in [backup.offsite] and that the server is up");
      }
      throw new UserError(`S3 request for ${where} failed: ${e.code ? `${e.code}: ` : ""}${e.message.split("\n")[0]}`, "check [backup.offsite] and the server");
    }
  }
}

/** The remote that `url` (s3://bucket/prefix or file:///dir) names. */
export function remoteFor(url: string, paths: HomePaths, opts: Partial<Pick<OffsiteConfig, "endpoint" | "region">> = {}): Remote {
  if (url.startsWith("file://")) {
    const dir = decodeURIComponent(url.slice("file://".length)) || "/";
    if (!dir.startsWith("/")) throw new UserError(`${url} is not an absolute file URL`, "write it as file:///absolute/path");
    return new DirRemote(dir);
  }
  const m = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
  if (!m) throw new UserError(`${url} is neither an s3:// nor a file:/// URL`, 'e.g. "s3://bucket/prefix" or "file:///mnt/offsite/spl"');
  const endpoint = opts.endpoint ?? process.env.AWS_ENDPOINT_URL ?? undefined;
  const region = opts.region ?? process.env.AWS_REGION ?? undefined;
  return new S3Remote(m[1]!, m[2]!.replace(/\/+$/, ""), s3Credentials(paths), { endpoint, region }, paths.secretsDir);
}

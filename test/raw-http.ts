// Raw HTTP/1.1 over a real TCP socket: request lines and headers exactly as written (fetch would
// normalise the target, the Host and the body framing), read until the daemon closes.
import { connect } from "node:net";

export interface RawReply {
  status: number;
  headers: Record<string, string>;
  body: string;
  text: string;
  json: any;
}

function parseReply(buf: Buffer): RawReply {
  const raw = buf.toString("latin1");
  const split = raw.indexOf("\r\n\r\n");
  const head = split < 0 ? raw : raw.slice(0, split);
  let body = split < 0 ? "" : raw.slice(split + 4);
  const [statusLine, ...lines] = head.split("\r\n");
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(":");
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  if (headers["transfer-encoding"]?.includes("chunked")) {
    let out = "";
    for (let at = 0; ; ) {
      const eol = body.indexOf("\r\n", at);
      const n = parseInt(body.slice(at, eol), 16);
      if (!(n > 0)) break;
      out += body.slice(eol + 2, eol + 2 + n);
      at = eol + 2 + n + 2;
    }
    body = out;
  }
  body = Buffer.from(body, "latin1").toString("utf8");
  let json: any = null;
  try {
    json = JSON.parse(body);
  } catch {}
  return { status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine ?? "")?.[1] ?? 0), headers, body, text: raw, json };
}

/** Sends `head` (request line + headers, without the blank line) and an optional body; closes after. */
export function rawRequest(port: number, head: string, body = ""): Promise<RawReply> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const sock = connect(port, "127.0.0.1", () => {
      const framing = body ? `Content-Length: ${Buffer.byteLength(body)}\r\n` : "";
      sock.write(`${head}\r\n${framing}Connection: close\r\n\r\n${body}`);
    });
    sock.on("data", (d: Buffer) => chunks.push(d));
    sock.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" && chunks.length ? undefined : reject(e)));
    sock.on("close", () => resolve(parseReply(Buffer.concat(chunks))));
  });
}

/** Runs fn over items with at most `width` in flight. */
export async function inParallel<T, R>(items: readonly T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

/**
 * Streams a chunked body of up to `total` bytes, yielding to the event loop after every chunk so
 * an early answer is seen as soon as it arrives. Returns the answer and how much had been sent.
 */
export async function streamChunked(port: number, head: string, total: number, chunkBytes = 64 * 1024): Promise<{ reply: RawReply; sentBeforeAnswer: number; sent: number }> {
  const sock = connect(port, "127.0.0.1");
  const chunks: Buffer[] = [];
  let sent = 0;
  let sentBeforeAnswer = -1;
  let closed = false;
  sock.on("data", (d: Buffer) => {
    if (sentBeforeAnswer < 0) sentBeforeAnswer = sent;
    chunks.push(d);
  });
  sock.on("error", () => {});
  const closedP = new Promise<void>((r) => sock.on("close", () => ((closed = true), r())));
  await new Promise((r) => sock.once("connect", r));
  sock.write(`${head}\r\nTransfer-Encoding: chunked\r\n\r\n`);
  const payload = Buffer.alloc(chunkBytes, 0x20);
  const frame = Buffer.concat([Buffer.from(`${chunkBytes.toString(16)}\r\n`), payload, Buffer.from("\r\n")]);
  while (sent < total && sentBeforeAnswer < 0 && !closed) {
    const flushed = sock.write(frame);
    sent += chunkBytes;
    if (!flushed) {
      await new Promise<void>((r) => {
        const poll = setInterval(() => (sentBeforeAnswer >= 0 || closed) && (clearInterval(poll), r()), 5);
        sock.once("drain", () => (clearInterval(poll), r()));
      });
    } else await new Promise((r) => setImmediate(r));
  }
  if (sentBeforeAnswer < 0 && !closed) sock.write("0\r\n\r\n");
  // Wait for the whole answer; the daemon may keep the connection open, so end our side after.
  const complete = () => {
    const r = Buffer.concat(chunks).toString("latin1");
    const split = r.indexOf("\r\n\r\n");
    const length = Number(/content-length:\s*(\d+)/i.exec(r)?.[1] ?? NaN);
    return split >= 0 && Buffer.byteLength(r.slice(split + 4), "latin1") >= length;
  };
  for (let waited = 0; !complete() && !closed && waited < 15_000; waited += 10) await new Promise((r) => setTimeout(r, 10));
  sock.destroy();
  await closedP;
  return { reply: parseReply(Buffer.concat(chunks)), sentBeforeAnswer, sent };
}

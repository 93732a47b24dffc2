// A real S3-protocol server on loopback for the off-host backup tests (s3rver, a dev dependency,
// run inside the test process), and a TCP relay that cuts an upload off part-way.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";

export const S3_KEY = "S3RVER"; // s3rver's built-in account
export const S3_SECRET = "S3RVER";

export interface S3Server {
  port: number;
  dir: string;
  stop(): Promise<void>;
}

/** Starts s3rver on 127.0.0.1 (port 0 = any free port) with the given buckets, storing under `dir`. */
export async function startS3(opts: { port?: number; dir?: string; buckets?: string[] } = {}): Promise<S3Server> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "spl-s3-"));
  const server = new S3rver({
    port: opts.port ?? 0,
    address: "127.0.0.1",
    directory: dir,
    silent: true,
    configureBuckets: (opts.buckets ?? ["spl-backups"]).map((name) => ({ name })),
  } as any);
  const info: any = await server.run();
  return { port: info.port, dir, stop: () => server.close() };
}

/** Relays TCP to `port`, closing both sides once `cutAfter` bytes went upstream. */
export function cuttingRelay(port: number, cutAfter: number): { port: number; stop(): void } {
  type Conn = { up: any; queue: Uint8Array[]; sent: number; cut: boolean };
  const relay = Bun.listen<Conn>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(client) {
        client.data = { up: null, queue: [], sent: 0, cut: false };
        Bun.connect({
          hostname: "127.0.0.1",
          port,
          socket: {
            data: (_up, d) => {
              client.write(d);
            },
            close: () => {
              client.end();
            },
          },
        }).then((up) => {
          if (client.data.cut) return up.end();
          client.data.up = up;
          for (const d of client.data.queue.splice(0)) up.write(d);
        });
      },
      data(client, d) {
        const c = client.data;
        if (c.cut) return;
        c.sent += d.length;
        if (c.sent > cutAfter) {
          c.cut = true;
          c.up?.end();
          client.end();
          return;
        }
        if (c.up) c.up.write(d);
        else c.queue.push(new Uint8Array(d));
      },
      close(client) {
        client.data.up?.end();
      },
    },
  });
  return { port: relay.port, stop: () => relay.stop(true) };
}

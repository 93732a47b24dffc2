// wrk (when installed) drives the TCP single-record figures: it costs the shared cores far less
// than a JavaScript client, so the server under test gets what a real client would leave it.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TEXT } from "./loadgen";

export const hasWrk = () => Bun.which("wrk") !== null;

export interface LoadFigures {
  requests: number;
  rate: number;
  p50_ms: number;
  p99_ms: number;
  errors: number;
}

// Same record shape as loadgen.ts benchRecord; each wrk thread writes as its own actor.
const script = (tag: string, token?: string) => `
local n = 0
local counter = 0
function setup(thread) thread:set("tid", counter); counter = counter + 1 end
local headers = { ["content-type"] = "application/json" ${token ? `, ["authorization"] = "Bearer ${token}"` : ""} }
function request()
  n = n + 1
  local body = string.format('{"act":"KNOW","actor":"did:sync:user:${tag}w%d","thread":"th_b%d","body":{"n":%d,"text":"${TEXT}"},"clock":%d,"data_type":"SCALAR"}', tid, n % 100, n, n)
  return wrk.format("POST", "/v1/records", headers, body)
end
function done(summary, latency, requests)
  io.write(string.format('{"requests":%d,"seconds":%f,"p50_us":%d,"p99_us":%d,"non2xx":%d,"errors":%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99), summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
`;

/** wrk running for `seconds` (the memory bench kills it early); `figures` settles when it ends. */
export function startWrk(url: string, seconds: number, tag: string, token?: string) {
  const dir = mkdtempSync(join(tmpdir(), "spl-wrk-"));
  const file = join(dir, "post.lua");
  writeFileSync(file, script(tag, token));
  const proc = Bun.spawn(["wrk", "-t2", "-c32", `-d${seconds}s`, "-s", file, url], { stdout: "pipe", stderr: "pipe" });
  const figures = (async (): Promise<LoadFigures> => {
    try {
      const [out, err] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      const line = out.split("\n").find((l) => l.startsWith('{"requests"'));
      if (!line) throw new Error(`wrk printed no figures: ${out}${err}`);
      const f = JSON.parse(line);
      return { requests: f.requests, rate: f.requests / f.seconds, p50_ms: f.p50_us / 1000, p99_ms: f.p99_us / 1000, errors: f.non2xx + f.errors };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  })();
  return { proc, figures };
}

export const wrkLoad = (url: string, seconds: number, tag: string, token?: string): Promise<LoadFigures> => startWrk(url, seconds, tag, token).figures;

/** loadgen.ts in its own process (the Unix socket, or TCP when wrk is missing). */
export async function bunLoad(target: string, seconds: number, tag: string, token?: string): Promise<LoadFigures> {
  const p = Bun.spawn(["bun", join(import.meta.dir, "loadgen.ts"), target, String(seconds), tag, ...(token ? [token] : [])], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(p.stdout).text(), new Response(p.stderr).text(), p.exited]);
  if (code !== 0) throw new Error(`loadgen failed: ${err}`);
  return JSON.parse(out.trim());
}

/** Single-record load on TCP: wrk when installed, else the JavaScript client. */
export const tcpLoad = (url: string, seconds: number, tag: string, token?: string) => (hasWrk() ? wrkLoad(url, seconds, tag, token) : bunLoad(url, seconds, tag, token));

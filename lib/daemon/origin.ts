// Browsers are not clients of this daemon. A web page can make a browser send requests to
// 127.0.0.1 (a text/plain POST needs no preflight), or rebind its own DNS name to it; both carry
// the page's Origin or its name in Host. So on TCP: a request whose Host is not an IP literal,
// localhost, *.localhost or a name in [server] allowed_hosts is refused, and so is one whose
// Origin is present and not this daemon's own. No CORS headers are ever sent, so a preflight
// from a foreign page fails too. The Unix socket is exempt: no browser can reach it.
import { ApiError } from "../api/http";

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/** The host part of a Host header value ("name:port", "[v6]:port"), lower-cased; null if malformed. */
function hostName(value: string): string | null {
  const v = value.toLowerCase();
  const m = /^(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::\d{1,5})?$/.exec(v);
  return m ? m[1]! : null;
}

/** Names that cannot be rebound: IP literals and the loopback names; plus what the operator allowed. */
export function isAllowedHost(name: string, allowed: readonly string[]): boolean {
  if (name.startsWith("[") || IPV4.test(name)) return true;
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  return allowed.some((a) => a.toLowerCase() === name);
}

/** A 403 for a browser-shaped request on TCP, or null to let it through. */
export function refuseForeign(request: Request, allowedHosts: readonly string[]): ApiError | null {
  const host = request.headers.get("host");
  if (host === null || !hostAllowed(host, allowedHosts)) {
    return new ApiError(
      403,
      "FORBIDDEN_HOST",
      `Host ${JSON.stringify(host ?? "")} is not a name this daemon answers to — use an IP address or localhost, or add the name to [server] allowed_hosts in config.toml`,
    );
  }
  const origin = request.headers.get("origin");
  if (origin !== null && !sameOrigin(origin, host!)) {
    return new ApiError(
      403,
      "FORBIDDEN_ORIGIN",
      `requests from web pages (Origin ${JSON.stringify(origin)}) are refused — call the API from a program, not a browser`,
    );
  }
  return null;
}

// Host values already judged allowed, per allow-list: a client sends the same Host on every request,
// and two regular expressions per request showed up in the ingest profile. Bounded, and only
// allowed values are kept, so a client cycling Host values cannot grow it.
const allowedSeen = new WeakMap<readonly string[], Set<string>>();

function hostAllowed(host: string, allowedHosts: readonly string[]): boolean {
  let seen = allowedSeen.get(allowedHosts);
  if (seen?.has(host)) return true;
  const name = hostName(host);
  if (name === null || !isAllowedHost(name, allowedHosts)) return false;
  if (!seen) allowedSeen.set(allowedHosts, (seen = new Set()));
  if (seen.size >= 64) seen.clear();
  seen.add(host);
  return true;
}

function sameOrigin(origin: string, host: string): boolean {
  const o = origin.toLowerCase();
  const h = host.toLowerCase();
  return o === `http://${h}` || o === `https://${h}`;
}

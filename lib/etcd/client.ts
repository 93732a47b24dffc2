// A small client for etcd's v3 API through its JSON gateway (HTTP POST of the protobuf messages
// as JSON, keys and values in base64, 64-bit integers as strings), over fetch: what leader
// election, membership with leases and watched control keys need, nothing more. It tries the
// configured endpoints in turn (a cluster member that does not answer is skipped), authenticates
// with a username and password when given (the gateway does not read TLS client certificates'
// names, but a client certificate is presented when configured), and trusts a configured CA.
// Used by automatic failover (README "Automatic failover with etcd").

export interface EtcdOptions {
  endpoints: string[];
  /** PEM contents: etcd's CA, and a client certificate with its key. */
  tls?: { ca?: string; cert?: string; key?: string };
  username?: string;
  password?: string;
  /** Per request (default 3 s). */
  timeoutMs?: number;
}

export interface KeyValue {
  key: string;
  value: string;
  createRevision: number;
  modRevision: number;
  /** The lease the key is attached to ("0": none). */
  lease: string;
}

export interface WatchEvent {
  type: "PUT" | "DELETE";
  kv: KeyValue;
  /** The revision of the write that made this event. */
  revision: number;
}

/** etcd did not answer (every endpoint tried), or refused the request: one line naming which. */
export class EtcdError extends Error {
  constructor(
    message: string,
    /** true when no endpoint answered at all (a partition or an outage, not a refusal). */
    readonly unreachable = false,
  ) {
    super(message);
    this.name = "EtcdError";
  }
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string | undefined) => (s ? Buffer.from(s, "base64").toString("utf8") : "");
const num = (v: unknown) => (v === undefined || v === null ? 0 : Number(v));

/** The end of the key range holding every key that starts with `prefix`. */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix, "utf8");
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      bytes[i]!++;
      return bytes.subarray(0, i + 1).toString("latin1");
    }
  }
  return "\0";
}

function toKv(raw: any): KeyValue {
  return { key: unb64(raw?.key), value: unb64(raw?.value), createRevision: num(raw?.create_revision), modRevision: num(raw?.mod_revision), lease: String(raw?.lease ?? "0") };
}

/** The keys a transaction's range operation read (one of `txn(...).responses`). */
export function rangeOf(response: any): KeyValue[] {
  return (response?.response_range?.kvs ?? []).map(toKv);
}

/** A comparison of a transaction (etcd's Compare message), by key. */
export type Compare =
  | { key: string; target: "CREATE"; createRevision: number; result?: "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL" }
  | { key: string; target: "MOD"; modRevision: number; result?: "EQUAL" | "GREATER" | "LESS" | "NOT_EQUAL" }
  | { key: string; target: "VALUE"; value: string; result?: "EQUAL" | "NOT_EQUAL" }
  | { key: string; target: "LEASE"; lease: string; result?: "EQUAL" | "NOT_EQUAL" };

/** An operation of a transaction branch. */
export type Op = { put: { key: string; value: string; lease?: string } } | { delete: { key: string; prefix?: boolean } } | { range: { key: string; prefix?: boolean } };

function compareJson(c: Compare): Record<string, unknown> {
  const base = { key: b64(c.key), target: c.target, result: c.result ?? "EQUAL" };
  switch (c.target) {
    case "CREATE":
      return { ...base, create_revision: String(c.createRevision) };
    case "MOD":
      return { ...base, mod_revision: String(c.modRevision) };
    case "VALUE":
      return { ...base, value: b64(c.value) };
    case "LEASE":
      return { ...base, lease: c.lease };
  }
}

function opJson(op: Op): Record<string, unknown> {
  if ("put" in op) return { request_put: { key: b64(op.put.key), value: b64(op.put.value), ...(op.put.lease ? { lease: op.put.lease } : {}) } };
  if ("delete" in op) return { request_delete_range: { key: b64(op.delete.key), ...(op.delete.prefix ? { range_end: b64(prefixEnd(op.delete.key)) } : {}) } };
  return { request_range: { key: b64(op.range.key), ...(op.range.prefix ? { range_end: b64(prefixEnd(op.range.key)) } : {}) } };
}

export class EtcdClient {
  private readonly endpoints: string[];
  private readonly tls: { ca?: string; cert?: string; key?: string } | undefined;
  private readonly timeoutMs: number;
  private token: string | null = null;
  /** The endpoint that answered last (tried first next time). */
  private preferred = 0;

  constructor(private readonly opts: EtcdOptions) {
    if (!opts.endpoints.length) throw new Error("etcd needs at least one endpoint");
    this.endpoints = opts.endpoints.map((e) => e.replace(/\/+$/, ""));
    this.tls = opts.tls?.ca || opts.tls?.cert ? opts.tls : undefined;
    this.timeoutMs = opts.timeoutMs ?? 3000;
  }

  /** One POST to the first endpoint that answers; the parsed answer, or EtcdError. */
  async call(path: string, body: unknown, signal?: AbortSignal, reauthenticated = false): Promise<any> {
    let lastWhy = "";
    for (let i = 0; i < this.endpoints.length; i++) {
      const at = (this.preferred + i) % this.endpoints.length;
      const endpoint = this.endpoints[at]!;
      let res: Response;
      try {
        res = await this.post(endpoint, path, body, AbortSignal.any([AbortSignal.timeout(this.timeoutMs), ...(signal ? [signal] : [])]));
      } catch (err) {
        if (signal?.aborted) throw new EtcdError("cancelled");
        if (err instanceof EtcdError) throw err; // etcd answered, refusing the user: every member would
        lastWhy = `${endpoint}: ${(err as Error).name === "TimeoutError" ? `no answer within ${this.timeoutMs / 1000} s` : "cannot connect"}`;
        continue;
      }
      const text = await res.text();
      let json: any = null;
      try {
        json = text ? JSON.parse(text) : {};
      } catch {}
      if (res.status === 200) {
        this.preferred = at;
        return json;
      }
      const why = json?.message ?? json?.error ?? text.slice(0, 200);
      if (res.status === 401 || /invalid auth token|token is expired/.test(String(why))) {
        this.token = null; // re-authenticate once, then give up
        if (this.opts.username && !reauthenticated) return this.call(path, body, signal, true);
      }
      // A member without a leader answers 503: another member may have one.
      if (res.status >= 500) {
        lastWhy = `${endpoint}: ${res.status} ${why}`;
        continue;
      }
      throw new EtcdError(`etcd refused ${path}: ${why}`);
    }
    throw new EtcdError(`etcd is unreachable (${lastWhy}) — check [fleet.etcd] endpoints and that the cluster has a quorum: etcdctl --endpoints ${this.endpoints.join(",")} endpoint health`, true);
  }

  private async post(endpoint: string, path: string, body: unknown, signal: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (this.opts.username) headers.authorization = await this.authToken(endpoint, signal);
    return fetch(`${endpoint}${path}`, { method: "POST", headers, body: JSON.stringify(body), signal, ...(this.tls ? { tls: this.tls } : {}) } as RequestInit);
  }

  private async authToken(endpoint: string, signal: AbortSignal): Promise<string> {
    if (this.token) return this.token;
    const res = await fetch(`${endpoint}/v3/auth/authenticate`, { method: "POST", body: JSON.stringify({ name: this.opts.username, password: this.opts.password ?? "" }), signal, ...(this.tls ? { tls: this.tls } : {}) } as RequestInit);
    const json: any = await res.json().catch(() => null);
    if (res.status !== 200 || !json?.token) throw new EtcdError(`etcd refused user ${this.opts.username}: ${json?.message ?? res.status} — check the username and password file in [fleet.etcd]`);
    this.token = String(json.token);
    return this.token;
  }

  /** A lease of `ttlSecs`; its ID (a 64-bit integer, kept as a string). */
  async grant(ttlSecs: number): Promise<{ id: string; ttl: number }> {
    const r = await this.call("/v3/lease/grant", { TTL: String(ttlSecs) });
    return { id: String(r.ID), ttl: num(r.TTL) };
  }

  /** Renews a lease; the TTL left, or 0 when the lease is gone (expired or revoked). */
  async keepAlive(id: string): Promise<number> {
    const r = await this.call("/v3/lease/keepalive", { ID: id });
    return num(r?.result?.TTL);
  }

  async revoke(id: string): Promise<void> {
    await this.call("/v3/lease/revoke", { ID: id }).catch((err) => {
      if (!/not found/i.test((err as Error).message)) throw err;
    });
  }

  async put(key: string, value: string, lease?: string): Promise<number> {
    const r = await this.call("/v3/kv/put", { key: b64(key), value: b64(value), ...(lease ? { lease } : {}) });
    return num(r?.header?.revision);
  }

  async get(key: string): Promise<KeyValue | null> {
    const r = await this.call("/v3/kv/range", { key: b64(key) });
    return r?.kvs?.length ? toKv(r.kvs[0]) : null;
  }

  /** Every key under `prefix`, and the store's revision when it was read. */
  async list(prefix: string): Promise<{ kvs: KeyValue[]; revision: number }> {
    const r = await this.call("/v3/kv/range", { key: b64(prefix), range_end: b64(prefixEnd(prefix)) });
    return { kvs: (r?.kvs ?? []).map(toKv), revision: num(r?.header?.revision) };
  }

  async delete(key: string, opts: { prefix?: boolean } = {}): Promise<number> {
    const r = await this.call("/v3/kv/deleterange", { key: b64(key), ...(opts.prefix ? { range_end: b64(prefixEnd(key)) } : {}) });
    return num(r?.deleted);
  }

  /** A transaction: if every comparison holds, `success` runs, else `failure`. */
  async txn(compare: Compare[], success: Op[], failure: Op[] = []): Promise<{ succeeded: boolean; revision: number; responses: any[] }> {
    const r = await this.call("/v3/kv/txn", { compare: compare.map(compareJson), success: success.map(opJson), failure: failure.map(opJson) });
    return { succeeded: r?.succeeded === true, revision: num(r?.header?.revision), responses: r?.responses ?? [] };
  }

  /**
   * Watches `key` (or every key under it with `prefix`) from `fromRevision` on, calling `onEvents`
   * for each batch, until `signal` aborts or the stream ends; resolves with the last revision seen
   * so a caller can resume. A compacted start revision is reported through EtcdError.
   */
  async watch(key: string, opts: { prefix?: boolean; fromRevision?: number; signal: AbortSignal }, onEvents: (events: WatchEvent[]) => void): Promise<number> {
    const request = { create_request: { key: b64(key), ...(opts.prefix ? { range_end: b64(prefixEnd(key)) } : {}), ...(opts.fromRevision ? { start_revision: String(opts.fromRevision) } : {}) } };
    let last = opts.fromRevision ? opts.fromRevision - 1 : 0;
    let lastWhy = "";
    for (let i = 0; i < this.endpoints.length; i++) {
      const endpoint = this.endpoints[(this.preferred + i) % this.endpoints.length]!;
      let res: Response;
      try {
        res = await this.post(endpoint, "/v3/watch", request, opts.signal);
      } catch (err) {
        if (opts.signal.aborted) return last;
        if (err instanceof EtcdError) throw err; // the user refused
        lastWhy = `${endpoint}: cannot connect`;
        continue;
      }
      if (res.status !== 200 || !res.body) {
        lastWhy = `${endpoint}: ${res.status}`;
        continue;
      }
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffered = "";
      try {
        for (;;) {
          const { done, value } = await reader.read();
          if (done) return last;
          buffered += decoder.decode(value, { stream: true });
          let nl: number;
          while ((nl = buffered.indexOf("\n")) >= 0) {
            const line = buffered.slice(0, nl).trim();
            buffered = buffered.slice(nl + 1);
            if (!line) continue;
            const msg = JSON.parse(line);
            const result = msg.result ?? {};
            if (result.compact_revision && num(result.compact_revision) > 0) throw new EtcdError(`etcd compacted the history past revision ${last + 1}`);
            if (result.canceled) throw new EtcdError(`etcd cancelled the watch: ${result.cancel_reason ?? "no reason given"}`);
            const events: WatchEvent[] = (result.events ?? []).map((e: any) => ({ type: e.type === "DELETE" ? "DELETE" : "PUT", kv: toKv(e.kv), revision: num(e.kv?.mod_revision) }));
            if (events.length) {
              last = Math.max(last, ...events.map((e) => e.revision));
              onEvents(events);
            }
          }
        }
      } catch (err) {
        if (opts.signal.aborted) return last;
        if (err instanceof EtcdError) throw err;
        return last; // the stream broke: the caller resumes from `last`
      } finally {
        reader.cancel().catch(() => {});
      }
    }
    throw new EtcdError(`etcd is unreachable for a watch (${lastWhy})`, true);
  }
}

// Member-to-member HTTP (heartbeats, fleet control, fan-out sends and reports, the fleet-status
// proxy): one client with one credential, the epoch on every call, the CA members trust,
// timeouts that grow with the payload, capped jittered retries, and one error text. Every call a
// daemon makes to another member goes through it (ARCHITECTURE.md "Peers", "The fleet protocol");
// `spl doctor`'s plain /health probe of the coordinator is the CLI's own.
import { isTlsFailure } from "./net";

/** A call that got no usable answer: the peer did not answer, or refused. One line, with the fix. */
export class PeerError extends Error {
  constructor(
    message: string,
    /** The peer's HTTP status and error code when it answered; undefined when it did not. */
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
    this.name = "PeerError";
  }
}

export interface PeerAnswer<T = any> {
  status: number;
  /** The JSON answer (null when the body was not JSON). */
  body: T;
}

export interface PeerCallOptions {
  /** Base timeout before the payload's share is added (default 5 s). */
  timeoutMs?: number;
  /** Further attempts after a failure to connect or a 5xx (default 0), with capped jittered backoff. */
  retries?: number;
  /** Ends waiting and retrying early (the service is stopping). */
  signal?: AbortSignal;
  /** Another bearer for this call only (a join credential, exchanged for the member credential). */
  bearer?: string;
}

/** The headers every member-to-member call carries: the epoch the caller knows, and its coordinator. */
export const EPOCH_HEADER = "x-syncropel-epoch";
export const COORDINATOR_HEADER = "x-syncropel-coordinator";

/** The epoch a peer said it knows (a 409 STALE_EPOCH answer, or the epoch headers of an answer), and who holds it. */
export interface PeerEpoch {
  epoch: number;
  coordinator_url: string | null;
}

const BASE_TIMEOUT_MS = 5000;
/** A slow link still moves this much per second: the timeout grows by 1 s per this many bytes. */
const SLOW_LINK_BYTES_PER_SEC = 32 * 1024;
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;

/** How long to wait for a call carrying `bytes`: the base plus what a slow link needs for them. */
export function timeoutFor(bytes: number, baseMs = BASE_TIMEOUT_MS): number {
  return baseMs + Math.ceil((bytes / SLOW_LINK_BYTES_PER_SEC) * 1000);
}

/** The delay before retry `attempt` (1-based): doubling from `firstMs` (0.5 s), capped, ±25% jitter. */
export function backoffMs(attempt: number, capMs = MAX_BACKOFF_MS, firstMs = FIRST_BACKOFF_MS): number {
  const plain = Math.min(capMs, firstMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(plain * (0.75 + Math.random() * 0.5));
}

/** A body already serialised (a caller that sized it need not stringify it twice). */
export class JsonText {
  constructor(readonly text: string) {}
}

export class PeerClient {
  private credential: () => string | null = () => null;
  private fencing: () => { epoch: number; coordinator: string | null } | null = () => null;
  private epochHandler: (told: PeerEpoch, from: string) => void = () => {};
  private tls: { ca: string } | undefined;

  /** Where the bearer sent with every call comes from (read per call, so a rotation applies at once). */
  authenticate(source: () => string | null): void {
    this.credential = source;
  }

  /** The epoch (and its coordinator's URL) stamped on every call; null sends none. */
  fence(source: () => { epoch: number; coordinator: string | null } | null): void {
    this.fencing = source;
  }

  /** Called with the epoch every answer names (its headers, or a 409 STALE_EPOCH body): a peer may know a higher one. */
  onEpoch(handler: (told: PeerEpoch, from: string) => void): void {
    this.epochHandler = handler;
  }

  /** The CA (PEM) that https peers must present a certificate from; null: the system roots. */
  trust(caPem: string | null): void {
    this.tls = caPem ? { ca: caPem } : undefined;
  }

  /**
   * One call; any HTTP answer is returned, whatever its status. Throws PeerError only when the peer
   * did not answer (after the retries): cannot connect, or no answer within the timeout.
   */
  async request<T = any>(endpoint: string, method: "GET" | "POST", path: string, body?: unknown, opts: PeerCallOptions = {}): Promise<PeerAnswer<T>> {
    const text = body === undefined ? undefined : body instanceof JsonText ? body.text : JSON.stringify(body);
    const timeoutMs = timeoutFor(text?.length ?? 0, opts.timeoutMs);
    for (let attempt = 0; ; attempt++) {
      const token = opts.bearer ?? this.credential();
      const fence = this.fencing();
      let failure: PeerError;
      try {
        const signals = [AbortSignal.timeout(timeoutMs), ...(opts.signal ? [opts.signal] : [])];
        const headers: Record<string, string> = {};
        if (text) headers["content-type"] = "application/json";
        if (token) headers.authorization = `Bearer ${token}`;
        if (fence) {
          headers[EPOCH_HEADER] = String(fence.epoch);
          if (fence.coordinator) headers[COORDINATOR_HEADER] = fence.coordinator;
        }
        const res = await fetch(`${endpoint}${path}`, { method, headers, body: text, signal: AbortSignal.any(signals), tls: this.tls } as RequestInit);
        const raw = await res.text();
        let parsed: any = null;
        try {
          parsed = raw ? JSON.parse(raw) : null;
        } catch {}
        if (res.status === 409 && parsed?.code === "STALE_EPOCH" && typeof parsed.epoch === "number") {
          this.epochHandler({ epoch: parsed.epoch, coordinator_url: typeof parsed.coordinator_url === "string" ? parsed.coordinator_url : null }, endpoint);
        } else if (res.headers.has(EPOCH_HEADER)) {
          this.epochHandler({ epoch: Number(res.headers.get(EPOCH_HEADER)), coordinator_url: res.headers.get(COORDINATOR_HEADER) }, endpoint);
        }
        if (res.status < 500 || attempt >= (opts.retries ?? 0)) return { status: res.status, body: parsed };
        failure = new PeerError(`${endpoint} answered ${res.status}`, res.status, parsed?.code);
      } catch (err) {
        failure = new PeerError(peerFailure(err as Error, endpoint, timeoutMs));
        if (opts.signal?.aborted || attempt >= (opts.retries ?? 0)) throw failure;
      }
      await Bun.sleep(backoffMs(attempt + 1));
      if (opts.signal?.aborted) throw failure;
    }
  }

  /** A call that must succeed: a non-2xx answer throws PeerError naming the status, code and message. */
  async call<T = any>(endpoint: string, method: "GET" | "POST", path: string, body?: unknown, opts: PeerCallOptions = {}): Promise<T> {
    const r = await this.request<T>(endpoint, method, path, body, opts);
    if (r.status >= 200 && r.status < 300) return r.body;
    const b = r.body as { code?: string; message?: string } | null;
    const why = r.status === 401 ? `it does not accept this member's fleet credential: ${b?.message ?? "spl fleet join"}` : (b?.message ?? "see its log");
    throw new PeerError(`${endpoint} answered ${r.status}${b?.code ? ` ${b.code}` : ""}: ${why}`, r.status, b?.code);
  }
}

/** Why a call got no answer, in one line with the fix: a timeout, a certificate, or no connection. */
export function peerFailure(err: Error, endpoint: string, timeoutMs: number): string {
  if (err.name === "TimeoutError") return `no answer from ${endpoint} within ${Math.round(timeoutMs / 1000)} s — check that it runs: curl -fsS ${endpoint}/health`;
  const code = (err as NodeJS.ErrnoException).code ?? "";
  if (isTlsFailure(err)) {
    return `${endpoint} presented a certificate this member does not trust (${code || err.message}) — set [fleet] ca_file to the CA that signed it, and check that the certificate names this host`;
  }
  return `cannot connect to ${endpoint} — check that it runs: curl -fsS ${endpoint}/health`;
}

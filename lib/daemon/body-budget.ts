// The daemon-wide memory budget for request bodies in flight (README "HTTP API", `[server]
// max_body_memory`). Each route caps its own body, but many large bodies at once would still
// hold gigabytes: a 64 MiB batch takes about 8 times its size while it is held, decoded, parsed,
// validated and written. A body is admitted only while what the admitted ones take fits the
// budget; past it the answer is 503 with Retry-After, before a byte of the body is read, while
// the admitted bodies finish. One body is always admitted when none is in flight, so a batch at
// its route's limit gets through even a small budget.

/** What handling a body costs in memory, as a multiple of its size (measured: ~7.7 for a 64 MiB batch). */
export const BODY_MEMORY_FACTOR = 8;
/** Seconds a refused client is told to wait. */
const RETRY_AFTER_SECS = 1;
/** Releasing this much asks the garbage collector to run, so the next large body reuses the memory. */
const COLLECT_AFTER = 64 * 1024 * 1024;

export interface BodyBudgetStatus {
  limit_bytes: number;
  inflight_bytes: number;
  peak_bytes: number;
  refused: number;
}

export class BodyBudget {
  private inflight = 0;
  private peak = 0;
  private refused = 0;

  constructor(readonly limit: number) {}

  /**
   * Reserves what handling the request's body takes: its Content-Length, or for a chunked body
   * the route's limit (its size is unknown until read). Returns the amount to release() when the
   * request is answered (0: nothing reserved), or -1 when the budget is spent (answer refusal()).
   */
  reserve(request: Request, maxBody: number): number {
    if (maxBody === 0) return 0;
    const length = request.headers.get("content-length");
    const bytes = length === null ? maxBody : Number(length);
    // A declared body over the route's limit is refused by readBody (413) before it is read.
    if (!(bytes > 0) || bytes > maxBody) return 0;
    const cost = bytes * BODY_MEMORY_FACTOR;
    if (this.inflight > 0 && this.inflight + cost > this.limit) {
      this.refused++;
      return -1;
    }
    this.inflight += cost;
    if (this.inflight > this.peak) this.peak = this.inflight;
    return cost;
  }

  release(cost: number): void {
    if (cost <= 0) return;
    this.inflight -= cost;
    if (cost >= COLLECT_AFTER) Bun.gc(true);
  }

  refusal(): Response {
    const mib = (n: number) => `${Math.round(n / (1024 * 1024))} MiB`;
    const body = {
      object: "error",
      type: "api_error",
      code: "BODY_MEMORY_BUSY",
      message: `the daemon is handling ${mib(this.inflight)} of request bodies, its [server] max_body_memory is ${mib(this.limit)} (a body takes ${BODY_MEMORY_FACTOR}x its size) — retry after ${RETRY_AFTER_SECS} s, or send smaller batches`,
    };
    return new Response(JSON.stringify(body), { status: 503, headers: { "content-type": "application/json", "retry-after": String(RETRY_AFTER_SECS) } });
  }

  status(): BodyBudgetStatus {
    return { limit_bytes: this.limit, inflight_bytes: this.inflight, peak_bytes: this.peak, refused: this.refused };
  }
}

// Ingest and request rates over the last 15 minutes, for the console's charts (GET /v1/rates):
// per-interval counters in a ring kept in the daemon, so a console opened now shows the quarter
// hour before it (polling /v1/status would show only what happened while the page was open).
// Counting is one increment per request and per commit; a timer closes an interval every 10 s.
// Prometheus users get the same counters as spl_http_requests_total and spl_records_ingested_total.

export const RATE_INTERVAL_SECS = 10;
/** 90 intervals of 10 s: 15 minutes. */
export const RATE_SLOTS = 90;

export interface RateSlot {
  /** Unix seconds when the interval began. */
  at: number;
  /** Records committed (new ones; duplicates write nothing). */
  records: number;
  /** HTTP requests answered. */
  requests: number;
  /** Of those, answered 5xx. */
  errors: number;
}

export class RateHistory {
  readonly name = "rates";
  private current: RateSlot;
  /** Closed intervals, oldest first, at most RATE_SLOTS. */
  private closed: RateSlot[] = [];
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly now: () => number = Date.now) {
    this.current = this.fresh();
  }

  private fresh(): RateSlot {
    return { at: Math.floor(this.now() / 1000), records: 0, requests: 0, errors: 0 };
  }

  request(status: number): void {
    this.current.requests++;
    if (status >= 500) this.current.errors++;
  }

  committed(n: number): void {
    this.current.records += n;
  }

  /** Ends the current interval (the timer calls it every RATE_INTERVAL_SECS). */
  rotate(): void {
    this.closed.push(this.current);
    if (this.closed.length > RATE_SLOTS) this.closed.shift();
    this.current = this.fresh();
  }

  start(): void {
    this.timer = setInterval(() => this.rotate(), RATE_INTERVAL_SECS * 1000);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The closed intervals, oldest first, and the one still counting. */
  snapshot() {
    return {
      object: "rates" as const,
      interval_secs: RATE_INTERVAL_SECS,
      window_secs: RATE_INTERVAL_SECS * RATE_SLOTS,
      now: Math.floor(this.now() / 1000),
      slots: this.closed.map((s) => ({ ...s })),
      current: { ...this.current },
    };
  }
}

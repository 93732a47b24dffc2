// Records to one member, batched (README "Fan-out": delivery). The children a coordinator sends a
// worker, their cancels, and the reports a worker sends back are queued per member; one call at a
// time goes to each, carrying what has queued by then (one record: POST /v1/records; more: POST
// /v1/records/batch). Each record still gets the answer it would get alone:
//   - a batch answers per record; a record the batch answered with an error is posted alone for
//     its own status;
//   - an answer about the call (its credential, a stale epoch, a limit on requests, an outage, a
//     full disk) is every record's;
//   - any other answer to the whole call is one record's refusal (a write check refuses the whole
//     batch without naming the culprit; a 500 may come from one record; a batch may be too big for
//     the body budget), so the batch is split in halves and each half sent again, down to single
//     records: one bad record costs about 2·log2(n) calls, and the others are stored;
//   - no answer (cannot connect, no answer in time) rejects the records of that call and of the
//     calls it was split from, at once, with PeerError.
// The member's endpoint is looked up when a call goes out, not when a record is queued, and a
// record that waited in the queue past its own timeout is rejected unsent: the caller tries again
// with what it knows then. Safe only for records with a fixed clock (children, cancels and reports
// have one): a record sent again is then a duplicate, never a second record.
import { JsonText, type PeerAnswer, PeerError, type PeerClient } from "../peer";
import type { JsonObject } from "../records/types";

/** At most this many records, and about this many bytes, per batch (the route takes 1000 and 64 MiB). */
const MAX_RECORDS = 256;
const MAX_BYTES = 4 * 1024 * 1024;

/** How a send that failed is tried again: capped backoff, and a wait for the answer that doubles per failed try. */
export const RETRY_CAP_MS = 15_000;
export const answerTimeoutMs = (failedTries: number) => 5000 * 2 ** Math.min(failedTries, 3);

/** Answers that are about the call, not about any record in it: every record's answer. */
function aboutTheCall(r: PeerAnswer): boolean {
  const code = typeof r.body?.code === "string" ? r.body.code : "";
  if (r.status === 503) return code !== "BODY_MEMORY_BUSY"; // starting: yes; a body budget spent: try smaller
  return r.status === 401 || r.status === 429 || r.status === 502 || r.status === 504 || r.status === 507 || (r.status === 409 && code === "STALE_EPOCH");
}

interface Queued {
  /** The record's JSON, serialised once: for the batch's size and its body. */
  text: string;
  timeoutMs: number;
  /** Date.now() past which it is not sent (it waited its whole timeout in the queue). */
  deadline: number;
  resolve(answer: PeerAnswer): void;
  reject(err: Error): void;
}

interface Line {
  queue: Queued[];
  busy: boolean;
}

export class RecordSender {
  private readonly lines = new Map<string, Line>();
  private stopping = new AbortController();

  /** `endpointOf(member)`: where that member answers now (null: nowhere known). */
  constructor(
    private readonly peers: PeerClient,
    private readonly endpointOf: (member: string) => string | null | undefined,
  ) {}

  /**
   * The answer to `record` as POST /v1/records to `member` would give it (status and body).
   * Throws PeerError when the member did not answer, has no endpoint, or the record waited its
   * whole `timeoutMs` in the queue. A call waits for the longest of its records' timeouts plus
   * its payload's share.
   */
  send(member: string, record: JsonObject, timeoutMs: number): Promise<PeerAnswer> {
    let line = this.lines.get(member);
    if (!line) this.lines.set(member, (line = { queue: [], busy: false }));
    const l = line;
    return new Promise((resolve, reject) => {
      l.queue.push({ text: JSON.stringify(record), timeoutMs, deadline: Date.now() + timeoutMs, resolve, reject });
      if (!l.busy && l.queue.length === 1) setImmediate(() => void this.drain(member, l));
    });
  }

  /** Ends every call in flight and rejects what is queued (the service is stopping). */
  stop(): void {
    this.stopping.abort();
    this.stopping = new AbortController(); // a service started again sends again
    const gone = new PeerError("the daemon is stopping");
    for (const line of this.lines.values()) for (const q of line.queue.splice(0)) q.reject(gone);
  }

  private async drain(member: string, line: Line): Promise<void> {
    if (line.busy) return;
    line.busy = true;
    try {
      while (line.queue.length) {
        const now = Date.now();
        const late = line.queue.filter((q) => q.deadline <= now);
        if (late.length) {
          line.queue = line.queue.filter((q) => q.deadline > now);
          for (const q of late) q.reject(new PeerError(`not sent: it waited ${Math.round(q.timeoutMs / 1000)} s behind earlier calls to ${member}`));
          continue;
        }
        let n = 0;
        for (let bytes = 0; n < line.queue.length && n < MAX_RECORDS && (n === 0 || bytes + line.queue[n]!.text.length <= MAX_BYTES); n++) bytes += line.queue[n]!.text.length;
        const items = line.queue.splice(0, n);
        try {
          const endpoint = this.endpointOf(member);
          if (!endpoint) throw new PeerError(`${member} has no endpoint in the registry`);
          await this.post(endpoint, items);
        } catch (err) {
          const e = err instanceof PeerError ? err : new PeerError(String((err as Error)?.message ?? err));
          for (const q of items) q.reject(e); // those already answered ignore it
        }
      }
    } finally {
      line.busy = false;
      if (line.queue.length) setImmediate(() => void this.drain(member, line));
      else if (this.lines.get(member) === line) this.lines.delete(member);
    }
  }

  /** One call for `items` (split on a refusal of the whole call); throws PeerError when the member does not answer. */
  private async post(endpoint: string, items: Queued[]): Promise<void> {
    const timeoutMs = Math.max(...items.map((q) => q.timeoutMs));
    const signal = this.stopping.signal;
    if (items.length === 1) return items[0]!.resolve(await this.peers.request(endpoint, "POST", "/v1/records", new JsonText(items[0]!.text), { timeoutMs, signal }));
    const r = await this.peers.request(endpoint, "POST", "/v1/records/batch", new JsonText(`{"records":[${items.map((q) => q.text).join(",")}]}`), { timeoutMs, signal });
    const data: unknown = r.body?.data;
    if (r.status === 200 && Array.isArray(data) && data.length === items.length) {
      const again: Queued[] = [];
      items.forEach((q, i) => {
        const item = data[i] as { id?: string; status?: string } | null;
        if (item?.status === "created") q.resolve({ status: 201, body: { id: item.id } });
        else if (item?.status === "duplicate") q.resolve({ status: 200, body: { id: item.id, duplicate: true } });
        else again.push(q); // its error carries no HTTP status: asked alone, it gets one
      });
      for (const q of again) await this.post(endpoint, [q]);
      return;
    }
    if (aboutTheCall(r)) return items.forEach((q) => q.resolve(r));
    const half = Math.ceil(items.length / 2);
    await this.post(endpoint, items.slice(0, half));
    await this.post(endpoint, items.slice(half));
  }
}

// Records to one member, batched (README "Fan-out": delivery). The children a coordinator sends a
// worker, their cancels, and the reports a worker sends back are queued per endpoint and go out as
// one POST /v1/records/batch per event-loop turn (one call in flight per endpoint; what queues
// meanwhile goes in the next). Each record still gets its own answer, as if it had been posted
// alone: the batch answers per record, and records the batch refused (a write check refuses the
// whole batch, so the culprit is not named) are posted again one by one for their own answers.
import { JsonText, type PeerAnswer, PeerError, type PeerClient } from "../peer";
import type { JsonObject } from "../records/types";

/** At most this many records, and about this many bytes, per batch (the route takes 1000 and 64 MiB). */
const MAX_RECORDS = 256;
const MAX_BYTES = 4 * 1024 * 1024;

/** How a send that failed is tried again: capped backoff, and a wait for the answer that doubles per failed try. */
export const RETRY_CAP_MS = 15_000;
export const answerTimeoutMs = (failedTries: number) => 5000 * 2 ** Math.min(failedTries, 3);

const aboutTheCall = (r: PeerAnswer) => r.status >= 500 || r.status === 401 || r.status === 429 || (r.status === 409 && r.body?.code === "STALE_EPOCH");

interface Queued {
  /** The record's JSON, serialised once: for the batch's size and its body. */
  text: string;
  timeoutMs: number;
  resolve(answer: PeerAnswer): void;
  reject(err: Error): void;
}

interface Line {
  queue: Queued[];
  busy: boolean;
}

export class RecordSender {
  private readonly lines = new Map<string, Line>();

  constructor(private readonly peers: PeerClient) {}

  /**
   * The answer to `record` as POST /v1/records would give it (status and body). Throws PeerError
   * when the member did not answer. `timeoutMs` is this record's base timeout; a batch waits for
   * the longest of its records' plus its payload's share.
   */
  send(endpoint: string, record: JsonObject, timeoutMs: number): Promise<PeerAnswer> {
    let line = this.lines.get(endpoint);
    if (!line) this.lines.set(endpoint, (line = { queue: [], busy: false }));
    const l = line;
    return new Promise((resolve, reject) => {
      l.queue.push({ text: JSON.stringify(record), timeoutMs, resolve, reject });
      if (!l.busy && l.queue.length === 1) setImmediate(() => this.drain(endpoint, l));
    });
  }

  private async drain(endpoint: string, line: Line): Promise<void> {
    if (line.busy) return;
    line.busy = true;
    try {
      while (line.queue.length) {
        let n = 0;
        for (let bytes = 0; n < line.queue.length && n < MAX_RECORDS && (n === 0 || bytes + line.queue[n]!.text.length <= MAX_BYTES); n++) bytes += line.queue[n]!.text.length;
        await this.post(endpoint, line.queue.splice(0, n));
      }
    } finally {
      line.busy = false;
      if (!line.queue.length) this.lines.delete(endpoint);
    }
  }

  private async post(endpoint: string, items: Queued[]): Promise<void> {
    const timeoutMs = Math.max(...items.map((q) => q.timeoutMs));
    try {
      if (items.length === 1) return items[0]!.resolve(await this.peers.request(endpoint, "POST", "/v1/records", new JsonText(items[0]!.text), { timeoutMs }));
      const r = await this.peers.request(endpoint, "POST", "/v1/records/batch", new JsonText(`{"records":[${items.map((q) => q.text).join(",")}]}`), { timeoutMs });
      const data: unknown = r.body?.data;
      if (r.status !== 200 || !Array.isArray(data) || data.length !== items.length) {
        // An answer about the call (its credential, a stale epoch, a limit on requests, an
        // outage, a full disk) is every record's; any other is one record's refusal of the batch.
        if (aboutTheCall(r)) return items.forEach((q) => q.resolve(r));
        return void (await this.alone(endpoint, items));
      }
      const refused: Queued[] = [];
      items.forEach((q, i) => {
        const item = data[i] as { id?: string; status?: string } | null;
        if (item?.status === "created") q.resolve({ status: 201, body: { id: item.id } });
        else if (item?.status === "duplicate") q.resolve({ status: 200, body: { id: item.id, duplicate: true } });
        else refused.push(q);
      });
      await this.alone(endpoint, refused);
    } catch (err) {
      const e = err instanceof PeerError ? err : new PeerError((err as Error).message);
      for (const q of items) q.reject(e);
    }
  }

  /** Each record posted on its own, for the answer the batch could not give it. */
  private async alone(endpoint: string, items: Queued[]): Promise<void> {
    for (const q of items) {
      try {
        q.resolve(await this.peers.request(endpoint, "POST", "/v1/records", new JsonText(q.text), { timeoutMs: q.timeoutMs }));
      } catch (err) {
        q.reject(err as Error);
      }
    }
  }
}

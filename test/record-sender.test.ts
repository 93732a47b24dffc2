// Fan-out's batched sends (lib/fanout/sender.ts, README "Fan-out": delivery) against a real
// daemon: records queued in one turn go as one call, and each gets the answer it would get alone —
// when the batch answers per record, when a write check refuses the batch as a whole, when the
// answer is about the call, and when the member does not answer at all.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RecordSender } from "../lib/fanout/sender";
import { PeerClient, PeerError } from "../lib/peer";
import { freePort, Instance, waitFor } from "./harness";

const inst = new Instance();
const peers = new PeerClient();
let n = 0;
/** A record with a clock (as children, cancels and reports have): sent again, it is a duplicate. */
const rec = (text: string, over: Record<string, unknown> = {}) => ({ thread: "th_sender", actor: "did:sync:user:alice", act: "KNOW", body: { text }, clock: ++n, ...over });
const toDaemon = () => new RecordSender(peers, () => inst.url);

/** Calls answered so far, by route and status (GET /metrics). */
async function calls(): Promise<(route: string, status: number) => number> {
  const text = (await inst.http("GET", "/metrics")).text;
  return (route, status) => Number(new RegExp(`spl_http_requests_total\\{method="POST",route="${route.replaceAll("/", "\\/")}",status="${status}"\\} (\\d+)`).exec(text)?.[1] ?? 0);
}
const stored = async () => (await inst.http("GET", "/v1/records?thread=th_sender&limit=1000")).json.data.map((r: any) => r.body.text);

beforeAll(async () => {
  await inst.start();
  peers.authenticate(() => inst.token ?? null);
});
afterAll(async () => {
  await inst.stop();
});

describe("batched record sends", () => {
  test("one turn's records go as one call; each answer is its own: created, duplicate", async () => {
    const sender = toDaemon();
    const once = rec("once");
    const first = await sender.send("member", once, 5000);
    expect(first.status).toBe(201);
    const before = await calls();
    const answers = await Promise.all([sender.send("member", rec("a"), 5000), sender.send("member", once, 5000), sender.send("member", rec("b"), 5000)]);
    expect(answers.map((a) => a.status)).toEqual([201, 200, 201]);
    expect(answers[1]!.body.id).toBe(first.body.id);
    const after = await calls();
    expect(after("/v1/records/batch", 200) - before("/v1/records/batch", 200)).toBe(1);
    expect(after("/v1/records", 201) - before("/v1/records", 201)).toBe(0);
    expect(await stored()).toEqual(expect.arrayContaining(["a", "b", "once"]));
  });

  test("a record the batch answers with an error is asked alone for its status; the others are not sent again", async () => {
    const sender = toDaemon();
    const before = await calls();
    const answers = await Promise.all([sender.send("member", rec("ok-1"), 5000), sender.send("member", rec("bad", { act: "SHOUT" }), 5000), sender.send("member", rec("ok-2"), 5000)]);
    expect(answers.map((a) => a.status)).toEqual([201, 400, 201]);
    const after = await calls();
    expect(after("/v1/records/batch", 200) - before("/v1/records/batch", 200)).toBe(1);
    expect(after("/v1/records", 400) - before("/v1/records", 400)).toBe(1);
    expect(after("/v1/records", 201) - before("/v1/records", 201)).toBe(0);
    expect(await stored()).toEqual(expect.arrayContaining(["ok-1", "ok-2"]));
  });

  test("a write check's refusal of the whole batch is narrowed down by halves: the refused record gets its own 403, the other 15 are stored, in far fewer than 16 calls", async () => {
    const sender = toDaemon();
    const texts = Array.from({ length: 16 }, (_, i) => `split-${i}`);
    const before = await calls();
    const answers = await Promise.all(texts.map((t, i) => sender.send("member", i === 11 ? rec(t, { thread: "th_auth" }) : rec(t), 5000)));
    expect(answers.map((a) => a.status)).toEqual(texts.map((_, i) => (i === 11 ? 403 : 201)));
    expect(answers[11]!.body.code).toBe("RESERVED_THREAD");
    const after = await calls();
    const made = ["/v1/records", "/v1/records/batch"].flatMap((r) => [200, 201, 403].map((s) => after(r, s) - before(r, s))).reduce((a, b) => a + b, 0);
    expect(made).toBeLessThanOrEqual(2 * Math.log2(16) + 1);
    expect(await stored()).toEqual(expect.arrayContaining(texts.filter((_, i) => i !== 11)));
    const auth = await inst.http("GET", "/v1/records?thread=th_auth&limit=1000");
    expect(auth.status).toBe(200);
    expect(auth.json.data.map((r: any) => r.body.text)).not.toContain("split-11");
  });

  test("an answer about the call (a refused credential) is every record's, in one call", async () => {
    const stranger = new PeerClient();
    stranger.authenticate(() => "spl_not_a_token");
    const sender = new RecordSender(stranger, () => inst.url);
    const before = await calls();
    const answers = await Promise.all([sender.send("member", rec("x"), 5000), sender.send("member", rec("y"), 5000)]);
    expect(answers.map((a) => a.status)).toEqual([401, 401]);
    const after = await calls();
    expect(after("/v1/records/batch", 401) - before("/v1/records/batch", 401)).toBe(1);
    expect(after("/v1/records", 401) - before("/v1/records", 401)).toBe(0);
  });

  test("a member that takes the connection and never answers: its records are rejected with PeerError, and one that waited its whole timeout behind them is rejected unsent", async () => {
    let requests = 0;
    const silent = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data: (_s, d) => void (requests += d.toString().split("POST ").length - 1) } });
    try {
      const sender = new RecordSender(peers, () => `http://127.0.0.1:${silent.port}`);
      const first = Promise.allSettled([sender.send("member", rec("x"), 300), sender.send("member", rec("y"), 300)]);
      await waitFor("the first call to reach the silent member", () => requests, { until: (r) => r >= 1 });
      const behind = Promise.allSettled([sender.send("member", rec("z"), 100)]);
      for (const s of [...(await first), ...(await behind)]) {
        expect(s.status).toBe("rejected");
        expect((s as PromiseRejectedResult).reason).toBeInstanceOf(PeerError);
      }
      expect(((await behind)[0] as PromiseRejectedResult).reason.message).toContain("not sent");
      expect(requests).toBe(1);
    } finally {
      silent.stop(true);
    }
  });

  test("a member with no endpoint, or one that refuses the connection: PeerError; a stopped sender rejects what it holds", async () => {
    const nowhere = new RecordSender(peers, () => null);
    await expect(nowhere.send("gone", rec("x"), 1000)).rejects.toBeInstanceOf(PeerError);
    const closed = new RecordSender(peers, () => `http://127.0.0.1:${freePort()}`);
    const settled = await Promise.allSettled([closed.send("member", rec("x"), 1000), closed.send("member", rec("y"), 1000)]);
    for (const s of settled) expect((s as PromiseRejectedResult).reason).toBeInstanceOf(PeerError);
    const stopping = toDaemon();
    const queued = stopping.send("member", rec("never"), 5000);
    stopping.stop();
    await expect(queued).rejects.toThrow("stopping");
  });
});

// Fan-out's batched sends (lib/fanout/sender.ts, README "Fan-out": delivery) against a real
// daemon: records queued in one turn go as one batch, and each gets the answer it would get alone —
// also when a write check refuses the batch as a whole, or when the member does not answer.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { RecordSender } from "../lib/fanout/sender";
import { PeerClient, PeerError } from "../lib/peer";
import { freePort, Instance } from "./harness";

const inst = new Instance();
const peers = new PeerClient();
const rec = (text: string, over: Record<string, unknown> = {}) => ({ thread: "th_sender", actor: "did:sync:user:alice", act: "KNOW", body: { text }, ...over });

beforeAll(async () => {
  await inst.start();
  peers.authenticate(() => inst.token ?? null);
});
afterAll(async () => {
  await inst.stop();
});

describe("batched record sends", () => {
  test("one turn's records go as one batch; each answer is its own: created, duplicate", async () => {
    const before = (await inst.http("GET", "/metrics")).text;
    const sender = new RecordSender(peers);
    const once = rec("once", { clock: 1 }); // a clock given: the same content is the same record
    const first = await sender.send(inst.url, once, 5000);
    expect(first.status).toBe(201);
    const answers = await Promise.all([sender.send(inst.url, rec("a"), 5000), sender.send(inst.url, once, 5000), sender.send(inst.url, rec("b"), 5000)]);
    expect(answers.map((a) => a.status)).toEqual([201, 200, 201]);
    expect(answers[1]!.body.id).toBe(first.body.id);
    const batches = (text: string) => Number(/spl_http_requests_total\{method="POST",route="\/v1\/records\/batch",status="200"\} (\d+)/.exec(text)?.[1] ?? 0);
    expect(batches((await inst.http("GET", "/metrics")).text) - batches(before)).toBe(1);
    const stored = await inst.http("GET", "/v1/records?thread=th_sender&limit=100");
    expect(stored.json.data.map((r: any) => r.body.text).sort()).toEqual(["a", "b", "once"]);
  });

  test("a record a write check refuses takes the batch's refusal alone: the others are stored, it gets its own 403", async () => {
    const sender = new RecordSender(peers);
    const answers = await Promise.all([
      sender.send(inst.url, rec("before"), 5000),
      sender.send(inst.url, rec("reserved", { thread: "th_auth" }), 5000),
      sender.send(inst.url, rec("bad", { act: "SHOUT" }), 5000),
      sender.send(inst.url, rec("after"), 5000),
    ]);
    expect(answers.map((a) => a.status)).toEqual([201, 403, 400, 201]);
    expect(answers[1]!.body.code).toBe("RESERVED_THREAD");
    const stored = await inst.http("GET", "/v1/records?thread=th_sender&limit=100");
    expect(stored.json.data.map((r: any) => r.body.text)).toEqual(expect.arrayContaining(["before", "after"]));
    expect((await inst.http("GET", "/v1/records?thread=th_auth&limit=100")).json.data ?? []).not.toContainEqual(expect.objectContaining({ body: { text: "reserved" } }));
  });

  test("an answer to the whole call (a refused credential) is every record's answer", async () => {
    const stranger = new PeerClient();
    stranger.authenticate(() => "spl_not_a_token");
    const sender = new RecordSender(stranger);
    const answers = await Promise.all([sender.send(inst.url, rec("x"), 5000), sender.send(inst.url, rec("y"), 5000)]);
    expect(answers.map((a) => a.status)).toEqual([401, 401]);
  });

  test("a member that does not answer rejects every record with PeerError", async () => {
    const sender = new RecordSender(peers);
    const nobody = `http://127.0.0.1:${freePort()}`;
    const settled = await Promise.allSettled([sender.send(nobody, rec("x"), 1000), sender.send(nobody, rec("y"), 1000)]);
    for (const s of settled) {
      expect(s.status).toBe("rejected");
      expect((s as PromiseRejectedResult).reason).toBeInstanceOf(PeerError);
    }
  });
});

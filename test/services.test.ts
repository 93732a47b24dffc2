// The daemon's background services (issue 8.8): started once ready, stopped on SIGTERM before the
// store closes. The WAL checkpoint thread is one of them.
import { expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { Instance, processGone } from "./harness";

test("SIGTERM stops the background services before the store is closed", async () => {
  const inst = new Instance();
  expect((await inst.spl(["init"])).code).toBe(0);
  const pid = await inst.start();
  expect((await inst.socket("POST", "/v1/records", { thread: "th_s", actor: "did:sync:user:tester", act: "DO", body: { n: 1 } })).status).toBe(201);
  process.kill(pid, "SIGTERM");
  await processGone(pid);
  const msgs = readFileSync(inst.path("logs", "spl.log"), "utf8")
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((l) => ["ready", "service started", "shutting down", "service stopped", "stopped"].includes(l.msg))
    .map((l) => (l.service ? `${l.msg} ${l.service}` : l.msg));
  expect(msgs).toEqual([
    "service started storage-health",
    "service started wal-checkpointer",
    "service started rates",
    "service started reconciler",
    "service started fanout",
    "service started fanout-reports",
    "service started heartbeat",
    "ready",
    "shutting down",
    "service stopped heartbeat",
    "service stopped fanout-reports",
    "service stopped fanout",
    "service stopped reconciler",
    "service stopped rates",
    "service stopped wal-checkpointer",
    "service stopped storage-health",
    "stopped",
  ]);
});

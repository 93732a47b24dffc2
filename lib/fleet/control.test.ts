// The kill switch's fold and write-time check, on records as the store gives them.
import { expect, test } from "bun:test";
import { FleetControl } from "./control";
import type { Envelope, StoredRecord } from "../records/types";

let seq = 0;
const control = (body: Record<string, unknown>): StoredRecord =>
  ({ id: `c${++seq}`, thread: "th_fleet_control", actor: "did:sync:user:op", act: "LEARN", clock: seq, parents: [], data_type: null, judged_by: null, created_at: 1000, sequence: seq, body: { issued_at_unix: 1000, ...body } }) as unknown as StoredRecord;
const rec = (act: string, namespace?: string, thread = "th_work"): Envelope =>
  ({ thread, actor: "did:sync:user:a", act, body: namespace === undefined ? {} : { namespace }, parents: [], clock: 1 }) as unknown as Envelope;
const code = (c: FleetControl, r: Envelope, nowMs = 1_000_000) => c.refusal(r, nowMs)?.code ?? "ok";

test("soft: new work in the namespace and its children is refused; KNOW/LEARN, siblings and records without a namespace pass", () => {
  const c = new FleetControl();
  c.apply(control({ topic: "freeze", namespace: "docs", level: "soft" }));
  expect(["INTEND", "DO", "CALL", "KNOW", "LEARN"].map((a) => code(c, rec(a, "docs")))).toEqual(["NAMESPACE_FROZEN", "NAMESPACE_FROZEN", "NAMESPACE_FROZEN", "ok", "ok"]);
  expect([code(c, rec("INTEND", "docs/v1")), code(c, rec("INTEND", "docsx")), code(c, rec("INTEND"))]).toEqual(["NAMESPACE_FROZEN", "ok", "ok"]);
  expect(c.mayStartWork("docs/v1")).toBe(false);
  expect(c.mayStartWork("other")).toBe(true);
});

test("hard: KNOW/LEARN pass until received + grace, nothing after; a later record for the namespace replaces the earlier", () => {
  const c = new FleetControl();
  c.apply(control({ topic: "freeze", namespace: "ops", level: "hard", grace_secs: 30 }));
  expect(code(c, rec("KNOW", "ops"), 1_029_999)).toBe("ok");
  expect(code(c, rec("KNOW", "ops"), 1_030_000)).toBe("NAMESPACE_FROZEN");
  expect(c.hardFrozenPastGrace(1_030_000)).toEqual(["ops"]);
  c.apply(control({ topic: "freeze", namespace: "ops", level: "soft" }));
  expect(code(c, rec("KNOW", "ops"), 1_030_000)).toBe("ok");
  c.apply(control({ topic: "unfreeze", namespace: "ops" }));
  expect(c.freezes).toEqual([]);
  expect(code(c, rec("INTEND", "ops"))).toBe("ok");
});

test("emergency: no new work anywhere, but fleet threads, KNOW and LEARN pass; clear lifts it", () => {
  const c = new FleetControl();
  c.apply(control({ topic: "emergency_stop", reason: "upgrade" }));
  expect([code(c, rec("INTEND")), code(c, rec("DO", "x")), code(c, rec("KNOW")), code(c, rec("LEARN"))]).toEqual(["EMERGENCY_STOP", "EMERGENCY_STOP", "ok", "ok"]);
  expect([code(c, rec("DO", undefined, "th_instance_registry")), code(c, rec("LEARN", undefined, "th_fleet_control"))]).toEqual(["ok", "ok"]);
  expect(c.facts(1_000_000)).toEqual({ frozen: [], hardPastGrace: [], emergency: true });
  expect(c.mayStartWork(undefined)).toBe(false);
  c.apply(control({ topic: "emergency_clear" }));
  expect(code(c, rec("INTEND"))).toBe("ok");
});

test("a hard freeze's grace runs on this member's clock from when it stored the freeze, whatever the issuer's clock said", () => {
  const c = new FleetControl();
  // The issuing host's clock is an hour behind; this member stored the freeze at 1000.
  c.apply(control({ topic: "freeze", namespace: "ops", level: "hard", grace_secs: 30, issued_at_unix: 1000 - 3600 }));
  expect(code(c, rec("KNOW", "ops"), 1_029_999)).toBe("ok");
  expect(code(c, rec("KNOW", "ops"), 1_030_000)).toBe("NAMESPACE_FROZEN");
  expect(c.freezes[0]).toMatchObject({ issued_at_unix: 1000 - 3600, received_at_unix: 1000 });
});

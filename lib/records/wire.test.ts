import { expect, test } from "bun:test";
import { canonicalJson } from "./canonical";
import type { StoredRecord } from "./types";
import { toWire, wireJson } from "./wire";

const rec: StoredRecord = {
  id: "ab".repeat(32),
  parents: ["p1", 'p"2'],
  thread: 'th_"quoted"\u2028\\',
  actor: "did:sync:user:émile",
  act: "KNOW",
  body: { z: 1, a: { "\u0000": "nul", list: [1.5, null, true] }, text: "line\nbreak" },
  clock: 7,
  data_type: "SCALAR",
  judged_by: null,
  sequence: 42,
  created_at: 1_800_000_000,
};

test("wireJson is the JSON text of toWire, with or without a precomputed body", () => {
  expect(JSON.parse(wireJson(rec))).toEqual(toWire(rec));
  expect(JSON.parse(wireJson(rec, canonicalJson(rec.body)))).toEqual(toWire(rec));
  expect(JSON.parse(wireJson({ ...rec, judged_by: "cd".repeat(32), parents: [] }))).toEqual(toWire({ ...rec, judged_by: "cd".repeat(32), parents: [] }));
});

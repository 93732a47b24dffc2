import { expect, test } from "bun:test";
import { canonicalJson } from "./canonical";
import { recordId } from "./id";
import { prepareRecord, RecordError, sealRecord } from "./envelope";

test("the specification's test vector", () => {
  const env = {
    act: "LEARN" as const,
    actor: "did:sync:user:alice",
    body: { topic: "auth_required", enabled: true },
    clock: 0,
    data_type: "SCALAR" as const,
    parents: [],
    thread: "th_engine_config",
    judged_by: null,
  };
  expect(recordId(env)).toBe("fa034d669f7f5b3b512c0806f4a5bf325076b248b959c3375bddc25521317d79");
});

test("JCS: sorted keys at every depth, compact, ES number formatting", () => {
  expect(canonicalJson({ b: [3, { z: 1, a: null }], a: "x", "é": 1, A: 2 })).toBe(
    '{"A":2,"a":"x","b":[3,{"a":null,"z":1}],"é":1}',
  );
  expect(canonicalJson({ n: 1e21, m: 0.1, k: -0, big: 1.5e-7, i: 100 })).toBe(
    '{"big":1.5e-7,"i":100,"k":0,"m":0.1,"n":1e+21}',
  );
  expect(canonicalJson({ s: 'q"\\\n\u0001€' })).toBe('{"s":"q\\"\\\\\\n\\u0001€"}');
});

test("JCS: keys that look like array indexes, __proto__ and keys beyond the BMP sort as UTF-16 text", () => {
  // JavaScript lists index-like keys first in numeric order; JCS sorts them as text.
  expect(canonicalJson(JSON.parse('{"a":3,"9":2,"10":1}'))).toBe('{"10":1,"9":2,"a":3}');
  expect(canonicalJson(JSON.parse('{"x":{"2":[{"b":1,"a":0}],"1":2},"w":[{"1":0,"0":1}]}'))).toBe('{"w":[{"0":1,"1":0}],"x":{"1":2,"2":[{"a":0,"b":1}]}}');
  expect(canonicalJson(JSON.parse('{"1a":1,"01":2,"-1":3}'))).toBe('{"-1":3,"01":2,"1a":1}');
  expect(canonicalJson(JSON.parse('{"z":1,"__proto__":{"b":1,"a":2}}'))).toBe('{"__proto__":{"a":2,"b":1},"z":1}');
  // U+1F600 (surrogates D83D DE00) sorts before U+FB01 by UTF-16 code units, after it by code points.
  expect(canonicalJson({ "\uFB01": 1, "\u{1F600}": 2, "\u00e9": 3 })).toBe('{"é":3,"😀":2,"ﬁ":1}');
});

test("the hash ignores judged_by and key order, and sorts parents", () => {
  const a = sealRecord(prepareRecord({ thread: "t", actor: "did:x:a", act: "KNOW", body: { b: 1, a: 2 }, clock: 1, parents: ["b", "a"] }));
  const b = sealRecord(
    prepareRecord({ parents: ["a", "b"], body: { a: 2, b: 1 }, act: "KNOW", actor: "did:x:a", thread: "t", clock: 1, judged_by: "zz" }),
  );
  expect(a).toBe(b);
});

test("validation names the field", () => {
  const bad: [unknown, string][] = [
    [[], "INVALID_RECORD"],
    [{ thread: "", actor: "did:x:a", act: "KNOW", body: {} }, "INVALID_FIELD"],
    [{ thread: "t", actor: "alice", act: "KNOW", body: {} }, "INVALID_FIELD"],
    [{ thread: "t", actor: "did:x:a", act: "know", body: {} }, "INVALID_FIELD"],
    [{ thread: "t", actor: "did:x:a", act: "KNOW", body: [] }, "INVALID_FIELD"],
    [{ thread: "t", actor: "did:x:a", act: "KNOW", body: {}, clock: -1 }, "INVALID_FIELD"],
    [{ thread: "t", actor: "did:x:a", act: "KNOW", body: {}, clock: 1.5 }, "INVALID_FIELD"],
    [{ thread: "t", actor: "did:x:a", act: "KNOW", body: {}, clock: "1" }, "INVALID_FIELD"],
    [{ thread: "t", actor: "did:x:a", act: "KNOW", body: {}, data_type: "TEXT" }, "INVALID_FIELD"],
    [{ thread: "t", actor: "did:x:a", act: "KNOW", body: {}, parents: [1] }, "INVALID_FIELD"],
    [{ thread: "t", actor: "did:x:a", act: "KNOW", body: {}, extra: 1 }, "UNKNOWN_FIELD"],
  ];
  for (const [input, code] of bad) {
    try {
      prepareRecord(input);
      throw new Error(`accepted ${JSON.stringify(input)}`);
    } catch (err) {
      expect(err).toBeInstanceOf(RecordError);
      expect((err as RecordError).code).toBe(code);
    }
  }
});

test("depth and size limits", () => {
  let deep: any = {};
  for (let i = 0; i < 70; i++) deep = { d: deep };
  expect(() => prepareRecord({ thread: "t", actor: "did:x:a", act: "KNOW", body: deep })).toThrow(/deeper than 64/);
  try {
    prepareRecord({ thread: "t", actor: "did:x:a", act: "KNOW", body: { s: "x".repeat(1024 * 1024) } });
    throw new Error("accepted");
  } catch (err) {
    expect((err as RecordError).status).toBe(413);
  }
});

test("a lone surrogate anywhere in a record is refused: body strings, body keys, thread, actor", () => {
  const base = { thread: "t", actor: "did:x:a", act: "KNOW", body: {} };
  for (const input of [
    { ...base, body: { s: "a\ud800" } },
    { ...base, body: { ["k\udc00"]: 1 } },
    { ...base, body: { deep: [{ s: "\udbff" }] } },
    { ...base, thread: "th_\ud800" },
    { ...base, actor: "did:x:\udc00" },
  ]) {
    try {
      prepareRecord(input);
      throw new Error(`accepted ${JSON.stringify(input)}`);
    } catch (err) {
      expect(err).toBeInstanceOf(RecordError);
      expect((err as RecordError).status).toBe(400);
    }
  }
  expect(() => prepareRecord({ ...base, body: { s: "pair \ud83d\ude00" } })).not.toThrow();
});

import { describe, expect, test } from "bun:test";
import { LruMap } from "./lru";

describe("LruMap", () => {
  test("evicts the least recently used entry and counts hits and misses", () => {
    const lru = new LruMap<string, number>(2);
    lru.set("a", 1).set("b", 2);
    expect(lru.get("a")).toBe(1); // a is now most recent
    lru.set("c", 3); // evicts b
    expect(lru.has("b")).toBe(false);
    expect(lru.get("b")).toBeUndefined();
    expect([...lru.keys()]).toEqual(["a", "c"]);
    expect(lru.hits).toBe(1);
    expect(lru.misses).toBe(1);
    expect(lru.size).toBe(2);
  });

  test("overwriting an entry refreshes it without growing", () => {
    const lru = new LruMap<string, number>(2);
    lru.set("a", 1).set("b", 2).set("a", 10).set("c", 3);
    expect(lru.peek("a")).toBe(10);
    expect(lru.has("b")).toBe(false);
    expect(lru.size).toBe(2);
  });

  test("peek does not count or reorder; resetStats zeroes counters", () => {
    const lru = new LruMap<string, number>(2);
    lru.set("a", 1).set("b", 2);
    expect(lru.peek("a")).toBe(1);
    lru.set("c", 3); // a was not refreshed by peek, so it goes
    expect(lru.has("a")).toBe(false);
    expect(lru.hits + lru.misses).toBe(0);
    lru.get("zz");
    lru.resetStats();
    expect(lru.misses).toBe(0);
  });

  test("rejects a non-positive capacity", () => {
    expect(() => new LruMap(0)).toThrow(RangeError);
  });
});

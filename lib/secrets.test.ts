import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { keyPath, listKeys, maskKey, writeKey } from "./secrets";

describe("provider secrets", () => {
  test("names that could leave the directory are refused", () => {
    const dir = "/tmp/x/secrets";
    expect(keyPath(dir, "anthropic")).toBe("/tmp/x/secrets/anthropic.key");
    expect(keyPath(dir, "my-provider_2.v1")).toBe("/tmp/x/secrets/my-provider_2.v1.key");
    for (const bad of ["../x", "a/b", "..", "a..b", ".hidden", "", "/etc/passwd", "x\u0000y", "a b"]) expect(() => keyPath(dir, bad)).toThrow();
  });

  test("writeKey: 0700 dir, 0600 file, one line; listKeys masks", () => {
    const dir = join(mkdtempSync(join(tmpdir(), "spl-secrets-")), "secrets");
    const file = writeKey(dir, "openai", "  sk-test-0123456789abcdef \n");
    expect(readFileSync(file, "utf8")).toBe("sk-test-0123456789abcdef\n");
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(() => writeKey(dir, "openai", "a\nb")).toThrow();
    expect(() => writeKey(dir, "openai", "   ")).toThrow();
    expect(listKeys(dir)).toEqual([{ provider: "openai", path: file, masked: "sk-t********cdef", mode: "0600" }]);
    expect(maskKey("short")).toBe("*****");
  });
});

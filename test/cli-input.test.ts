// CLI input checks: `spl know --body` refuses JSON that JSON.parse would silently change, before
// anything is sent; `spl token create --expires-at` sets an expiry the daemon honours.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Instance } from "./harness";

const inst = new Instance();
beforeAll(async () => {
  await inst.start();
});
afterAll(async () => {
  await inst.stop();
});

test("--body with a repeated key or an unsafe integer: exit 2, one error line naming it and the fix; nothing written", async () => {
  const before = (await inst.http("GET", "/health")).json.records;
  for (const [body, named] of [
    ['{"n":1,"n":2}', 'the key "n" twice'],
    ['{"n":12345678901234567890}', "the integer 12345678901234567890"],
    ['{"s":"\\ud800"}', "lone surrogate"],
  ]) {
    const r = await inst.spl(["know", "x", "--thread", "th_cli_body", "--body", body!]);
    expect({ body, code: r.code }).toEqual({ body, code: 2 });
    const lines = r.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: --body .* — .+/);
    expect(lines[0]).toContain(named);
  }
  expect((await inst.http("GET", "/health")).json.records).toBe(before);
  const ok = await inst.spl(["know", "x", "--thread", "th_cli_body", "--body", '{"n":9007199254740991}']);
  expect(ok.code).toBe(0);
});

test("token create --expires-at: kept and listed; a past time is refused with the fix", async () => {
  const at = "2099-01-01T00:00:00Z";
  const created = await inst.spl(["token", "create", "--expires-at", at, "--scopes", "records:read", "-o", "json"]);
  expect(created.code).toBe(0);
  expect(JSON.parse(created.stdout).expires_at).toBe(Date.parse(at) / 1000);
  const list = await inst.spl(["token", "list"]);
  expect(list.stdout).toContain("active until 2099-01-01T00:00:00Z");
  const past = await inst.spl(["token", "create", "--expires-at", "5"]);
  expect(past.code).toBe(1);
  expect(past.stderr).toMatch(/^error: 'expires_at' 1970-01-01T00:00:05.000Z is already past — give a future time/);
});

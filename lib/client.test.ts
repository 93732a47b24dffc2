// The CLI's HTTP client against a real HTTP server: a non-2xx answer is a typed DaemonError.
import { afterAll, describe, expect, test } from "bun:test";
import { call, DaemonError } from "./client";
import { lockoutHint } from "./cli/engine-config";

const server = Bun.serve({
  hostname: "127.0.0.1",
  port: 0,
  fetch(req) {
    const path = new URL(req.url).pathname;
    const error = (status: number, code: string, message: string) => Response.json({ object: "error", type: "invalid_request_error", code, message }, { status });
    if (path === "/denied") return error(403, "PERMISSION_DENIED", "permission denied: did:x may not config_read (GET /v1/config): no rule — an operator can allow it");
    if (path === "/mentions") return error(400, "INVALID_RULE", "rule mentions PERMISSION_DENIED in its name");
    if (path === "/plain") return new Response("upstream broke", { status: 502 });
    return Response.json({ ok: true });
  },
});
afterAll(() => server.stop(true));
const target = { url: `http://127.0.0.1:${server.port}`, describe: "test server" };

async function failure(path: string): Promise<DaemonError> {
  try {
    await call("GET", path, undefined, target);
  } catch (err) {
    if (err instanceof DaemonError) return err;
    throw err;
  }
  throw new Error("call() did not throw");
}

describe("DaemonError", () => {
  test("carries status, code, message and the fix the daemon named", async () => {
    expect(await call("GET", "/fine", undefined, target)).toEqual({ ok: true });
    const e = await failure("/denied");
    expect({ status: e.status, code: e.code, message: e.message, fix: e.fix }).toEqual({
      status: 403,
      code: "PERMISSION_DENIED",
      message: "permission denied: did:x may not config_read (GET /v1/config): no rule",
      fix: "an operator can allow it",
    });
    expect(e.oneLine).toBe("permission denied: did:x may not config_read (GET /v1/config): no rule — an operator can allow it [PERMISSION_DENIED]");
    const plain = await failure("/plain");
    expect({ status: plain.status, code: plain.code, fix: plain.fix, message: plain.message }).toEqual({ status: 502, code: undefined, fix: undefined, message: "daemon answered HTTP 502" });
  });

  test("callers branch on the code, not on the text", async () => {
    const denied = await failure("/denied");
    const thrown = (fn: () => unknown): unknown => {
      try {
        fn();
      } catch (err) {
        return err;
      }
      throw new Error("did not throw");
    };
    const hinted = thrown(() => lockoutHint(denied)) as DaemonError;
    expect(hinted).toBeInstanceOf(DaemonError);
    expect(hinted.fix).toContain("spl config permissions-unlock");
    expect(hinted.code).toBe("PERMISSION_DENIED");
    const mentions = await failure("/mentions");
    expect(thrown(() => lockoutHint(mentions))).toBe(mentions); // a message that merely mentions the code passes untouched
  });
});

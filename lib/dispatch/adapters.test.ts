import { describe, expect, test } from "bun:test";
import type { StoredRecord } from "../records/types";
import { EchoAdapter, ExecAdapter, Semaphore, tail } from "./adapters";

const record: StoredRecord = {
  id: "rec1", sequence: 1, created_at: 1, parents: [], thread: "th_x", actor: "did:sync:user:a", act: "INTEND",
  body: { goal: "do it" }, clock: 0, data_type: "VOID", judged_by: null,
};
const job = { record, target: "did:sync:agent:w", goal: "do it" };

describe("dispatch adapters", () => {
  test("exec passes goal in env and the record on stdin, summary from stdout", async () => {
    const a = new ExecAdapter({ command: ["sh", "-c", 'read -r line; echo "goal=$SPL_GOAL id=$SPL_RECORD_ID"; echo "$line" | head -c 20'], timeoutSecs: 10 });
    const out = await a.run(job);
    expect(out.ok).toBe(true);
    expect(out.ok && out.summary).toContain("goal=do it id=rec1");
    expect(out.ok && out.summary).toContain('{"id":"rec1"');
  });
  test("exec argv is not a shell: metacharacters reach the program as-is", async () => {
    const out = await new ExecAdapter({ command: ["echo", "$HOME;", "|", "x"], timeoutSecs: 10 }).run(job);
    expect(out).toEqual({ ok: true, summary: "$HOME; | x\n" });
  });
  test("non-zero exit, timeout and a missing command are rejections with reasons", async () => {
    const fail = await new ExecAdapter({ command: ["sh", "-c", "echo bad >&2; exit 3"], timeoutSecs: 10 }).run(job);
    expect(fail).toMatchObject({ ok: false, verdict: "reject" });
    expect(!fail.ok && fail.reason).toContain("exited 3: bad");
    const slow = await new ExecAdapter({ command: ["sleep", "30"], timeoutSecs: 0.2 }).run(job);
    expect(slow).toMatchObject({ ok: false, verdict: "timeout" });
    const missing = await new ExecAdapter({ command: ["/nonexistent/spl-adapter"], timeoutSecs: 1 }).run(job);
    expect(missing).toMatchObject({ ok: false, verdict: "reject" });
    expect(!missing.ok && missing.reason).toContain("/nonexistent/spl-adapter");
  });
  test("exec does not hand the daemon's own tokens to the command", async () => {
    const saved = { a: process.env.SPL_TOKEN, b: process.env.SPL_BOOTSTRAP_TOKEN };
    process.env.SPL_TOKEN = "spl_secret_a";
    process.env.SPL_BOOTSTRAP_TOKEN = "spl_secret_b";
    try {
      const out = await new ExecAdapter({ command: ["sh", "-c", 'echo "[$SPL_TOKEN][$SPL_BOOTSTRAP_TOKEN][$SPL_RECORD_ID]"'], timeoutSecs: 10 }).run(job);
      expect(out).toEqual({ ok: true, summary: "[][][rec1]\n" });
    } finally {
      for (const [k, v] of [["SPL_TOKEN", saved.a], ["SPL_BOOTSTRAP_TOKEN", saved.b]] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
  test("a goal over 64 KiB reaches the command cut in SPL_GOAL (SPL_GOAL_TRUNCATED=1) and whole on stdin", async () => {
    const goal = "g".repeat(200 * 1024);
    const big = { ...job, goal, record: { ...record, body: { goal } } };
    const out = await new ExecAdapter({ command: ["sh", "-c", 'printf "%s %s " "${#SPL_GOAL}" "$SPL_GOAL_TRUNCATED"; wc -c'], timeoutSecs: 10 }).run(big);
    expect(out.ok).toBe(true);
    const [envLen, flag, stdinBytes] = (out.ok ? out.summary : "").trim().split(/\s+/);
    expect([Number(envLen), flag]).toEqual([64 * 1024, "1"]);
    expect(Number(stdinBytes)).toBeGreaterThan(200 * 1024);
  });

  test("echo accepts", async () => {
    expect(await new EchoAdapter(1).run(job)).toEqual({ ok: true, summary: "echo: do it" });
  });
  test("tail keeps the last bytes on a character boundary", () => {
    expect(tail("abcdef", 3)).toBe("def");
    expect(tail("ééé", 3)).toBe("é");
  });
  test("semaphore: with cap 2, six slow jobs never run more than 2 at once, and all finish", async () => {
    const s = new Semaphore(2);
    let now = 0;
    let max = 0;
    const jobs = Array.from({ length: 6 }, (_, i) =>
      s.run(async () => {
        max = Math.max(max, ++now);
        await Bun.sleep(20);
        now--;
        return i;
      }),
    );
    expect(await Promise.all(jobs)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(max).toBe(2);
    expect(s.peak).toBe(2);
  });
});

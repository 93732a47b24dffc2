import { describe, expect, test } from "bun:test";
import { UsageError } from "../errors";
import { type Candidate, parseSubtasks, pickWorker } from "./spec";

const member = (name: string, did: string, extra: Partial<Candidate> = {}): Candidate => ({ did, name, endpoint: `http://${name}`, role: "worker", status: "live", active_dispatches: 0, uptime_secs: 10, ...extra });

describe("parseSubtasks", () => {
  test("keys map to the descriptor; timeout defaults to 600", () => {
    expect(parseSubtasks(["goal=a,target=worker-a,budget=0.5,timeout=30", "goal=b,target=round-robin,depends=0"])).toEqual([
      { goal: "a", target: "worker-a", budget_usd: 0.5, timeout_secs: 30, depends_on: [] },
      { goal: "b", target: "round-robin", budget_usd: null, timeout_secs: 600, depends_on: [0] },
    ]);
  });

  test("a longer cycle is named in order", () => {
    expect(() => parseSubtasks(["goal=a,target=x,depends=2", "goal=b,target=x,depends=0", "goal=c,target=x,depends=1"])).toThrow("form a cycle: 0 → 2 → 1 → 0");
    expect(() => parseSubtasks(["goal=a,target=x,depends=0"])).toThrow(UsageError);
  });
});

describe("pickWorker", () => {
  const members = [member("coordinator", "did:c", { role: "coordinator" }), member("worker-a", "did:a", { uptime_secs: 5 }), member("worker-b", "did:b", { uptime_secs: 50 }), member("worker-c", "did:z", { status: "stale" })];

  test("least-loaded: fewest dispatches plus local picks, ties to the longest uptime; never the coordinator or a stale member", () => {
    expect((pickWorker("least-loaded-worker", members, "s") as Candidate).name).toBe("worker-b");
    expect((pickWorker("least-loaded-worker", members, "s", (d) => (d === "did:b" ? 1 : 0)) as Candidate).name).toBe("worker-a");
  });

  test("round-robin is a function of the seed over live workers", () => {
    const picks = new Set(Array.from({ length: 20 }, (_, i) => (pickWorker("round-robin", members, `p:${i}`) as Candidate).name));
    expect([...picks].sort()).toEqual(["worker-a", "worker-b"]);
    expect(pickWorker("round-robin", members, "p:3")).toEqual(pickWorker("round-robin", members, "p:3"));
  });

  test("names, DIDs and the refusals", () => {
    expect((pickWorker("specific:did:a", members, "s") as Candidate).name).toBe("worker-a");
    expect(pickWorker("worker-c", members, "s")).toBe("target 'worker-c' is stale — start it again, or pick another worker (worker-a, worker-b)");
    expect(pickWorker("coordinator", members, "s")).toStartWith("unknown target 'coordinator'");
    expect(pickWorker("round-robin", [], "s")).toStartWith("no live worker for 'round-robin'");
  });
});

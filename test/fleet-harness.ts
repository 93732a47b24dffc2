// What the fleet, kill-switch and fan-out tests share: a coordinator Instance whose workers live in
// `<home>-worker-{a,b}` on consecutive free ports, and small helpers to act as one member.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Instance, isAlive, track, waitFor } from "./harness";

/**
 * The local fleets' heartbeat, in seconds. A member is live while its last beat is at most two
 * intervals old (README "Fleet"), so with 1 s one beat late by a second on a loaded machine makes
 * it stale and changes a test's premise; 3 s leaves room for that while staleness stays quick to
 * watch (stale after 6 s, archived after 9 s).
 */
export const HEARTBEAT_SECS = 3;

/**
 * n free consecutive ports (worker ports follow the first one), below Linux's ephemeral range
 * (32768 and up): a port there can be taken between this check and the member's start by the
 * local end of any outgoing connection, a member's own among them.
 */
export function consecutivePorts(n: number): number {
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * (12000 - n));
    const held: { stop(force?: boolean): void }[] = [];
    try {
      for (let i = 0; i < n; i++) held.push(Bun.listen({ hostname: "127.0.0.1", port: base + i, socket: { data() {} } }));
      return base;
    } catch {
    } finally {
      for (const s of held) s.stop(true);
    }
  }
}

export function localFleet(workerPorts: number, heartbeatSecs = HEARTBEAT_SECS) {
  const coord = new Instance();
  const workerPort = consecutivePorts(workerPorts);
  const homeOf = (name: string) => (name === "coordinator" ? coord.splHome : `${coord.splHome}-${name}`);
  const pidOf = (name: string) => Number(readFileSync(join(homeOf(name), "run", "spl.pid"), "utf8").trim());
  /** The coordinator's view of its members (GET /v1/fleet/status); [] while it does not answer. */
  async function members(): Promise<any[]> {
    const r = await coord.http("GET", "/v1/fleet/status");
    return r.status === 200 ? r.json.instances : [];
  }
  /** Waits until the coordinator reports each named member live, for a step whose premise is a live member. */
  async function whenLive(names: readonly string[], timeoutMs = 60_000): Promise<void> {
    await waitFor(`${names.join(", ")} reported live by the coordinator`, async () => (await members()).map((m) => `${m.name}:${m.status}/${m.health}`), {
      timeoutMs,
      stepMs: 100,
      until: (view) => names.every((n) => view.some((m) => m.startsWith(`${n}:live/`))),
    });
  }
  return {
    coord,
    workerPort,
    homeOf,
    asMember: (name: string) => ({ SYNCROPEL_HOME: homeOf(name) }),
    heartbeatSecs,
    startArgs: ["fleet", "start", "--workers", "2", "--port", String(coord.port), "--worker-port", String(workerPort), "--heartbeat", String(heartbeatSecs)],
    pidOf,
    trackSpawned(out: string) {
      for (const m of out.matchAll(/spawned PID (\d+)/g)) track(Number(m[1]));
    },
    /** A request over one member's socket (trusted: acts as the home's identity). */
    async onMember(name: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
      const res = await fetch(`http://localhost${path}`, {
        method,
        unix: join(homeOf(name), "run", "spl.sock"),
        headers: body !== undefined ? { "content-type": "application/json" } : {},
        body: body === undefined ? undefined : JSON.stringify(body),
      } as RequestInit);
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : null };
    },
    /** Stops the fleet, then ends any member still alive (by its pid file). */
    async teardown(names: readonly string[] = ["coordinator", "worker-a", "worker-b"]) {
      await coord.spl(["fleet", "stop", "--all"]);
      for (const name of names) {
        try {
          const pid = pidOf(name);
          if (isAlive(pid)) process.kill(pid, "SIGKILL");
        } catch {}
      }
    },
    members,
    whenLive,
    /** Runs spl as the coordinator (or another member via env); throws with its output unless it exits 0. */
    async ok(args: string[], env?: Record<string, string>) {
      const r = await coord.spl(args, { env });
      if (r.code !== 0) throw new Error(`spl ${args.join(" ")} exited ${r.code}: ${r.stderr}${r.stdout}`);
      return r.stdout;
    },
  };
}

/**
 * Waits for `probe` to return something truthy (a generous bound, never a fixed sleep); on timeout
 * the error names what it waited for and the last thing `saw` returned.
 */
export async function until<T>(what: string, probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, saw?: () => Promise<unknown>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > deadline) {
      let last: unknown = "(nothing to show)";
      try {
        last = saw ? await saw() : last;
      } catch (err) {
        last = `(could not look: ${(err as Error).message})`;
      }
      throw new Error(`timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}; last saw: ${typeof last === "string" ? last : JSON.stringify(last)}`);
    }
    await Bun.sleep(100);
  }
}

// What the fleet, kill-switch and fan-out tests share: a coordinator Instance whose workers live in
// `<home>-worker-{a,b}` on consecutive free ports, and small helpers to act as one member.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Instance, isAlive, track } from "./harness";

/** n free consecutive ports (worker ports follow the first one). */
export function consecutivePorts(n: number): number {
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 30000);
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

export function localFleet(workerPorts: number) {
  const coord = new Instance();
  const workerPort = consecutivePorts(workerPorts);
  const homeOf = (name: string) => (name === "coordinator" ? coord.splHome : `${coord.splHome}-${name}`);
  return {
    coord,
    workerPort,
    homeOf,
    asMember: (name: string) => ({ SYNCROPEL_HOME: homeOf(name) }),
    startArgs: ["fleet", "start", "--workers", "2", "--port", String(coord.port), "--worker-port", String(workerPort), "--heartbeat", "1"],
    pidOf: (name: string) => Number(readFileSync(join(homeOf(name), "run", "spl.pid"), "utf8").trim()),
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
          const pid = Number(readFileSync(join(homeOf(name), "run", "spl.pid"), "utf8").trim());
          if (isAlive(pid)) process.kill(pid, "SIGKILL");
        } catch {}
      }
    },
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

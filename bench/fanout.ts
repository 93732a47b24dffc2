// Fan-out figures (issue 12 item 7, issue 24 item 9, issue 29 item 3): a coordinator and two echo
// workers (1 s heartbeat); two fan-outs of 1,000 subtasks each, one after the other
// (BENCH_FANOUT_CHILDREN to change it, at most 1,000). For the second: wall time from
// `spl task fan-out` to the join's KNOW, children per second over it, and the coordinator's CPU
// per child (the attempt's DO, the send, the report's ingest and its checks, the join evaluation).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { consecutivePorts } from "../test/fleet-harness";
import { BenchHome, SPL, fmt } from "./lib";
import { cpuSeconds } from "./proc";

const CHILDREN = Number(process.env.BENCH_FANOUT_CHILDREN ?? 1000);
const WORKER = "did:sync:agent:bench-echo";

export async function benchFanout(): Promise<Record<string, string>> {
  const h = new BenchHome();
  h.env.SPL_LOG = "warn"; // measure the fan-out, not the log
  // BENCH_CPU_PROF=<dir>: every spl process of the bench writes a CPU profile there when it exits.
  if (process.env.BENCH_CPU_PROF) h.env.BUN_OPTIONS = `--cpu-prof --cpu-prof-dir=${process.env.BENCH_CPU_PROF}`;
  const workerPort = consecutivePorts(2);
  const member = (name: string) => ({ ...h.env, SYNCROPEL_HOME: `${h.home}-${name}` });
  const spl = (args: string[], env = h.env) => {
    const r = Bun.spawnSync([SPL, ...args], { env });
    if (r.exitCode !== 0) throw new Error(`spl ${args.join(" ")} failed: ${r.stderr}`);
    return r.stdout.toString();
  };
  try {
    h.run(["init"]);
    for (const name of ["worker-a", "worker-b"]) {
      spl(["init"], member(name));
      const cfg = join(`${h.home}-${name}`, "config.toml");
      writeFileSync(cfg, `${readFileSync(cfg, "utf8")}\n[dispatch.targets.${JSON.stringify(WORKER)}]\nadapter = "echo"\n`);
    }
    spl(["fleet", "start", "--workers", "2", "--port", String(h.port), "--worker-port", String(workerPort), "--heartbeat", "1"]);
    for (const name of ["worker-a", "worker-b"]) spl(["config", "add-rule", "--name", "fanout-children", "--expression", "has(record.body.fanout)", "--target", WORKER], member(name));
    h.pid = Number(readFileSync(join(h.home, "run", "spl.pid"), "utf8").trim());
    // One fan-out, timed: wall time to its join and the coordinator's CPU over it.
    const fanOut = async () => {
      const task = JSON.parse(h.run(["task", "add", "bench fan-out", "-o", "json"])) as { alias: string; thread: string };
      const subtasks = Array.from({ length: CHILDREN }, (_, i) => ["--subtask", `goal=echo ${i},target=least-loaded-worker`]).flat();
      const cpu0 = cpuSeconds(h.pid);
      const t0 = performance.now();
      h.run(["task", "fan-out", task.alias, ...subtasks, "--join", "all"]);
      // Watch the small pending list (not the whole fan-out, whose answer grows with it): the
      // coordinator's CPU is then its own work, not our polling.
      // (the parent INTEND is committed before `spl task fan-out` returns, so it is pending until joined)
      for (; performance.now() - t0 < 600_000; await Bun.sleep(20)) {
        const status = (await (await fetch(`${h.url}/v1/fleet/status`, { headers: h.headers })).json()) as { pending_fanouts: Array<{ thread: string }> };
        if (!status.pending_fanouts.some((p) => p.thread === task.thread)) break;
      }
      const wall = (performance.now() - t0) / 1000;
      const cpu = cpuSeconds(h.pid) - cpu0;
      const f: any = await (await fetch(`${h.url}/v1/fanouts/${task.thread}`, { headers: h.headers })).json();
      return { wall, cpu, f };
    };
    // The first fan-out a daemon runs also pays for JSC compiling the fan-out code (a third of
    // its CPU went to the JIT threads): it is printed, and the second is the figure.
    const cold = await fanOut();
    const { wall, cpu, f } = await fanOut();
    const byWorker = new Map<string, number>();
    for (const c of f.children) if (c.result) byWorker.set(c.result.worker, (byWorker.get(c.result.worker) ?? 0) + 1);
    return {
      "subtasks × workers": `${CHILDREN} echo × 2 (least-loaded-worker)`,
      "join complete": f.complete ? `yes (${f.complete.verdict}); per worker ${[...byWorker.values()].join(" + ")}` : "NO (gave up after 600 s)",
      "fan-out → join KNOW": `${fmt(wall, 2)} s wall (includes the CLI's own start)`,
      "children per second": `${fmt(CHILDREN / wall, 0)}`,
      "coordinator CPU per child": `${fmt((cpu / CHILDREN) * 1000, 2)} ms (${fmt(cpu, 2)} s in all)`,
      "first fan-out of the daemon": `${fmt(CHILDREN / cold.wall, 0)} children/s, ${fmt((cold.cpu / CHILDREN) * 1000, 2)} ms coordinator CPU per child (JIT warm-up included)`,
    };
  } finally {
    Bun.spawnSync([SPL, "fleet", "stop", "--all"], { env: h.env });
    h.pid = 0;
    h.cleanup();
  }
}

if (import.meta.main) {
  const { printFigures } = await import("./run");
  printFigures("fanout", await benchFanout());
}

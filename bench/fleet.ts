// Fleet figures (issue 11, item 9): what heartbeats cost the coordinator — CPU of its process and
// p99 of GET /v1/fleet/status while 100 simulated members beat every second — and how long
// `spl fleet start --workers 2` takes to converge.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BenchHome, SPL, fmt, freePort, percentile } from "./lib";

const MEMBERS = 100;
const SECONDS = 10;

/** utime + stime of a process, in seconds. */
function cpuSecs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100;
}

async function heartbeatLoad(): Promise<Record<string, string>> {
  const h = new BenchHome();
  try {
    h.run(["init"]);
    writeFileSync(join(h.home, "config.toml"), `${readFileSync(join(h.home, "config.toml"), "utf8")}\n[fleet]\nheartbeat_interval_secs = 1\n`);
    h.env.SPL_LOG = "warn"; // one INFO line per ingested record would measure the log, not the registry
    h.start();
    const token = readFileSync(join(h.home, "secrets", "fleet_token"), "utf8").trim();
    const headers = { "content-type": "application/json", authorization: `Bearer ${token}` };
    const did = (i: number) => `did:sync:instance:${i.toString(16).padStart(16, "0")}`;
    const beat = (i: number) =>
      fetch(`${h.url}/v1/records`, {
        method: "POST",
        headers,
        body: JSON.stringify({
          thread: "th_instance_registry",
          actor: did(i),
          act: "DO",
          body: { topic: "heartbeat", instance_did: did(i), name: `sim-${i}`, endpoint: `http://10.0.0.${i}:9100`, role: "worker", version: "0.1.0", uptime_secs: 1, active_dispatches: 0, store_records: 1, health: "healthy", sent_at_unix: Math.floor(Date.now() / 1000) },
        }),
      }).then((r) => r.text());
    const lat: number[] = [];
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        const t0 = performance.now();
        const r = await fetch(`${h.url}/v1/fleet/status`, { headers: h.headers });
        await r.text();
        lat.push(performance.now() - t0);
        await Bun.sleep(50);
      }
    })();
    const cpu0 = cpuSecs(h.pid);
    const t0 = performance.now();
    // Each member beats once a second, the 100 spread evenly over it.
    for (let s = 0; s < SECONDS; s++) {
      for (let i = 0; i < MEMBERS; i++) {
        void beat(i);
        await Bun.sleep(1000 / MEMBERS);
      }
    }
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSecs(h.pid) - cpu0;
    stop = true;
    await reader;
    const status = (await (await fetch(`${h.url}/v1/fleet/status`, { headers: h.headers })).json()) as { counts: { live: number } };
    lat.sort((a, b) => a - b);
    return {
      "members × interval": `${MEMBERS} × 1 s for ${SECONDS} s`,
      "registered live": `${status.counts.live}`,
      "coordinator CPU": `${fmt((cpu / wall) * 100, 1)} % of one core`,
      "GET /v1/fleet/status p50": `${fmt(percentile(lat, 50), 2)} ms`,
      "GET /v1/fleet/status p99": `${fmt(percentile(lat, 99), 2)} ms (${lat.length} requests)`,
    };
  } finally {
    h.cleanup();
  }
}

async function convergence(): Promise<Record<string, string>> {
  const h = new BenchHome();
  const workerPort = freePort();
  try {
    const t0 = performance.now();
    const r = Bun.spawnSync([SPL, "fleet", "start", "--workers", "2", "--port", String(h.port), "--worker-port", String(workerPort)], { env: h.env });
    const secs = (performance.now() - t0) / 1000;
    if (r.exitCode !== 0) throw new Error(`fleet start failed: ${r.stderr}`);
    return { "fleet start --workers 2 (fresh homes, 5 s heartbeat)": `${fmt(secs, 2)} s to converge` };
  } finally {
    Bun.spawnSync([SPL, "fleet", "stop", "--all"], { env: h.env });
    h.pid = 0;
    h.cleanup();
  }
}

export async function benchFleet(): Promise<Record<string, string>> {
  return { ...(await heartbeatLoad()), ...(await convergence()) };
}

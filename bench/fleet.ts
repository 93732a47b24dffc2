// Fleet figures (issues 22, 23): what heartbeats cost the coordinator — CPU of its process per beat
// while 1,000 simulated members (each with its own member credential) beat every 5 s, and how many
// registry records that writes per member-hour (events only; an earlier version wrote one record
// per beat: 240 per member-hour at 15 s) — p99 of GET /v1/fleet/status meanwhile, CPU per request
// with TLS off and on, and how long `spl fleet start --workers 2` takes to converge.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { consecutivePorts } from "../test/fleet-harness";
import { BenchHome, SPL, fmt, freePort, percentile } from "./lib";
import { cpuSeconds } from "./proc";

const MEMBERS = 1000;
const INTERVAL_SECS = 5;
const SECONDS = 30;

const did = (i: number) => `did:sync:instance:${(0xb000000 + i).toString(16).padStart(16, "0")}`;

async function socketCall(h: BenchHome, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`http://localhost${path}`, { method, unix: h.socket, headers: { "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) } as RequestInit);
  const json = await res.json();
  if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

async function heartbeatLoad(): Promise<Record<string, string>> {
  const h = new BenchHome();
  try {
    h.run(["init"]);
    writeFileSync(join(h.home, "config.toml"), `${readFileSync(join(h.home, "config.toml"), "utf8")}\n[fleet]\nheartbeat_interval_secs = ${INTERVAL_SECS}\n`);
    h.env.SPL_LOG = "warn";
    h.start();
    // What the same beats cost a bare Bun.serve that parses and answers JSON: the floor on this machine.
    const bare = await bareServerCost("spl_member_0000000000000000_000000000000000000000000000000000000000000000000");
    // Each simulated member is admitted by the coordinator's operator and gets its own credential.
    const credentials: string[] = [];
    for (let i = 0; i < MEMBERS; i++) {
      const m = await socketCall(h, "POST", "/v1/fleet/join", { did: did(i), name: `sim-${i}`, endpoint: `http://10.0.${i >> 8}.${i & 255}:9100`, version: "0.1.0" });
      credentials.push(m.credential);
    }
    const countRegistry = async () => {
      let n = 0;
      for (let after = 0; ; ) {
        const page = await socketCall(h, "GET", `/v1/records?thread=th_instance_registry&limit=1000&after=${after}`);
        n += page.data.length;
        if (!page.has_more) return n;
        after = Number(page.next_cursor);
      }
    };
    const beat = (i: number) =>
      fetch(`${h.url}/v1/fleet/heartbeat`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${credentials[i]}`, "x-syncropel-epoch": "1" },
        body: JSON.stringify({ did: did(i), name: `sim-${i}`, endpoint: `http://10.0.${i >> 8}.${i & 255}:9100`, role: "worker", version: "0.1.0", uptime_secs: 1, active_dispatches: 0, store_records: 1, health: "healthy", sent_at_unix: Math.floor(Date.now() / 1000) }),
      }).then((r) => {
        if (r.status !== 200) throw new Error(`heartbeat answered ${r.status}`);
        return r.text();
      });
    // One round first: every member live, so the measured window records no transitions.
    await Promise.all(credentials.map((_, i) => beat(i)));
    const before = await countRegistry();
    const cpu0 = cpuSeconds(h.pid);
    const t0 = performance.now();
    let beats = 0;
    const pending: Promise<unknown>[] = [];
    // Each member beats once per interval, the 1,000 spread evenly over it: 200 beats a second.
    const gapMs = (INTERVAL_SECS * 1000) / MEMBERS;
    for (let k = 0; k < (SECONDS * MEMBERS) / INTERVAL_SECS; k++) {
      pending.push(beat(k % MEMBERS));
      beats++;
      const due = t0 + (k + 1) * gapMs;
      const wait = due - performance.now();
      if (wait > 1) await Bun.sleep(wait);
    }
    await Promise.all(pending);
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(h.pid) - cpu0;
    const after = await countRegistry();
    // Then what an operator reading the fleet sees while it beats (not counted in the beats' CPU).
    const lat: number[] = [];
    for (let k = 0; k < 100; k++) {
      const q0 = performance.now();
      await Promise.all([beat(k % MEMBERS), (async () => {
        await (await fetch(`${h.url}/v1/fleet/status`, { headers: h.headers })).text();
        lat.push(performance.now() - q0);
      })()]);
    }
    const status = (await (await fetch(`${h.url}/v1/fleet/status`, { headers: h.headers })).json()) as { counts: { live: number } };
    lat.sort((a, b) => a - b);
    const memberHours = (MEMBERS * wall) / 3600;
    return {
      "members × interval": `${MEMBERS} × ${INTERVAL_SECS} s for ${fmt(wall, 0)} s (${beats} beats)`,
      "registered live": `${status.counts.live}`,
      "coordinator CPU per beat": `${fmt((cpu / beats) * 1000, 3)} ms (${fmt((cpu / wall) * 100, 1)} % of one core; a bare Bun.serve answering the same beats: ${fmt(bare * 1000, 3)} ms)`,
      "registry records per member-hour": `${fmt((after - before) / memberHours, 2)} (${after - before} written during ${beats} beats; one record per beat before: ${3600 / 15} at 15 s)`,
      "GET /v1/fleet/status p50": `${fmt(percentile(lat, 50), 2)} ms`,
      "GET /v1/fleet/status p99": `${fmt(percentile(lat, 99), 2)} ms (${lat.length} requests, ${MEMBERS + 1} members)`,
    };
  } finally {
    h.cleanup();
  }
}

/** CPU seconds per request of a bare Bun.serve (own process) that parses a beat and answers JSON, at 200 a second. */
async function bareServerCost(bearer: string): Promise<number> {
  const port = freePort();
  const server = Bun.spawn(["bun", "-e", `Bun.serve({ hostname: "127.0.0.1", port: ${port}, async fetch(r) { const b = await r.json(); return Response.json({ object: "heartbeat_ack", epoch: 1, did: b.did }); } }); console.log("ready");`], { stdout: "pipe", stderr: "inherit" });
  await server.stdout.getReader().read();
  const body = JSON.stringify({ did: did(0), name: "sim-0", endpoint: "http://10.0.0.0:9100", role: "worker", version: "0.1.0", uptime_secs: 1, active_dispatches: 0, store_records: 1, health: "healthy", sent_at_unix: 1 });
  const n = 2000;
  const cpu0 = cpuSeconds(server.pid);
  const t0 = performance.now();
  const pending: Promise<unknown>[] = [];
  for (let k = 0; k < n; k++) {
    pending.push(fetch(`http://127.0.0.1:${port}/`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${bearer}` }, body }).then((r) => r.text()));
    const wait = t0 + (k + 1) * 5 - performance.now();
    if (wait > 1) await Bun.sleep(wait);
  }
  await Promise.all(pending);
  const cpu = (cpuSeconds(server.pid) - cpu0) / n;
  server.kill();
  await server.exited;
  return cpu;
}

/** Daemon CPU per request for the same small POST, plain HTTP and HTTPS, with keep-alive (8 at a time). */
async function tlsCost(): Promise<Record<string, string>> {
  if (!Bun.which("openssl")) return { "TLS": "skipped: no openssl" };
  const out: Record<string, string> = {};
  for (const tls of [false, true]) {
    const h = new BenchHome();
    try {
      h.run(["init"]);
      h.env.SPL_LOG = "warn";
      let ca: string | undefined;
      if (tls) {
        const sh = (cmd: string) => Bun.spawnSync(["sh", "-c", cmd], { cwd: h.root, stdout: "ignore", stderr: "ignore" });
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=bench-ca");
        sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout node.key -out node.csr -subj /CN=127.0.0.1");
        sh("printf 'subjectAltName=IP:127.0.0.1\\n' > ext && openssl x509 -req -in node.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out node.pem -days 2 -extfile ext");
        const cfg = join(h.home, "config.toml");
        writeFileSync(cfg, readFileSync(cfg, "utf8").replace(/^\[server\]\n/m, `[server]\ntls_cert_file = "${h.root}/node.pem"\ntls_key_file = "${h.root}/node.key"\n`));
        ca = readFileSync(join(h.root, "ca.pem"), "utf8");
      }
      h.start();
      const base = `${tls ? "https" : "http"}://127.0.0.1:${h.port}`;
      const send = (i: number, close = false) =>
        fetch(`${base}/v1/records`, { method: "POST", headers: { ...h.headers, ...(close ? { connection: "close" } : {}) }, body: JSON.stringify({ thread: `th_tls_${i % 50}`, actor: "did:sync:user:bench", act: "KNOW", body: { n: i } }), tls: ca ? { ca } : undefined } as RequestInit).then((r) => r.text());
      const N = 4000;
      for (let i = 0; i < 200; i++) await send(i); // warm up the connections
      const cpu0 = cpuSeconds(h.pid);
      for (let i = 0; i < N; i += 8) await Promise.all(Array.from({ length: 8 }, (_, k) => send(1000 + i + k)));
      out[`CPU per POST /v1/records, ${tls ? "HTTPS" : "HTTP"}`] = `${fmt(((cpuSeconds(h.pid) - cpu0) / N) * 1e6, 0)} µs (${N} requests, 8 at a time, keep-alive)`;
      const C = 500;
      const cpu1 = cpuSeconds(h.pid);
      for (let i = 0; i < C; i++) await send(10_000 + i, true);
      out[`CPU per POST /v1/records, ${tls ? "HTTPS" : "HTTP"}, new connection each`] = `${fmt(((cpuSeconds(h.pid) - cpu1) / C) * 1e6, 0)} µs (${C} requests)`;
    } finally {
      h.cleanup();
    }
  }
  return out;
}

async function convergence(): Promise<Record<string, string>> {
  const h = new BenchHome();
  const workerPort = consecutivePorts(2);
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
  return { ...(await heartbeatLoad()), ...(await tlsCost()), ...(await convergence()) };
}

// One kill -9 trial for continuous replication (test/replication.test.ts runs a few, bench
// `replication` runs ten and reports the figures): the compiled daemon under load from four
// clients, SIGKILL at a random moment, then `spl restore <url>` into an empty home from the remote
// alone. Every record acknowledged more than sync_interval + one flush before the kill must be
// back, where "one flush" is the upload that was in progress at the kill (as long as it had run),
// or the longest the daemon reported, whichever is longer (a segment leaves at most sync_interval
// after the previous one started, so a record waits at most that plus the upload that carries it).
// Answers the loss window: how long before the kill the oldest acknowledged record missing from
// the restore was acknowledged (0: none missing).
import { Database } from "bun:sqlite";
import { Instance, waitFor } from "./harness";

const ACTOR = "did:sync:user:tester";

export interface KillTrial {
  acked: number;
  missing: number;
  lossMs: number;
  flushMs: number;
  restoreMs: number;
}

async function replication(inst: Instance): Promise<any> {
  const res = await fetch("http://localhost/v1/status", { unix: inst.path("run", "spl.sock") } as RequestInit);
  return ((await res.json()) as any).offsite;
}

/** `inst` has [backup.offsite] configured (continuous); `url` is what a restore reads. */
export async function killTrial(inst: Instance, url: string, restoreEnv: Record<string, string>, syncSecs: number): Promise<KillTrial> {
  const pid = await inst.start();
  await waitFor(async () => {
    const o = await replication(inst);
    return o.last_push?.ok && !o.pushing && o.replication?.state === "caught up";
  }, 60_000, 50);
  const acked = new Map<string, number>();
  let stop = false;
  let flushMs = 0;
  /** The last status seen: when it was read, and the upload in progress then (null: none). */
  let seen = { at: Date.now(), shippingSince: null as number | null };
  const client = async (c: number) => {
    for (let i = 0; !stop; i++) {
      const records = Array.from({ length: 10 }, (_, k) => ({ thread: `th_kill_${c}`, actor: ACTOR, act: "KNOW", body: { text: `c${c} ${i} ${k} ${crypto.randomUUID()}` } }));
      try {
        const res = await fetch("http://localhost/v1/records/batch", {
          method: "POST",
          unix: inst.path("run", "spl.sock"),
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ records }),
        } as RequestInit);
        const body = (await res.json()) as any;
        const at = Date.now();
        if (res.status === 200) for (const d of body.data) acked.set(d.id, at);
      } catch {
        return; // the daemon is gone
      }
    }
  };
  const watcher = (async () => {
    while (!stop) {
      try {
        const at = Date.now();
        const r = (await replication(inst)).replication;
        flushMs = Math.max(flushMs, r.ship_ms.max);
        seen = { at, shippingSince: r.shipping_since ? Date.parse(r.shipping_since) : null };
      } catch {}
      await Bun.sleep(50);
    }
  })();
  const clients = [0, 1, 2, 3].map(client);
  await Bun.sleep(1500 + Math.random() * 1500);
  const killAt = Date.now();
  process.kill(pid, "SIGKILL");
  stop = true;
  await Promise.all([...clients, watcher]);

  const fresh = new Instance({ env: restoreEnv });
  const t0 = performance.now();
  const r = await fresh.spl(["restore", url]);
  const restoreMs = performance.now() - t0;
  if (r.code !== 0) throw new Error(`spl restore ${url} failed (${r.code}): ${r.stderr}`);
  const db = new Database(fresh.path("hub.db"), { readonly: true });
  const have = new Set((db.query("SELECT id FROM records").all() as { id: string }[]).map((x) => x.id));
  db.close();
  // The upload in progress at the kill started when the last status said, or after that status
  // was read; + the replication thread's 10 ms poll and this process's delay in noting answers.
  const inFlight = killAt - (seen.shippingSince ?? seen.at);
  const allowance = Math.max(syncSecs * 1000, flushMs) + Math.max(flushMs, inFlight) + 50;
  let lossMs = 0;
  let missing = 0;
  for (const [id, at] of acked) {
    if (have.has(id)) continue;
    missing++;
    lossMs = Math.max(lossMs, killAt - at);
    if (at < killAt - allowance) throw new Error(`record ${id} acknowledged ${killAt - at} ms before the kill is not in the restore (allowance ${allowance} ms)`);
  }
  return { acked: acked.size, missing, lossMs, flushMs: Math.max(flushMs, inFlight), restoreMs };
}

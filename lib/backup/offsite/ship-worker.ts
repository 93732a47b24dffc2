// The replication thread (replicator.ts starts it; each worker is an entry point in
// .ci/build.ts): a Shipper over its own read-only connection, polling the commit ring every 10 ms, shipping when records wait, maintaining the remote once per merge window.
// "drain" ships what is left (a clean stop loses nothing) and answers "drained"; "close" closes.
import { homePaths } from "../../paths";
import { CommitRing } from "./commit-ring";
import type { OffsiteConfig } from "./config";
import type { ChainLookup, S3Credentials } from "./credentials";
import { Shipper, type ShipReport } from "./shipper";

export interface ShipInit {
  home: string;
  config: OffsiteConfig;
  ring: SharedArrayBuffer;
}

export type WorkerReport = ShipReport | { type: "drained"; through: number } | { type: "closed" } | { type: "crashed"; error: string } | { type: "credentials?" };
export type WorkerRequest = ShipInit | "drain" | "close" | { type: "credentials"; creds: S3Credentials | null };

/** How often the commit ring is looked at (the lag this adds is at most this). */
const TICK_MS = 10;

declare const self: Worker;
const post = (r: WorkerReport) => self.postMessage(r);

let shipper: Shipper | null = null;
/** S3 credentials past the environment and s3.toml come from the daemon (which holds the AWS chain). */
const waiting: ((c: S3Credentials | null) => void)[] = [];
const askDaemon: ChainLookup = () =>
  new Promise((resolve) => {
    waiting.push(resolve);
    post({ type: "credentials?" });
  });
let stopping = false;
let busy = false;

self.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  if (typeof e.data === "object" && "type" in e.data) return waiting.shift()?.(e.data.creds);
  if (e.data === "close") {
    stopping = true;
    shipper?.close();
    shipper = null;
    return post({ type: "closed" });
  }
  if (e.data === "drain") return drain();
  const init = e.data;
  try {
    shipper = new Shipper(homePaths(init.home), init.config, new CommitRing(init.ring), post, askDaemon);
    shipper.start();
  } catch (err) {
    return post({ type: "crashed", error: (err as Error).message });
  }
  const maintainMs = Math.max(1000, shipper.tierSecs[0] * 1000);
  let maintainedAt = Date.now();
  const tick = async () => {
    if (stopping || !shipper) return;
    try {
      if (!busy && shipper.due()) {
        busy = true;
        try {
          while ((await shipper.shipOnce()) && !stopping);
        } finally {
          busy = false;
        }
      }
      if (Date.now() - maintainedAt >= maintainMs) {
        maintainedAt = Date.now();
        void shipper.maintain();
      }
    } catch (err) {
      // Shipping must never stop in silence: the daemon logs it, says so in status and starts a new thread.
      return post({ type: "crashed", error: (err as Error).message });
    }
    setTimeout(tick, TICK_MS);
  };
  void tick();
};

/** Ships until nothing is left or a shipment fails, then answers. */
async function drain() {
  const s = shipper;
  if (!s) return post({ type: "drained", through: 0 });
  while (busy) await Bun.sleep(TICK_MS);
  busy = true;
  try {
    for (let i = 0; i < 1000; i++) {
      const before = s.st.through;
      await s.shipOnce();
      if (s.st.through === before) break; // nothing left, or it failed: the caller's wait is bounded
    }
  } finally {
    busy = false;
  }
  stopping = true;
  post({ type: "drained", through: s.st.through });
}

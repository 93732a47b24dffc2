// A real etcd cluster for tests (Debian's etcd-server): N members on free loopback ports, each
// in its own temp data dir, started by the test and ended by pid. Timeouts are relaxed (250 ms
// heartbeat, 2.5 s election) so a busy 2-core machine does not make the members flap.
//
//   const why = EtcdCluster.unavailable();   // a reason to skip (no etcd binary)
//   const etcd = await EtcdCluster.start(3);
//   etcd.endpoints;                          // ["http://127.0.0.1:P1", ...]
//   etcd.kill(1); await etcd.restart(1); etcd.destroy();
//   etcd.kill(0); etcd.kill(1); etcd.kill(2); await etcd.restart(0, 1, 2);   // the whole cluster down and back
//   await EtcdCluster.start(1, { ca, cert, key });   // clients over HTTPS, with a client certificate from that CA
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, waitFor } from "./harness";

/** PEM files: the CA, and the certificate (for 127.0.0.1) and key etcd serves clients with. */
export interface EtcdTls {
  ca: string;
  cert: string;
  key: string;
}

export class EtcdCluster {
  private readonly procs: Array<ReturnType<typeof Bun.spawn> | null> = [];
  private constructor(
    private readonly dir: string,
    private readonly members: Array<{ name: string; client: number; peer: number }>,
    private readonly tls?: EtcdTls,
  ) {}

  static unavailable(): string | null {
    return Bun.which("etcd") ? null : "etcd is not installed (Debian: apt-get install etcd-server)";
  }

  static async start(n = 3, tls?: EtcdTls): Promise<EtcdCluster> {
    const dir = mkdtempSync(join(tmpdir(), "spl-etcd-"));
    const members = Array.from({ length: n }, (_, i) => ({ name: `m${i}`, client: freePort(), peer: freePort() }));
    const cluster = new EtcdCluster(dir, members, tls);
    for (let i = 0; i < n; i++) cluster.launch(i, "new");
    await cluster.healthy();
    return cluster;
  }

  get endpoints(): string[] {
    return this.members.map((m) => `${this.tls ? "https" : "http"}://127.0.0.1:${m.client}`);
  }

  private launch(i: number, state: "new" | "existing"): void {
    const m = this.members[i]!;
    const initial = this.members.map((x) => `${x.name}=http://127.0.0.1:${x.peer}`).join(",");
    this.procs[i] = Bun.spawn(
      [
        "etcd",
        "--name", m.name,
        "--data-dir", join(this.dir, m.name),
        "--listen-client-urls", this.endpoints[i]!,
        "--advertise-client-urls", this.endpoints[i]!,
        ...(this.tls ? ["--cert-file", this.tls.cert, "--key-file", this.tls.key, "--trusted-ca-file", this.tls.ca, "--client-cert-auth"] : []),
        "--listen-peer-urls", `http://127.0.0.1:${m.peer}`,
        "--initial-advertise-peer-urls", `http://127.0.0.1:${m.peer}`,
        "--initial-cluster", initial,
        "--initial-cluster-token", `spl-test-${this.dir.slice(-6)}`,
        "--initial-cluster-state", state,
        "--heartbeat-interval", "250",
        "--election-timeout", "2500",
        "--log-level", "error",
      ],
      { stdout: "ignore", stderr: "pipe", stdin: "ignore" },
    );
  }

  /** Waits until every running member says it is healthy (has a leader). */
  async healthy(timeoutMs = 60_000): Promise<void> {
    await waitFor(
      "every running etcd member to report health true (/health answers by member)",
      async () => {
        const answers: Record<string, string> = {};
        for (let i = 0; i < this.members.length; i++) {
          if (!this.procs[i]) continue;
          const tls = this.tls && { ca: await Bun.file(this.tls.ca).text(), cert: await Bun.file(this.tls.cert).text(), key: await Bun.file(this.tls.key).text() };
          const r = await fetch(`${this.endpoints[i]}/health`, { signal: AbortSignal.timeout(2000), ...(tls ? { tls } : {}) } as RequestInit).then((x) => x.json() as Promise<{ health?: string }>, (err) => ({ health: String(err) }));
          answers[this.endpoints[i]!] = String(r?.health);
        }
        return answers;
      },
      { timeoutMs, stepMs: 200, until: (answers) => Object.values(answers).every((h) => h === "true") },
    );
  }

  /** kill -9 of member i (its data stays, for restart). */
  kill(i: number): void {
    this.procs[i]?.kill("SIGKILL");
    this.procs[i] = null;
  }

  /** Starts members again (with their data) and waits until every running one is healthy. */
  async restart(...members: number[]): Promise<void> {
    for (const i of members) this.launch(i, "existing");
    await this.healthy();
  }

  destroy(): void {
    for (let i = 0; i < this.procs.length; i++) this.kill(i);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

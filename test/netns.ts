// Hosts for tests of what crosses a network (the fleet across hosts, failover): Linux network
// namespaces joined by a bridge, one namespace per host, each with its own address, its own HOME
// and SYNCROPEL_HOME, and a link that can be taken down (a partition) or slowed (tc tbf). Every
// name carries a random tag, so labs of concurrent tests never meet; destroy() removes them and
// ends the processes they started, by pid. Traffic goes only to the lab's own addresses.
//
//   const why = NetLab.unavailable();      // a reason to skip (not root, no `ip`, no netns)
//   const lab = new NetLab();
//   const a = lab.host("coordinator");     // 10.X.Y.2
//   await a.spl(["serve", "--daemon", "--host", a.ip, "--port", "9100"]);
//   lab.partition(a); lab.heal(a); lab.shape(a, "256kbit");
//   lab.destroy();
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SPL, track, type Run } from "./harness";

const run = (argv: string[]) => Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });

function must(argv: string[]): void {
  const r = run(argv);
  if (r.exitCode !== 0) throw new Error(`${argv.join(" ")} failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
}

export interface LabHost {
  readonly name: string;
  /** The namespace's name (`ip netns exec <ns> ...`). */
  readonly ns: string;
  readonly ip: string;
  /** Its temp HOME; SYNCROPEL_HOME is <home>/.syncro. */
  readonly home: string;
  readonly env: Record<string, string>;
  /** Runs `spl <args>` inside the namespace (the binary the tests drive, or `bin`). */
  spl(args: string[], opts?: { env?: Record<string, string>; timeoutMs?: number; bin?: string }): Promise<Run>;
  /** Runs any command inside the namespace. */
  exec(argv: string[], opts?: { env?: Record<string, string>; timeoutMs?: number }): Promise<Run>;
  /** Starts a long-running command inside the namespace; it is ended when the lab is destroyed. */
  spawn(argv: string[], opts?: { env?: Record<string, string> }): ReturnType<typeof Bun.spawn>;
  /** `http://<ip>:<port>`. */
  url(port?: number): string;
}

export class NetLab {
  readonly tag = Math.random().toString(16).slice(2, 6);
  private readonly bridge = `bs${this.tag}`;
  private readonly subnet = `10.${100 + Math.floor(Math.random() * 100)}.${Math.floor(Math.random() * 250)}`;
  private readonly hosts: Array<LabHost & { veth: string }> = [];
  private readonly procs: Array<ReturnType<typeof Bun.spawn>> = [];
  private readonly dirs: string[] = [];

  /** Why namespaces cannot be made here (a reason to skip the test), or null. */
  static unavailable(): string | null {
    if (process.getuid?.() !== 0) return "network namespaces need root (this run is not root)";
    if (!Bun.which("ip")) return "network namespaces need iproute2's `ip` (not installed)";
    const probe = `splprobe${Math.random().toString(16).slice(2, 6)}`;
    const r = run(["ip", "netns", "add", probe]);
    if (r.exitCode !== 0) return `cannot create a network namespace here: ${r.stderr.toString().trim()}`;
    run(["ip", "netns", "del", probe]);
    return null;
  }

  constructor() {
    must(["ip", "link", "add", this.bridge, "type", "bridge"]);
    must(["ip", "addr", "add", `${this.subnet}.1/24`, "dev", this.bridge]);
    must(["ip", "link", "set", this.bridge, "up"]);
  }

  host(name: string): LabHost {
    const i = this.hosts.length + 2;
    const ns = `spl${this.tag}-${name}`.slice(0, 30);
    const veth = `v${this.tag}${i}`;
    const ip = `${this.subnet}.${i}`;
    must(["ip", "netns", "add", ns]);
    must(["ip", "link", "add", veth, "type", "veth", "peer", "name", `${veth}p`]);
    must(["ip", "link", "set", `${veth}p`, "netns", ns]);
    must(["ip", "link", "set", veth, "master", this.bridge]);
    must(["ip", "link", "set", veth, "up"]);
    must(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    must(["ip", "netns", "exec", ns, "ip", "addr", "add", `${ip}/24`, "dev", `${veth}p`]);
    must(["ip", "netns", "exec", ns, "ip", "link", "set", `${veth}p`, "up"]);
    const home = mkdtempSync(join(tmpdir(), `spl-lab-${name}-`));
    this.dirs.push(home);
    const env = { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home, SYNCROPEL_HOME: join(home, ".syncro"), USER: name.replace(/[^A-Za-z0-9_-]/g, "_") };
    const lab = this;
    const exec = async (argv: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<Run> => {
      const proc = Bun.spawn(["ip", "netns", "exec", ns, ...argv], { env: { ...env, ...opts.env }, cwd: home, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
      const timer = setTimeout(() => proc.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
      const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      clearTimeout(timer);
      // A daemon it started is ours to end.
      for (const m of stdout.matchAll(/PID:\s+(\d+)/g)) track(Number(m[1]));
      return { code, stdout, stderr };
    };
    const h = {
      name,
      ns,
      ip,
      home,
      env,
      veth,
      exec,
      spl: (args: string[], opts: { env?: Record<string, string>; timeoutMs?: number; bin?: string } = {}) => exec([opts.bin ?? SPL, ...args], opts),
      spawn(argv: string[], opts: { env?: Record<string, string> } = {}) {
        const p = Bun.spawn(["ip", "netns", "exec", ns, ...argv], { env: { ...env, ...opts.env }, cwd: home, stdin: "ignore", stdout: "pipe", stderr: "pipe" });
        lab.procs.push(p);
        return p;
      },
      url: (port = 9100) => `http://${ip}:${port}`,
    };
    this.hosts.push(h);
    return h;
  }

  /** Takes the host's link down: nothing reaches it or leaves it until heal(). */
  partition(h: LabHost): void {
    must(["ip", "link", "set", this.own(h).veth, "down"]);
  }

  heal(h: LabHost): void {
    must(["ip", "link", "set", this.own(h).veth, "up"]);
  }

  /** Limits the host's link to `rate` (e.g. "256kbit") with a token bucket. */
  shape(h: LabHost, rate: string): void {
    must(["tc", "qdisc", "replace", "dev", this.own(h).veth, "root", "tbf", "rate", rate, "burst", "32kbit", "latency", "400ms"]);
  }

  private own(h: LabHost) {
    const found = this.hosts.find((x) => x.ns === h.ns);
    if (!found) throw new Error(`${h.name} is not a host of this lab`);
    return found;
  }

  /** Ends what the lab started (by pid), removes its namespaces, links and temp homes. */
  destroy(): void {
    for (const p of this.procs) p.kill("SIGKILL");
    for (const h of this.hosts) {
      // Daemons started inside a namespace die with it only if nothing holds it: end them first.
      const pids = run(["ip", "netns", "pids", h.ns]).stdout.toString().split(/\s+/).filter(Boolean);
      for (const pid of pids) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {}
      }
      run(["ip", "netns", "del", h.ns]);
      run(["ip", "link", "del", h.veth]);
    }
    run(["ip", "link", "del", this.bridge]);
    for (const d of this.dirs) rmSync(d, { recursive: true, force: true });
  }
}

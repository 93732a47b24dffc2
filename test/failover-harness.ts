// What the automatic-failover tests share (README "Automatic failover with etcd"): a fleet of spl
// daemons electing their coordinator in a real etcd cluster (test/etcd.ts). Every member is a
// candidate unless told otherwise and holds the same join credential at its first start (as the
// docker-compose etcd variant gives it), so the first elected founds the fleet and the others join
// it at their first beat.
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { EtcdCluster } from "./etcd";
import { Instance, isAlive, processGone, track, waitFor } from "./harness";

export interface MemberOptions {
  candidate?: boolean;
  /** The etcd endpoints this member uses (default: the cluster's). */
  endpoints?: string[];
}

export interface FleetOptions {
  ttlSecs?: number;
  heartbeatSecs?: number;
  failClosedSecs?: number;
  members?: Record<string, MemberOptions>;
  /** More [fleet.etcd] keys for every member (TOML values, e.g. { username: '"spl"' }). */
  etcdKeys?: Record<string, string>;
}

export type Member = Instance & { readonly name: string; pid: number };

export function etcdFleet(etcd: EtcdCluster, names: readonly string[], o: FleetOptions = {}) {
  const prefix = `/spltest/${randomBytes(4).toString("hex")}`;
  const join_ = `spl_join_${randomBytes(8).toString("hex")}_${randomBytes(24).toString("hex")}`;
  const ttl = o.ttlSecs ?? 5;
  const members = new Map<string, Member>();
  for (const name of names) members.set(name, Object.assign(new Instance(), { name, pid: 0 }));

  /** Writes a member's config.toml (after `spl init`) and its join credential. */
  async function prepare(m: Member) {
    const r = await m.spl(["init"]);
    if (r.code !== 0) throw new Error(`spl init for ${m.name}: ${r.stderr}`);
    const mo = o.members?.[m.name] ?? {};
    appendFileSync(
      m.path("config.toml"),
      [
        "",
        "[fleet]",
        `name = "${m.name}"`,
        `candidate = ${mo.candidate ?? true}`,
        `heartbeat_interval_secs = ${o.heartbeatSecs ?? 3}`,
        `fail_closed_after_secs = ${o.failClosedSecs ?? 0}`,
        "",
        "[fleet.etcd]",
        `endpoints = ${JSON.stringify(mo.endpoints ?? etcd.endpoints)}`,
        `prefix = "${prefix}"`,
        `lease_ttl_secs = ${ttl}`,
        ...Object.entries(o.etcdKeys ?? {}).map(([k, v]) => `${k} = ${v}`),
        "",
      ].join("\n"),
    );
    mkdirSync(m.path("secrets"), { recursive: true });
    writeFileSync(m.path("secrets", "fleet_token"), `${join_}\n`, { mode: 0o600 });
  }

  /** What a member says of itself, or null when it does not answer within 3 s (down, or stopped with SIGSTOP). */
  const self = async (m: Member) => {
    const r = await Promise.race([m.socket("GET", "/v1/fleet/member").catch(() => null), Bun.sleep(3000).then(() => null)]);
    return r?.status === 200 ? r.json : null;
  };

  const fleet = {
    prefix,
    ttl,
    members,
    get: (name: string) => members.get(name)!,
    all: () => [...members.values()],
    async start(name: string) {
      const m = members.get(name)!;
      if (!m.pid) await prepare(m);
      m.pid = await m.start();
      track(m.pid);
      return m;
    },
    async startAll() {
      for (const name of names) await fleet.start(name);
    },
    /** kill -9, once it is gone (the member stays in the map; start() brings it back with its home). */
    async kill(name: string) {
      const m = members.get(name)!;
      if (isAlive(m.pid)) process.kill(m.pid, "SIGKILL");
      await processGone(m.pid);
    },
    self,
    /** What each running member says of itself: role, epoch, who it follows. */
    async view() {
      const out: Record<string, string> = {};
      for (const m of members.values()) {
        const s = isAlive(m.pid) ? await self(m) : null;
        out[m.name] = s ? `${s.role}@${s.epoch}->${s.election?.coordinator?.name ?? "none"}` : "down";
      }
      return out;
    },
    /** Waits until every running member (of `among`) names one coordinator, which says it coordinates; returns its name and epoch. */
    async agreed(among: readonly string[] = names, timeoutMs = 60_000): Promise<{ name: string; epoch: number }> {
      let found: { name: string; epoch: number } | null = null;
      await waitFor(
        `members ${among.join(", ")} to agree on one elected coordinator that says it coordinates`,
        async () => {
          const seen: Record<string, unknown> = {};
          found = null;
          const named = new Set<string>();
          for (const n of among) {
            const s = await self(members.get(n)!);
            seen[n] = s ? { role: s.role, epoch: s.epoch, coordinator: s.election?.coordinator?.name ?? null, etcd: s.election?.reachable } : "down";
            named.add(s?.election?.coordinator ? `${s.election.coordinator.name}@${s.election.coordinator.epoch}` : "none");
          }
          if (named.size === 1 && !named.has("none")) {
            const [name, epoch] = [...named][0]!.split("@");
            const c = await self(members.get(name!)!);
            if (c?.role === "coordinator" && c.epoch === Number(epoch)) found = { name: name!, epoch: Number(epoch) };
          }
          return seen;
        },
        { timeoutMs, stepMs: 100, until: () => found !== null },
      );
      return found!;
    },
    async stopAll() {
      for (const m of members.values()) if (m.pid && isAlive(m.pid)) await m.stop();
    },
  };
  return fleet;
}

export type EtcdFleet = ReturnType<typeof etcdFleet>;

/** A member's log lines (JSON), parsed. */
export function logLines(m: Instance): Array<Record<string, any>> {
  try {
    return readFileSync(m.path("logs", "spl.log"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        try {
          return JSON.parse(l);
        } catch {
          return { raw: l };
        }
      });
  } catch {
    return [];
  }
}

export const joinPath = join;

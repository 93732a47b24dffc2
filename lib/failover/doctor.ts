// The doctor's rows for automatic failover (README "Automatic failover with etcd"): whether etcd
// answers this member, and who the key names as coordinator, since when. With the daemon running
// they are its view (GET /v1/fleet/member); without it the CLI asks etcd itself.
import { request } from "../client";
import { formatDuration } from "../cli/output";
import { sectionOf } from "../config";
import { type Check, type CheckResult, fail, pass, warn } from "../doctor/types";
import type { ElectionStatus } from "../fleet/contract";
import { fleetSection } from "../fleet/config";
import { etcdClient, etcdSection } from "./config";
import { keys, parseJson } from "./keys";

const ago = (unix: number) => formatDuration(Math.max(0, Math.floor(Date.now() / 1000) - unix));

/** The row naming the coordinator (or that none is elected), from what the election says. */
export function coordinatorRow(s: Pick<ElectionStatus, "coordinator" | "candidate">, candidates: string): CheckResult {
  const c = s.coordinator;
  if (c) return pass("fleet election", `${c.name} at ${c.url}, epoch ${c.epoch} (elected in etcd ${ago(c.since_unix)} ago)`);
  return warn("fleet election", `none elected now — a candidate takes the key within lease_ttl_secs of it being free; ${candidates}`);
}

export const failoverRows: Check = async (ctx) => {
  const config = ctx.config && sectionOf(ctx.config, etcdSection);
  if (!ctx.config || !config) return null;
  const fleet = sectionOf(ctx.config, fleetSection);
  const candidates = fleet.candidate ? "this member is a candidate" : "this member is no candidate: make sure some are ([fleet] candidate = true)";
  const fix = `check the cluster: etcdctl --endpoints ${config.endpoints.join(",")} endpoint health — meanwhile members keep serving, no coordinator is elected, and after [fleet] fail_closed_after_secs (${fleet.failClosedAfterSecs} s) without a coordinator or etcd new work is refused`;
  const running = ctx.daemonIsOurs ? await request("GET", "/v1/fleet/member", undefined, ctx.target, 3000).catch(() => null) : null;
  const s: ElectionStatus | undefined = running?.status === 200 ? running.body?.election : undefined;
  if (s) {
    if (!s.reachable) return [fail("fleet etcd", `etcd does not answer this member: ${s.error} — ${fix}`)];
    const pending = s.control_pending.length ? warn("fleet etcd", `${s.control_pending.length} control record(s) written here are not in etcd yet (published as soon as it takes them)`) : null;
    return [pass("fleet etcd", `etcd answers at ${config.endpoints.join(", ")} (prefix ${config.prefix}, lease ${s.lease_ttl_secs} s)`), ...(pending ? [pending] : []), coordinatorRow(s, candidates)];
  }
  // No daemon of this home answers: ask etcd from here.
  try {
    const kv = await etcdClient(config).get(keys(config.prefix).coordinator);
    const v = kv ? parseJson(kv.value) : null;
    const coordinator = v?.ready ? { did: String(v.did), name: String(v.name), url: String(v.endpoint), epoch: kv!.createRevision, since_unix: Number(v.since_unix) || 0 } : null;
    return [pass("fleet etcd", `etcd answers at ${config.endpoints.join(", ")} (prefix ${config.prefix})`), coordinatorRow({ coordinator, candidate: fleet.candidate }, candidates)];
  } catch (err) {
    return [fail("fleet etcd", `${(err as Error).message.split(" — ")[0]} — ${fix}`)];
  }
};

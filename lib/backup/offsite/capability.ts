// Off-host backups (README "Off-host backups in five minutes"): [backup.offsite] names a file://
// or s3:// destination; the daemon pushes a verified snapshot there on schedule and, with
// continuous replication, ships committed records as they go. This capability adds that service,
// the `offsite` field of GET /v1/status, its /metrics families and the doctor's rows.
import type { Capability, MetricsOut } from "../../capability";
import { offsiteSection } from "./config";
import { offsiteBackup } from "./doctor";
import { offsiteService } from "./service";

/** Whether any copy leaves this machine: the series an "off-host not configured" alert reads. */
function configured(out: MetricsOut, yes: boolean) {
  out.family("spl_offsite_configured", "gauge", "1 when [backup.offsite] names a destination, 0 when every backup is on this machine only.");
  out.sample("spl_offsite_configured", yes ? 1 : 0);
}

export const offsiteCapability: Capability = {
  name: "offsite",
  config: offsiteSection,
  doctor: [offsiteBackup],
  setup(host) {
    const config = host.config(offsiteSection);
    if (!config) return { status: () => ({ offsite: { configured: false } }), metrics: (out) => configured(out, false) };
    const service = offsiteService({ paths: host.paths, config, log: host.log });
    return {
      services: [service],
      status: () => ({ offsite: service.status() }),
      metrics: (out) => {
        configured(out, true);
        service.metrics(out);
      },
    };
  },
};

// Off-host backups (README "Off-host backups in five minutes"): [backup.offsite] names a file://
// or s3:// destination; the daemon pushes a verified snapshot there on schedule and, with
// continuous replication, ships committed records as they go. This capability adds that service,
// the `offsite` field of GET /v1/status, its /metrics families and the doctor's rows.
import type { Capability } from "../../capability";
import { offsiteSection } from "./config";
import { offsiteBackup } from "./doctor";
import { offsiteService } from "./service";

export const offsiteCapability: Capability = {
  name: "offsite",
  config: offsiteSection,
  doctor: [offsiteBackup],
  setup(host) {
    const config = host.config(offsiteSection);
    if (!config) return { status: () => ({ offsite: { configured: false } }) };
    const service = offsiteService({ paths: host.paths, config, log: host.log });
    return { services: [service], status: () => ({ offsite: service.status() }), metrics: (out) => service.metrics(out) };
  },
};

// Off-host backups (README "Off-host backups in five minutes"): [backup.offsite] names a file://
// or s3:// destination; the daemon pushes a verified snapshot there on schedule. This capability
// adds the schedule service, the `offsite` field of GET /v1/status, its metrics and the doctor's rows.
import type { Capability } from "../../capability";
import { offsiteSection } from "./config";
import { offsiteBackup } from "./doctor";
import { offsiteMetrics } from "./metrics";
import { offsiteService } from "./service";

export const offsiteCapability: Capability = {
  name: "offsite",
  config: offsiteSection,
  doctor: [offsiteBackup],
  setup(host) {
    const config = host.config(offsiteSection);
    if (!config) return { status: () => ({ offsite: { configured: false } }), metrics: offsiteMetrics(() => null) };
    const service = offsiteService({ paths: host.paths, config, log: host.log });
    return { services: [service], status: () => ({ offsite: service.status() }), metrics: offsiteMetrics(() => service.status()) };
  },
};

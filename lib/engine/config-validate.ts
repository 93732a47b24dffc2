// Checks one config body exactly as the fold will, before anyone writes it: the CLI's add-*
// verbs and POST /v1/config/rules answer a bad rule with its error (and column) up front.
import type { StoredRecord } from "../records/types";
import { ENGINE_CONFIG_THREAD, EngineConfig, type RefusedConfig } from "./config-fold";

/** null when the fold would accept `body` (topic included); else why it would refuse it. */
export function configBodyProblem(body: Record<string, unknown>): RefusedConfig | { error: string; column?: undefined } | null {
  const probe = new EngineConfig();
  const rec: StoredRecord = {
    id: "candidate",
    sequence: 1,
    created_at: 0,
    act: "LEARN",
    thread: ENGINE_CONFIG_THREAD,
    actor: "did:sync:user:candidate",
    body,
    clock: 0,
    data_type: "SCALAR",
    parents: [],
    judged_by: null,
  };
  const r = probe.apply(rec);
  if (probe.skipped().count) return { error: r.warning ?? "unknown topic" };
  return probe.refused()[0] ?? null;
}

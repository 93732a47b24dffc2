// The capabilities the daemon is built from, in order (ARCHITECTURE.md "Capabilities"). Order
// matters: folds see a record in this order, services start in it and stop in reverse (the fleet
// is last: its heartbeat starts last and stops first; failover just before it, so the fleet sees
// the election at setup), write checks of one phase run in it, and
// doctor rows follow it. A new capability is one module and one entry here.
//
// Importing this list also makes its CEL functions known to the CEL host (installCelFunctions),
// so anything that compiles rules — the daemon, the evaluation worker, `spl expr` — imports it.
import type { Capability } from "./capability";
import { CORE_SECTIONS, type ConfigSection } from "./config";
import { installCelFunctions } from "./engine/vocabulary";
import { tasksCapability } from "./tasks/capability";
import { dispatchCapability } from "./dispatch/capability";
import { killSwitchCapability } from "./fleet/killswitch";
import { fanoutCapability } from "./fanout/capability";
import { offsiteCapability } from "./backup/offsite/capability";
import { failoverCapability } from "./failover/capability";
import { fleetCapability } from "./fleet/capability";

export const CAPABILITIES: readonly Capability[] = [tasksCapability, dispatchCapability, killSwitchCapability, fanoutCapability, offsiteCapability, failoverCapability, fleetCapability];

/** Every table config.toml may hold: the daemon's own, then each capability's. */
export const CONFIG_SECTIONS: readonly ConfigSection<unknown>[] = [...CORE_SECTIONS, ...CAPABILITIES.flatMap((c) => (c.config ? [c.config] : []))];

installCelFunctions(CAPABILITIES.flatMap((c) => c.cel ?? []));

/**
 * The process model's parameters: how long a service that the master starts
 * on demand (the service table's `onDemand`, src/global/system/service-table.ts)
 * stays without work before it exits. Read by those services (showq, local, pickup)
 * through the daemon skeleton (src/daemon/idle-exit.ts).
 */
import { t, type ParamDef } from "../param-def.ts";

export const processModelParams = (): ParamDef[] => [
  t("max_idle", "s", "100s", "How long a service started on demand (showq, local, pickup) waits for a connection, a request or a maildrop entry before it exits; the master starts it again for the next one", ["showq", "local", "pickup"]),
];

/** The scenarios bench/run.ts knows: name -> lazy import of its file. */
import type { Scenario } from "../lib/scenario.ts";

export const SCENARIOS: Record<string, () => Promise<{ scenario: Scenario }>> = {
  "sendmail-latency": () => import("./sendmail-latency.ts"),
  "sendmail-throughput": () => import("./sendmail-throughput.ts"),
  "smtp-throughput": () => import("./smtp-throughput.ts"),
  relay: () => import("./relay.ts"),
  "milter-opendkim": () => import("./milter-opendkim.ts"),
  virtual: () => import("./virtual.ts"),
  mysql: () => import("./mysql.ts"),
};

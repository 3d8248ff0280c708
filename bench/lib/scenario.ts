/**
 * The contract between the harness (bench/run.ts) and a scenario file
 * under bench/scenarios/: a scenario gets the prepared context (both
 * instances set up but not started, the bench user, a temp directory) and
 * returns measurements; the harness prints them and the JSON line.
 */
import type { BenchContext, RunOptions } from "./context.ts";
import type { Summary } from "./stats.ts";
import type { Unavailable } from "./mta.ts";

export type Side = Summary | Unavailable;

export interface Measurement {
  /** What was measured, e.g. "daemon down". */
  name: string;
  unit: string;
  better: "lower" | "higher";
  postfix: Side;
  postern: Side;
  /** Optional target on postern/Postfix (e.g. at most 0.8, at least 2). */
  target?: { ratio: number; kind: "at most" | "at least" };
  /** Failed runs and other remarks for this row. */
  notes?: string[];
}

export interface ScenarioResult {
  /** The command measured, as a user would type it. */
  command: string;
  measurements: Measurement[];
  notes: string[];
}

export interface ScenarioOption {
  type: "string" | "boolean";
  description: string;
}

export interface Scenario {
  name: string;
  summary: string;
  defaultRuns: number;
  /** Extra command-line options of this scenario (--name). */
  options?: Record<string, ScenarioOption>;
  /**
   * Extra main.cf / postern.toml parameters for this scenario's instances (relayhost,
   * limits), decided before they are created; lib/context.ts's freePort() picks ports.
   */
  parameters?: (options: RunOptions) => InstanceParameters;
  run(ctx: BenchContext): Promise<ScenarioResult>;
}

export interface InstanceParameters {
  postfix?: Record<string, string>;
  postern?: Record<string, string>;
}

export function isUnavailable(side: Side): side is Unavailable {
  return "unavailable" in side;
}

/**
 * Side-by-side runs as every throughput scenario makes them: for each level
 * (a session count, a number of submitters), `runs` rounds in which the
 * started systems take turns (Postfix, postern, then postern, Postfix, ...),
 * after both were started and left to settle, and the per-level results turned into report rows: a summary of the runs
 * that completed, "not yet applicable" for a system that could not start,
 * and the failures as row notes. Runs in the harness; trusts its callers.
 */
import type { BenchContext } from "./context.ts";
import type { Mta, MtaName, Unavailable } from "./mta.ts";
import type { Side } from "./scenario.ts";
import { summarize } from "./stats.ts";
import { sleepMs } from "./wait.ts";

/** What a run reports when it did not complete (undefined when it did). */
export type RunFailure<R> = (r: R) => string | undefined;

/** The runs of each system at each level. */
export class RunTable<L, R> {
  readonly #runs = new Map<string, R[]>();
  readonly #levelKey: (l: L) => string;

  constructor(levelKey: (l: L) => string) {
    this.#levelKey = levelKey;
  }

  #key(name: MtaName, level: L): string {
    return `${name}/${this.#levelKey(level)}`;
  }

  add(name: MtaName, level: L, r: R): void {
    const list = this.#runs.get(this.#key(name, level)) ?? [];
    list.push(r);
    this.#runs.set(this.#key(name, level), list);
  }

  runs(name: MtaName, level: L): R[] {
    return this.#runs.get(this.#key(name, level)) ?? [];
  }

  /** Every run of one system, at any level. */
  all(name: MtaName): R[] {
    return [...this.#runs.entries()].filter(([k]) => k.startsWith(`${name}/`)).flatMap(([, list]) => list);
  }

  /**
   * A report side: `unavailable` when the system did not run, else the summary of `pick` over
   * the runs that completed, or `{ unavailable: none }` when none did.
   */
  side(name: MtaName, level: L, pick: (r: R) => number, failure: RunFailure<R>, unavailable: Unavailable | undefined, none = "every run failed"): Side {
    if (unavailable) return unavailable;
    const ok = this.runs(name, level).filter((r) => failure(r) === undefined);
    return ok.length ? summarize(ok.map(pick)) : { unavailable: none };
  }

  /** side() and failures() bound to one failure test and to the systems that did not run. */
  report(failure: RunFailure<R>, unavailable: (name: MtaName) => Unavailable | undefined, none?: string) {
    return {
      side: (name: MtaName, level: L, pick: (r: R) => number): Side => this.side(name, level, pick, failure, unavailable(name), none),
      failures: (level: L): string[] => this.failures(level, failure),
    };
  }

  /** "postern: <why>" for each failed run of both systems at one level. */
  failures(level: L, failure: RunFailure<R>): string[] {
    return (["postfix", "postern"] as const).flatMap((n) => this.runs(n, level).flatMap((r) => (failure(r) === undefined ? [] : [`${n}: ${failure(r)}`])));
  }
}

/** What alternateRuns runs: each level `runs` times on each active system (Mta, or anything that names one). */
export interface RunPlan<M, L> {
  levels: readonly L[];
  runs: number;
  active: readonly M[];
  /** The system `m` runs on. */
  system: (m: M) => MtaName;
  /** A level as a map key ("20", "20/10"). */
  levelKey: (l: L) => string;
}

/** Runs `one` `runs` times per level and system, the systems taking turns; `one` reports its own progress. */
export async function alternateRuns<M, L, R>(plan: RunPlan<M, L>, one: (m: M, level: L, run: number) => Promise<R>): Promise<RunTable<L, R>> {
  const table = new RunTable<L, R>(plan.levelKey);
  for (const l of plan.levels) {
    for (let i = 0; i < plan.runs; i++) {
      const order = i % 2 === 0 ? plan.active : [...plan.active].reverse();
      for (const m of order) table.add(plan.system(m), l, await one(m, l, i));
    }
  }
  return table;
}

/** The plan of an SMTP scenario: Mta systems. */
export function mtaPlan<L>(levels: readonly L[], runs: number, active: readonly Mta[], levelKey: (l: L) => string = String): RunPlan<Mta, L> {
  return { levels, runs, active, system: (m) => m.name, levelKey };
}

/** The side of a system that did not start: "not yet applicable (why)". */
export function notApplicable(u: Unavailable | undefined): Unavailable | undefined {
  return u ? { unavailable: `not yet applicable (${u.unavailable})` } : undefined;
}

/**
 * How long a started system is left alone before the first run (and before its idle memory is read): past
 * postern's start-up collection and trim of the executable's pages, 2 s after each daemon's start
 * (src/util/start-gc.ts), so the idle figure is not taken in the middle of them.
 */
export const SETTLE_MS = 5000;

/**
 * Starts both systems and lets them settle: Postfix must start; postern may be unavailable, and is
 * then left out of `active`.
 */
export function startSystems(ctx: Pick<BenchContext, "postfix" | "postern">, settleMs = SETTLE_MS): { started: Record<MtaName, Unavailable | undefined>; active: Mta[] } {
  const started: Record<MtaName, Unavailable | undefined> = { postfix: ctx.postfix.start(), postern: ctx.postern.start() };
  if (started.postfix) throw new Error(`Postfix did not start: ${started.postfix.unavailable}`);
  sleepMs(settleMs);
  return { started, active: [ctx.postfix, ctx.postern].filter((m) => !started[m.name]) };
}

/**
 * What every fuzz target under test/fuzz/ shares: a fixed seed per property
 * (so `npm test` runs the same cases every time), a bounded number of runs,
 * and a failure message that names the seed and how to run the property
 * again with it or with more cases.
 *
 *     FUZZ_SEED=1234 bun test test/fuzz/dns-wire.test.ts      one property's failing seed again
 *     FUZZ_RUNS=20 bun test test/fuzz/                        twenty times the cases, other seeds
 *
 * FUZZ_RUNS multiplies the number of cases and, above 1, derives new seeds from
 * the fixed ones, so a longer local run explores inputs the suite does not.
 *
 * A hang is bounded two ways: asynchronous properties (an SMTP session) get a
 * per-case time limit from fast-check; synchronous parsers cannot be
 * interrupted, so their inputs are bounded in size and each case must finish
 * under a ceiling far above its normal cost (a few milliseconds): only an
 * endless or exponential loop crosses it.
 *
 * Test code only: runs inside `bun test`, trusts nothing it generates.
 */
import fc from "fast-check";

/** A synchronous case taking longer than this is a hang or an exponential blow-up, not a slow machine. */
export const CASE_CEILING_MS = 2000;

const multiplier = Math.max(1, Number(process.env.FUZZ_RUNS ?? 1) || 1);
const seedOverride = process.env.FUZZ_SEED === undefined ? undefined : Number(process.env.FUZZ_SEED);

/** bun's time limit for one fuzz test (bun test's default of 5 s is too short for a few thousand cases under load). */
export const TEST_TIMEOUT_MS = 60_000 * multiplier;

/** The seed for a property: its fixed seed, FUZZ_SEED, or one derived from both under FUZZ_RUNS. */
function seedFor(fixed: number): number {
  if (seedOverride !== undefined && Number.isFinite(seedOverride)) return seedOverride;
  return multiplier > 1 ? (fixed * 7919 + multiplier * 104729 + (Date.now() % 1_000_000)) | 0 : fixed;
}

function reportFailure(err: unknown, seed: number, runs: number): never {
  const text = err instanceof Error ? err.message : String(err);
  throw new Error(`fuzz property failed with seed ${seed} (${runs} runs); run it again with FUZZ_SEED=${seed}\n${text}`, { cause: err });
}

/** Runs a synchronous property `runs` times (times FUZZ_RUNS) from a fixed seed. */
export function fuzz<T>(seed: number, runs: number, arb: fc.Arbitrary<T>, check: (value: T) => void, ceilingMs = CASE_CEILING_MS): void {
  const s = seedFor(seed);
  const n = runs * multiplier;
  try {
    fc.assert(
      fc.property(arb, (value) => {
        const started = performance.now();
        check(value);
        const took = performance.now() - started;
        if (took > ceilingMs) throw new Error(`one case took ${Math.round(took)} ms (ceiling ${ceilingMs} ms): a hang or a blow-up`);
      }),
      { seed: s, numRuns: n, endOnFailure: false, includeErrorInReport: true },
    );
  } catch (err) {
    reportFailure(err, s, n);
  }
}

/** Runs an asynchronous property; each case fails after `caseTimeoutMs`. */
export async function fuzzAsync<T>(seed: number, runs: number, arb: fc.Arbitrary<T>, check: (value: T) => Promise<void>, caseTimeoutMs = 5000): Promise<void> {
  const s = seedFor(seed);
  const n = runs * multiplier;
  try {
    await fc.assert(fc.asyncProperty(arb, check), { seed: s, numRuns: n, timeout: caseTimeoutMs, endOnFailure: false, includeErrorInReport: true });
  } catch (err) {
    reportFailure(err, s, n);
  }
}

/**
 * Calls `parse` and returns what it returned, or the error when it threw one
 * of the parser's documented error types; any other exception is a finding.
 */
export function expectOnly<R>(parse: () => R, ...allowed: Array<abstract new (...args: never[]) => Error>): R | Error {
  try {
    return parse();
  } catch (err) {
    if (allowed.some((type) => err instanceof type)) return err as Error;
    throw new Error(`undocumented exception escaped the parser: ${(err as Error)?.stack ?? String(err)}`);
  }
}

/** Bytes that parsers split on, mixed with ordinary ones: finds framing bugs far sooner than uniform bytes. */
export function bytesFrom(alphabet: readonly number[], maxLength: number): fc.Arbitrary<Uint8Array> {
  return fc.array(fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...alphabet) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }), { maxLength }).map((a) => Uint8Array.from(a));
}

/** A byte string cut into 1..8 pieces at random places (TCP segments). */
export function chunked(bytes: Uint8Array): fc.Arbitrary<Uint8Array[]> {
  return fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, bytes.length - 1) }), { maxLength: Math.min(7, Math.max(0, bytes.length - 1)) }).map((cuts) => {
    const points = [0, ...cuts.filter((c) => c < bytes.length).sort((a, b) => a - b), bytes.length];
    const out: Uint8Array[] = [];
    for (let i = 0; i + 1 < points.length; i++) if (points[i + 1]! > points[i]!) out.push(bytes.subarray(points[i], points[i + 1]));
    return out;
  });
}

export { fc };

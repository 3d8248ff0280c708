/**
 * The executable starts with a high JIT tier-up threshold (scripts/build.ts:
 * --compile-jit-policy=100), which saves short-lived commands such as
 * sendmail 1-2.6 ms of CPU each (measured by bench/). Long-running daemons
 * call this first to get the normal policy back.
 */
export function useNormalJitPolicy(): void {
  (Bun as unknown as { unsafe: { setJITPolicy?(n: number): void } }).unsafe.setJITPolicy?.(1);
}

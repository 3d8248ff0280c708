/**
 * The executable starts with a high JIT tier-up threshold (scripts/build.ts:
 * --compile-jit-policy=100), which saves short-lived commands such as
 * sendmail 1-2.6 ms of CPU each (measured by bench/). Long-running daemons
 * whose work is hot loops (the master, smtpd) call useNormalJitPolicy()
 * first to get the normal policy back. The daemons that do a little work per
 * message, once per message (pickup, the queue manager, local and its
 * worker), keep the reluctant one: at normal thresholds their JIT threads
 * compiled code that ran a few hundred times and cost more CPU than it
 * saved (bench/README.md, issue 16 session 5); code that runs for every
 * message still reaches the JIT, only later. The queue manager returns to
 * the normal policy when it first loads the SMTP client (src/qmgr/agents.ts):
 * relaying is where its code runs hot, and that path was not measured with
 * the reluctant policy. Which JIT tiers a role has at all (JSC options,
 * which only the environment at start sets) is chosen by the process that
 * starts it: src/global/system/jsc-environment.ts.
 */
type Unsafe = { unsafe: { setJITPolicy?(n: number): void } };

/** The executable's start-up policy (scripts/build.ts --compile-jit-policy). */
export const RELUCTANT_JIT_POLICY = 100;

export function useNormalJitPolicy(): void {
  (Bun as unknown as Unsafe).unsafe.setJITPolicy?.(1);
}

/** The start-up policy, set explicitly so that it does not depend on how the executable was built. */
export function useReluctantJitPolicy(): void {
  (Bun as unknown as Unsafe).unsafe.setJITPolicy?.(RELUCTANT_JIT_POLICY);
}

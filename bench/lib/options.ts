/**
 * Reading a scenario's own command-line options (`--messages 2000`,
 * `--sessions 1,20,100`): whole numbers with a floor, and comma lists of
 * them. Runs in the harness; the values come from whoever runs the bench,
 * and a bad one stops the run with a message naming the option.
 */

/** The option's whole number (`fallback` when absent); at least `min`, else an error naming `--what`. */
export function wholeNumber(v: unknown, fallback: number, what: string, min = 1): number {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${what} must be a whole number of at least ${min}, not "${v}"`);
  return n;
}

/** A comma list of whole numbers ("1,20,100"), `fallback` when the option is absent. */
export function numberList(v: unknown, fallback: string, what: string, min = 1): number[] {
  return String(v ?? fallback)
    .split(",")
    .map((item) => wholeNumber(item.trim(), 1, what, min));
}

/** The --messages option of the throughput scenarios. */
export const MESSAGES_OPTION = { type: "string", description: "messages per run (default 2000)" } as const;

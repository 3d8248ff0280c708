/**
 * Postfix's delay figures in delivery log lines: `delay=` (total) and
 * `delays=a/b/c/d` (before the queue manager, in it, connection set-up,
 * transmission), with at most delay_logging_resolution_limit digits after
 * the point and trailing zeros dropped.
 */
export function formatDelay(seconds: number, digits: number): string {
  const s = Math.max(0, seconds);
  const text = s.toFixed(Math.max(0, Math.min(6, digits)));
  return text.includes(".") ? text.replace(/\.?0+$/, "") || "0" : text;
}

export interface DelayParts {
  arrival: number;
  activated: number;
  started: number;
  finished: number;
}

export function delayFields(t: DelayParts, digits: number): string {
  const f = (ms: number) => formatDelay(ms / 1000, digits);
  return `delay=${f(t.finished - t.arrival)}, delays=${f(t.activated - t.arrival)}/${f(t.started - t.activated)}/0/${f(t.finished - t.started)}`;
}

/** The next retry: the time since arrival, clamped to [minimal_backoff_time, maximal_backoff_time]. */
export function backoffSeconds(ageSeconds: number, minimal: number, maximal: number): number {
  return Math.min(maximal, Math.max(minimal, ageSeconds));
}

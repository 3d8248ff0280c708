/**
 * Summaries of measured samples: median and spread (p10/p90, min/max), and
 * the postern/Postfix ratio. Percentiles interpolate linearly between the
 * two nearest ranks (the "R-7" definition spreadsheets use).
 */

export interface Summary {
  n: number;
  median: number;
  p10: number;
  p90: number;
  min: number;
  max: number;
  mean: number;
}

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

export function summarize(samples: number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    n: sorted.length,
    median: percentile(sorted, 0.5),
    p10: percentile(sorted, 0.1),
    p90: percentile(sorted, 0.9),
    min: sorted[0] ?? NaN,
    max: sorted.at(-1) ?? NaN,
    mean: sorted.reduce((s, x) => s + x, 0) / (sorted.length || 1),
  };
}

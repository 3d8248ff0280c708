/**
 * Postfix time and size values: "300s", "5d", "1h30m" (Postfix 3.x accepts
 * a sequence of number+unit pairs), a bare number taking the parameter's
 * default unit.
 */
export type TimeUnit = "s" | "m" | "h" | "d" | "w";

const SECONDS: Record<TimeUnit, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** Seconds in `text`, or undefined when it is not a Postfix time value. */
export function parseTime(text: string, defaultUnit: TimeUnit = "s"): number | undefined {
  const s = text.trim().toLowerCase();
  if (/^\d+$/.test(s)) return Number(s) * SECONDS[defaultUnit];
  if (!/^(\d+[smhdw])+$/.test(s)) return undefined;
  let total = 0;
  for (const m of s.matchAll(/(\d+)([smhdw])/g)) total += Number(m[1]) * SECONDS[m[2] as TimeUnit];
  return total;
}

/** A non-negative integer, or undefined (Postfix rejects signs, spaces and fractions). */
export function parseInteger(text: string): number | undefined {
  const s = text.trim();
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** Postfix booleans: yes/no (any case); TOML's true/false are accepted as well. */
export function parseBoolean(text: string): boolean | undefined {
  const s = text.trim().toLowerCase();
  if (s === "yes" || s === "true") return true;
  if (s === "no" || s === "false") return false;
  return undefined;
}

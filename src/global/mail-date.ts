/**
 * Dates as they appear in mail headers and delivery reports: RFC 5322
 * `Sat, 21 Nov 2026 06:26:45 +0000 (UTC)` in local time, with the zone
 * abbreviation as a comment when the system has one (Postfix's mail_date).
 *
 * Used by every role that writes Date:, Received: or DSN date fields; pure
 * functions of the given time and the process's time zone (TZ).
 */

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const p2 = (n: number) => String(n).padStart(2, "0");

/** RFC 5322 date-time in local time with Postfix's zone comment. */
export function mailDate(d: Date): string {
  const offset = -d.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const zone = new Intl.DateTimeFormat("en-US", { timeZoneName: "short" }).formatToParts(d).find((p) => p.type === "timeZoneName")?.value;
  // "GMT+2" and the like are not abbreviations; Postfix prints no comment then either
  const comment = zone && /^[A-Za-z]+$/.test(zone) ? ` (${zone})` : "";
  return (
    `${DAYS[d.getDay()]}, ${d.getDate()} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ` +
    `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${sign}${p2(Math.floor(abs / 60))}${p2(abs % 60)}${comment}`
  );
}

/** `YYYYMMDDhhmmss` in UTC, the time part of Postfix's generated Message-Id. */
export function messageIdStamp(d: Date): string {
  return `${d.getUTCFullYear()}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}`;
}

/**
 * Dates as Postfix writes them in Date: and Received: headers (its
 * mail_date): `Sat, 21 Nov 2026 06:23:07 +0000 (UTC)`, local time, the day
 * of the month padded with a space (`Mon,  1 Jan 2024`), the zone offset,
 * and the zone's abbreviation in parentheses when the system has one.
 * Also the compact UTC stamp of generated Message-IDs (YYYYMMDDhhmmss).
 */
const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

const p2 = (n: number) => String(n).padStart(2, "0");

let zoneFormats: { tz: string | undefined; formats: Intl.DateTimeFormat[] } | undefined;

/** The last abbreviation found, for its zone, UTC offset and hour: Intl's formatToParts costs more than the rest of a Received: header (issue 16). */
let lastAbbreviation: { key: string; name: string | undefined } | undefined;

/** The zone abbreviation (UTC, CET, EST) or undefined when only "GMT+1" style names exist. */
function zoneAbbreviation(d: Date): string | undefined {
  const key = `${process.env.TZ}|${d.getTimezoneOffset()}|${Math.floor(d.getTime() / 3_600_000)}`;
  if (lastAbbreviation?.key === key) return lastAbbreviation.name;
  // a formatter keeps the zone it was made in: make new ones when TZ changes
  if (!zoneFormats || zoneFormats.tz !== process.env.TZ) {
    zoneFormats = { tz: process.env.TZ, formats: ["en-US", "en-GB"].map((locale) => new Intl.DateTimeFormat(locale, { timeZoneName: "short" })) };
  }
  let found: string | undefined;
  for (const f of zoneFormats.formats) {
    const name = f.formatToParts(d).find((p) => p.type === "timeZoneName")?.value;
    if (name && /^[A-Z]{2,6}$/.test(name)) {
      found = name;
      break;
    }
  }
  lastAbbreviation = { key, name: found };
  return found;
}

/** The last date written, by its second and TZ: pickup and cleanup write one per message. */
let lastDate: { second: number; tz: string | undefined; text: string } | undefined;

export function mailDate(d: Date): string {
  const second = Math.floor(d.getTime() / 1000);
  const tz = process.env.TZ;
  if (lastDate?.second === second && lastDate.tz === tz) return lastDate.text;
  const text = formatMailDate(d);
  lastDate = { second, tz, text };
  return text;
}

function formatMailDate(d: Date): string {
  const offset = -d.getTimezoneOffset();
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const zone = `${sign}${p2(Math.floor(abs / 60))}${p2(abs % 60)}`;
  const abbreviation = zoneAbbreviation(d);
  const day = String(d.getDate()).padStart(2, " ");
  const text = `${DAYS[d.getDay()]}, ${day} ${MONTHS[d.getMonth()]} ${d.getFullYear()} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())} ${zone}`;
  return abbreviation ? `${text} (${abbreviation})` : text;
}

/** `20261121062308` for a Message-ID, in UTC as Postfix does. */
export function messageIdStamp(d: Date): string {
  return `${d.getUTCFullYear()}${p2(d.getUTCMonth() + 1)}${p2(d.getUTCDate())}${p2(d.getUTCHours())}${p2(d.getUTCMinutes())}${p2(d.getUTCSeconds())}`;
}

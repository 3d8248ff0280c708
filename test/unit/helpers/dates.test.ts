/**
 * The date patterns the end-to-end tests use match what postern writes on
 * every day of a month, so a pattern that only fits two-digit days fails
 * here on any day, not only on days 1-9 of the month CI happens to run in.
 */
import { describe, expect, test } from "bun:test";
import { mailDate } from "../../../src/global/message/mail-date.ts";
import { asctime } from "../../../src/util/asctime.ts";
import { syslogTimestamp } from "../../../src/util/log.ts";
import { ASCTIME, RFC5322_DATE, SYSLOG_TIME } from "../../helpers/dates.ts";

// every day of January 2027 at a fixed instant, in the preload's time zone (UTC)
const days = Array.from({ length: 31 }, (_, i) => new Date(Date.UTC(2027, 0, i + 1, 5, 4, 9)));

describe("date patterns fit every day of the month", () => {
  test("the test time zone is UTC (bunfig.toml's preload)", () => {
    expect(process.env.TZ).toBe("UTC");
    expect(new Date(Date.UTC(2027, 0, 1)).getTimezoneOffset()).toBe(0);
  });

  test("RFC 5322 dates: a single-digit day is padded with a space", () => {
    expect(mailDate(days[6]!)).toBe("Thu,  7 Jan 2027 05:04:09 +0000 (UTC)");
    for (const d of days) expect(mailDate(d)).toMatch(new RegExp(`^${RFC5322_DATE} \\(UTC\\)$`));
  });

  test("RFC 5322 dates: the same date again (remembered by its second) and after a change of TZ", () => {
    const d = days[6]!;
    expect(mailDate(new Date(d.getTime() + 500))).toBe("Thu,  7 Jan 2027 05:04:09 +0000 (UTC)");
    expect(mailDate(new Date(d.getTime() + 1000))).toBe("Thu,  7 Jan 2027 05:04:10 +0000 (UTC)");
    const zone = process.env.TZ;
    try {
      process.env.TZ = "America/New_York";
      expect(mailDate(new Date(d.getTime() + 1000))).toBe("Thu,  7 Jan 2027 00:04:10 -0500 (EST)");
    } finally {
      process.env.TZ = zone;
    }
    expect(mailDate(new Date(d.getTime() + 1000))).toBe("Thu,  7 Jan 2027 05:04:10 +0000 (UTC)");
  });

  test("asctime: a single-digit day is padded with a space", () => {
    expect(asctime(days[6]!.getTime() / 1000)).toBe("Thu Jan  7 05:04:09 2027");
    for (const d of days) expect(asctime(d.getTime() / 1000)).toMatch(new RegExp(`^${ASCTIME}$`));
  });

  test("syslog time stamps: a single-digit day is padded with a space", () => {
    expect(syslogTimestamp(days[6]!)).toBe("Jan  7 05:04:09");
    for (const d of days) expect(syslogTimestamp(d)).toMatch(new RegExp(`^${SYSLOG_TIME}$`));
  });

  test("the pattern a two-digit-only assertion would use fails on day 7: the class of bug these catch", () => {
    expect(mailDate(days[6]!)).not.toMatch(/^\w{3}, \d{1,2} \w{3} /);
  });
});

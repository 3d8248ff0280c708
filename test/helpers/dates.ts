/**
 * Patterns for the dates postern writes, shared by every test that checks one
 * in real output. Each pads the day of the month with a space, as Postfix (and
 * C's asctime) do: "Mon,  7 Dec 2026". A test that writes its own `\d{1,2}`
 * passes on days 10-31 and fails on days 1-9; test/unit/helpers/dates.test.ts
 * runs these patterns against the producing code on every day of a month.
 * Each is regular-expression source, to be embedded in a RegExp.
 */

/** RFC 5322 date without the zone comment (Date:, Received:, Arrival-Date:): "Mon,  7 Dec 2026 05:04:19 +0000". */
export const RFC5322_DATE = String.raw`\w{3}, [ \d]\d \w{3} \d{4} \d\d:\d\d:\d\d [+-]\d{4}`;

/** asctime(3) (mbox From_ lines, mailq, postcat): "Mon Dec  7 05:04:19 2026". */
export const ASCTIME = String.raw`\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}`;

/** The syslog time stamp of a log line: "Dec  7 05:04:19". */
export const SYSLOG_TIME = String.raw`[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d`;

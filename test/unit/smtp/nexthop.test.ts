import { describe, expect, test } from "bun:test";
import { parseDestination, parseDestinations, parsePort } from "../../../src/smtp/nexthop.ts";

const smtp = { lmtp: false, defaultPort: 25, queueDirectory: "/var/spool/postern" };
const lmtp = { lmtp: true, defaultPort: 24, queueDirectory: "/var/spool/postern" };

describe("relayhost and transport next-hop forms", () => {
  test.each([
    ["example.com", { host: "example.com", port: 25, mx: true, bracketed: false }],
    ["example.com:2525", { host: "example.com", port: 2525, mx: true, bracketed: false }],
    ["[smtp.example.com]", { host: "smtp.example.com", port: 25, mx: false, bracketed: true }],
    ["[smtp.example.com]:587", { host: "smtp.example.com", port: 587, mx: false, bracketed: true }],
    ["[smtp.example.com]:submission", { host: "smtp.example.com", port: 587, mx: false, bracketed: true }],
    ["[192.0.2.1]", { host: "192.0.2.1", port: 25, mx: false, bracketed: true }],
    ["[192.0.2.1]:smtps", { host: "192.0.2.1", port: 465, mx: false, bracketed: true }],
    ["[2001:db8::1]:25", { host: "2001:db8::1", port: 25, mx: false, bracketed: true }],
    ["[ipv6:2001:db8::1]", { host: "2001:db8::1", port: 25, mx: false, bracketed: true }],
    ["Example.COM.", { host: "example.com", port: 25, mx: true, bracketed: false }],
  ])("%s", (text, want) => {
    const d = parseDestination(text, smtp);
    expect(d).toMatchObject({ text, ...want });
  });

  test("a list is tried in order, separated by commas or white space", () => {
    const list = parseDestinations("[a.example]:587, [b.example]:587 c.example", smtp);
    expect(Array.isArray(list) && list.map((d) => d.text)).toEqual(["[a.example]:587", "[b.example]:587", "c.example"]);
  });

  test.each([
    ["[smtp.example.com", "missing"],
    ["[smtp.example.com]x", "garbage"],
    ["smtp.example.com:nosuchservice", "unknown service"],
    ["smtp.example.com:0", "unknown service"],
    ["smtp.example.com:70000", "unknown service"],
    ["2001:db8::1", "must be in brackets"],
    ["[]:25", "missing host"],
  ])("%s is refused", (text, problem) => {
    const d = parseDestination(text, smtp);
    expect("problem" in d && d.problem).toContain(problem);
  });

  test("an empty list is a problem", () => {
    expect(parseDestinations(" , ", smtp)).toHaveProperty("problem");
  });
});

describe("LMTP destinations", () => {
  test("unix: paths are absolute or relative to the queue directory", () => {
    expect(parseDestination("unix:/run/dovecot/lmtp", lmtp)).toMatchObject({ unix: "/run/dovecot/lmtp", host: "/run/dovecot/lmtp", mx: false });
    expect(parseDestination("unix:private/dovecot-lmtp", lmtp)).toMatchObject({ unix: "/var/spool/postern/private/dovecot-lmtp", host: "private/dovecot-lmtp" });
  });

  test("inet: is optional and LMTP never looks MX records up", () => {
    expect(parseDestination("inet:mail.example.com:2400", lmtp)).toMatchObject({ host: "mail.example.com", port: 2400, mx: false });
    expect(parseDestination("mail.example.com", lmtp)).toMatchObject({ host: "mail.example.com", port: 24, mx: false });
  });

  test("SMTP destinations have no unix: form", () => {
    expect(parseDestination("unix:/run/x", smtp)).toHaveProperty("problem");
  });
});

test("known service names", () => {
  expect([parsePort("smtp"), parsePort("SUBMISSION"), parsePort("submissions"), parsePort("lmtp"), parsePort("2525"), parsePort("http")]).toEqual([25, 587, 465, 24, 2525, undefined]);
});

/**
 * The screening of an untrusted maildrop file's envelope: each record is
 * checked like the field it feeds (addresses like smtpd's, orcpt= like the
 * ORCPT parameter, notify= like NOTIFY, the DSN attributes like Postfix's
 * cleanup), what is bad refuses the file or is dropped with a warning.
 */
import { describe, expect, test } from "bun:test";
import { addressProblem, screenUntrustedFile, validOrcpt } from "../../../src/cleanup/untrusted-envelope.ts";
import type { QueueFile, Recipient } from "../../../src/global/queue/format.ts";
import type { CleanupSettings } from "../../../src/cleanup/settings.ts";

/** Screening reads only these settings (Postfix's defaults). */
const SETTINGS = { lineLengthLimit: 2048, verpFilter: "-=+" } as CleanupSettings;

function file(recipients: Recipient[], attributes: Record<string, string> = {}, sender = "me"): QueueFile {
  return { arrivalTime: 0, sender, recipients, attributes, content: Buffer.from("Subject: x\n\nbody\n") };
}

function refusal(f: QueueFile): string | undefined {
  const s = screenUntrustedFile(f, SETTINGS);
  return "refused" in s ? s.refused : undefined;
}

describe("addresses", () => {
  test("control characters and over-long addresses are refused", () => {
    expect(addressProblem("bob@example.org", SETTINGS)).toBeUndefined();
    expect(addressProblem("", SETTINGS)).toBeUndefined();
    expect(addressProblem("jürgen@example.org", SETTINGS)).toBeUndefined();
    for (const bad of ["a\r\nX-Forged: yes", "a\nb", "a\0b", "a\tb", "a\x1bb", "a\x7fb"]) expect(addressProblem(bad, SETTINGS)).toBe("a control character");
    expect(addressProblem("x".repeat(2048), SETTINGS)).toBeUndefined();
    expect(addressProblem("x".repeat(2049), SETTINGS)).toBe("more than 2048 bytes");
  });

  test("original= with CR/LF refuses the file (it would land in X-Original-To:)", () => {
    expect(refusal(file([{ address: "bob", original: "bob\r\nX-Forged: yes\r\n\r\nforged body" }]))).toStartWith("malformed original recipient (a control character): bob??X-Forged: yes");
    expect(refusal(file([{ address: "bob", original: "bob\nFrom: boss" }]))).toContain("malformed original recipient");
    expect(refusal(file([{ address: "bob", original: "bob@example.org" }]))).toBeUndefined();
  });

  test("a bad sender or recipient refuses the file", () => {
    expect(refusal(file([{ address: "bob" }], {}, "me\rX: y"))).toStartWith("malformed sender address");
    expect(refusal(file([{ address: "bob" }, { address: "eve\u0085\u0000" }]))).toStartWith("malformed recipient address");
    expect(refusal(file([{ address: "y".repeat(5000) }]))).toBe(`malformed recipient address (more than 2048 bytes): ${"y".repeat(200)}`);
  });

  test("a recipient already marked finished (a D record) is not a submission", () => {
    expect(refusal(file([{ address: "bob", done: true }]))).toBe("unexpected delivery status record for recipient 0");
  });
});

describe("orcpt= like smtpd's ORCPT parameter", () => {
  test("valid forms are kept", () => {
    // what smtpd's ORCPT parameter may carry once decoded: "=", an empty address, octets that are not UTF-8, a lone surrogate
    for (const ok of ["rfc822;bob@example.org", "RFC822;bob@example.org", "x400;c=us;a=b", "utf-8;jürgen@example.org", "rfc822;jürgen@example.org", "rfc822;€uro@example.org", "rfc822;", "rfc822;a=b", "rfc822;j\udcfcrgen", "utf-8;\udfffx"]) {
      expect(validOrcpt(ok, SETTINGS)).toBe(true);
    }
    const s = screenUntrustedFile(file([{ address: "bob", orcpt: "rfc822;bob@example.org" }]), SETTINGS);
    expect("file" in s && s.file.recipients[0]!.orcpt).toBe("rfc822;bob@example.org");
  });

  test("garbage refuses the file", () => {
    // controls: smtpd takes them (as Postfix), a maildrop file may not; a "\\x{HEX}" in a utf-8 address would go
    // out decoded (dsn-params.ts reads it as an older postern's queue file)
    for (const bad of ["", "bob@example.org", ";bob", "rfc 822;bob", "rfc822;bob\r\nX: y", "utf-8;a\u0085\nb", "rfc822;a\tb", "rfc822;a\0b", "rfc822;\ud800x", "utf-8;a\\x{0041}", `rfc822;${"z".repeat(600)}`]) {
      expect(validOrcpt(bad, SETTINGS)).toBe(false);
      expect(refusal(file([{ address: "bob", orcpt: bad }]))).toStartWith("bad DSN original recipient");
    }
  });
});

describe("notify= like DSN NOTIFY", () => {
  test("NEVER alone, or SUCCESS/FAILURE/DELAY without repeats, is kept", () => {
    for (const ok of [["NEVER"], ["SUCCESS"], ["SUCCESS", "FAILURE", "DELAY"]] as Recipient["notify"][]) {
      const s = screenUntrustedFile(file([{ address: "bob", notify: ok! }]), SETTINGS);
      expect("file" in s && s.file.recipients[0]!.notify).toEqual(ok!);
    }
  });

  test("a repeated word counts once, as in Postfix's NOTIFY mask", () => {
    const s = screenUntrustedFile(file([{ address: "bob", notify: ["DELAY", "SUCCESS", "DELAY"] }]), SETTINGS);
    expect("file" in s && s.file.recipients[0]!.notify).toEqual(["DELAY", "SUCCESS"]);
  });

  test("a malformed list is dropped with a warning, as Postfix's cleanup ignores it", () => {
    for (const bad of [["NEVER", "SUCCESS"], ["DELAY", "FOO"]] as unknown as Recipient["notify"][]) {
      const s = screenUntrustedFile(file([{ address: "bob", notify: bad! }]), SETTINGS);
      if (!("file" in s)) throw new Error("refused");
      expect(s.file.recipients[0]!.notify).toBeUndefined();
      expect(s.warnings).toEqual([`ignoring malformed DSN notify record <${bad!.join(",")}>`]);
    }
  });
});

describe("attributes", () => {
  test("sendmail's attributes with good values are kept, origin=sendmail quietly", () => {
    const attributes = { full_name: "Bob B", rewrite_context: "local", envid: "abc 123", ret: "HDRS", encoding: "8BITMIME", verp: "+=", verify: "yes", record: "yes", origin: "sendmail" };
    const s = screenUntrustedFile(file([{ address: "bob" }], attributes), SETTINGS);
    if (!("file" in s)) throw new Error(s.refused);
    const { origin: _, ...kept } = attributes;
    expect(s.file.attributes).toEqual(kept);
    expect(s.warnings).toEqual([]);
  });

  test("unknown, forged or malformed attributes are dropped with a warning", () => {
    const attributes = { uid: "0", login: "root", client_address: "192.0.2.1", origin: "smtpd", expire: "yes", encoding: "BINARYMIME", rewrite_context: "x", verify: "no", verp: "ab", full_name: "n".repeat(3000), constructor: "x", tostring: "y", filter: "smtp:[127.0.0.1]:25", redirect: "a@b.example" };
    const s = screenUntrustedFile(file([{ address: "bob" }], attributes), SETTINGS);
    if (!("file" in s)) throw new Error(s.refused);
    expect(s.file.attributes).toEqual({});
    expect(s.warnings.length).toBe(Object.keys(attributes).length);
    expect(s.warnings[0]).toBe("ignoring attribute record: uid=0");
  });

  test("a bad DSN envid or ret refuses the file, as Postfix's cleanup rejects it", () => {
    expect(refusal(file([{ address: "bob" }], { envid: "a\r\nb" }))).toBe("bad DSN envelope ID record: a??b");
    expect(refusal(file([{ address: "bob" }], { envid: "e".repeat(101) }))).toStartWith("bad DSN envelope ID record");
    // Postfix's cleanup: all_isprint_tab, so a TAB is fine and an empty ENVID is not
    expect(refusal(file([{ address: "bob" }], { envid: "a\tb" }))).toBeUndefined();
    expect(refusal(file([{ address: "bob" }], { envid: "" }))).toBe("bad DSN envelope ID record: ");
    expect(refusal(file([{ address: "bob" }], { ret: "EVERYTHING" }))).toBe("bad DSN RET record: EVERYTHING");
  });

  test("values in warnings are printable and bounded", () => {
    const s = screenUntrustedFile(file([{ address: "bob" }], { x: `a\x1b[31m${"q".repeat(500)}` }), SETTINGS);
    if (!("file" in s)) throw new Error(s.refused);
    expect(s.warnings[0]).toBe(`ignoring attribute record: x=a?[31m${"q".repeat(194)}`);
  });
});

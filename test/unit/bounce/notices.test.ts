import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../../../src/global/config/config.ts";
import { buildNotices, noticeRoutes, notifyAllows, remoteDetails, type NoticeEntry, type NoticeKind } from "../../../src/bounce/notices.ts";
import { decodeQueueFile, encodeQueueFile, type QueueFile, type Recipient } from "../../../src/global/queue/format.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";
import { configMaker } from "../../helpers/config.ts";
import { header, parseMime, type MimeNode } from "./mime-parse.ts";

const root = tempDir("postern-bounce-unit-");
afterAll(() => removeDir(root));

const configFrom = configMaker(root, 'myhostname = "mx.example.test"\n');

const ARRIVAL = Date.parse("2026-03-02T10:00:00Z");
const NOW = new Date("2026-03-02T10:05:00Z");
const BODY = "Hello,\nthis is the body.\n";
const MESSAGE = `From: Alice <alice@example.org>\nTo: bob@mx.example.test\nSubject: lunch\nMessage-ID: <m1@example.org>\n\n${BODY}`;

function message(over: Partial<QueueFile> = {}, recipients: Recipient[] = [{ address: "bob@mx.example.test" }]): QueueFile {
  return { arrivalTime: ARRIVAL, sender: "alice@example.org", attributes: {}, recipients, content: Buffer.from(MESSAGE), ...over };
}

function entry(over: Partial<NoticeEntry> = {}): NoticeEntry {
  return { recipient: "bob@mx.example.test", status: "5.1.1", action: "failed", time: NOW.getTime() - 1000, reason: 'unknown user: "bob"', ...over };
}

function build(kind: NoticeKind, original: QueueFile, entries: NoticeEntry[], config = configFrom()) {
  return buildNotices(kind, { config, queueId: "3A1F2C0B5E", original, entries, now: NOW });
}

function parsed(kind: NoticeKind, original: QueueFile, entries: NoticeEntry[], config = configFrom()): MimeNode {
  const r = build(kind, original, entries, config);
  expect(r.notices.length).toBeGreaterThan(0);
  return parseMime(r.notices[0]!.content("4B2E3D1C0A"));
}

const fields = (group: [string, string][]) => Object.fromEntries(group.map(([k, v]) => [k, v.replace(/\s*\n\s+/g, " ")]));

describe("the structure of a non-delivery report", () => {
  const report = parsed("failure", message({ attributes: { envid: "QQ314159" } }, [{ address: "bob@mx.example.test", orcpt: "rfc822;Bob@Example.ORG" }]), [entry()]);

  test("top-level headers", () => {
    expect(report.defects).toEqual([]);
    expect(header(report, "From")).toBe("Mail Delivery System <MAILER-DAEMON@mx.example.test>");
    expect(header(report, "To")).toBe("alice@example.org");
    expect(header(report, "Subject")).toBe("Undelivered Mail Returned to Sender");
    expect(header(report, "Auto-Submitted")).toBe("auto-replied");
    expect(header(report, "MIME-Version")).toBe("1.0");
    expect(header(report, "Date")).toBe("Mon,  2 Mar 2026 10:05:00 +0000 (UTC)");
    expect(header(report, "Message-Id")).toBe("<20260302100500.4B2E3D1C0A@mx.example.test>");
    expect(header(report, "Received")).toBe("by mx.example.test (postern) id 4B2E3D1C0A; Mon,  2 Mar 2026 10:05:00 +0000 (UTC)");
  });

  test("multipart/report with the delivery-status report type and a unique boundary", () => {
    expect(report.type).toBe("multipart/report");
    expect(report.params["report-type"]).toBe("delivery-status");
    expect(report.params.boundary).toBe("3A1F2C0B5E.1772445900/mx.example.test");
    expect(report.parts!.map((p) => p.type)).toEqual(["text/plain", "message/delivery-status", "message/rfc822"]);
    expect(report.parts!.map((p) => header(p, "Content-Description"))).toEqual(["Notification", "Delivery report", "Undelivered Message"]);
  });

  test("the human-readable part has Postfix's text and the recipient's reason", () => {
    const text = report.parts![0]!.body!;
    expect(text.startsWith("This is the mail system at host mx.example.test.\n\nI'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients. It's attached below.\n")).toBe(true);
    expect(text).toContain("                   The mail system\n\n<bob@mx.example.test>: unknown user: \"bob\"\n");
  });

  test("the delivery-status fields, per message and per recipient", () => {
    const groups = report.parts![1]!.groups!;
    expect(groups.length).toBe(2);
    expect(fields(groups[0]!)).toEqual({
      "Reporting-MTA": "dns; mx.example.test",
      "Original-Envelope-Id": "QQ314159",
      "X-Postern-Queue-ID": "3A1F2C0B5E",
      "X-Postern-Sender": "rfc822; alice@example.org",
      "Arrival-Date": "Mon,  2 Mar 2026 10:00:00 +0000 (UTC)",
    });
    expect(fields(groups[1]!)).toEqual({
      "Final-Recipient": "rfc822; bob@mx.example.test",
      "Original-Recipient": "rfc822;Bob@Example.ORG",
      Action: "failed",
      Status: "5.1.1",
      "Diagnostic-Code": 'X-Postern; unknown user: "bob"',
      "Last-Attempt-Date": "Mon,  2 Mar 2026 10:04:59 +0000 (UTC)",
    });
  });

  test("the original message comes back whole, after a Return-Path", () => {
    const returned = report.parts![2]!.parts![0]!;
    expect(header(returned, "Return-Path")).toBe("<alice@example.org>");
    expect(header(returned, "Subject")).toBe("lunch");
    expect(header(returned, "Message-ID")).toBe("<m1@example.org>");
    expect(returned.body).toBe(BODY);
  });
});

describe("what is returned of the original", () => {
  const returnedPart = (original: QueueFile, config?: Config, kind: NoticeKind = "failure", e = entry()) => parsed(kind, original, [e], config).parts![2]!;

  test("RET=FULL and no RET return the message", () => {
    expect(returnedPart(message({ attributes: { ret: "FULL" } })).type).toBe("message/rfc822");
    expect(returnedPart(message()).type).toBe("message/rfc822");
  });

  test("RET=HDRS returns only the headers, as text/rfc822-headers", () => {
    const part = returnedPart(message({ attributes: { ret: "HDRS" } }));
    expect(part.type).toBe("text/rfc822-headers");
    expect(header(part, "Content-Description")).toBe("Undelivered Message Headers");
    expect(part.body).toBe("Return-Path: <alice@example.org>\nFrom: Alice <alice@example.org>\nTo: bob@mx.example.test\nSubject: lunch\nMessage-ID: <m1@example.org>\n");
    expect(part.body).not.toContain("this is the body");
  });

  test("a message over bounce_size_limit comes back as headers only; one at the limit whole", () => {
    const size = MESSAGE.length;
    expect(returnedPart(message(), configFrom(`bounce_size_limit = ${size - 1}\n`)).type).toBe("text/rfc822-headers");
    expect(returnedPart(message(), configFrom(`bounce_size_limit = ${size}\n`)).type).toBe("message/rfc822");
  });

  test("delay and success reports carry the headers only, whatever RET says", () => {
    const full = message({ attributes: { ret: "FULL" } }, [{ address: "bob@mx.example.test", notify: ["SUCCESS", "DELAY"] }]);
    expect(returnedPart(full, undefined, "delay", entry({ status: "4.4.1", action: "delayed" })).type).toBe("text/rfc822-headers");
    const success = returnedPart(full, undefined, "success", entry({ status: "2.0.0", action: "delivered", reason: "delivered to maildir" }));
    expect(success.type).toBe("text/rfc822-headers");
    expect(header(success, "Content-Description")).toBe("Message Headers");
  });

  test("a message without a header/body separator is returned as it is", () => {
    const original = message({ content: Buffer.from("Subject: only headers\n") });
    expect(returnedPart(original, undefined, "failure").parts![0]!.headers).toContainEqual(["Subject", "only headers"]);
  });
});

describe("DSN NOTIFY", () => {
  const two = (a: Recipient["notify"], b: Recipient["notify"]) =>
    message({}, [
      { address: "a@mx.example.test", ...(a ? { notify: a } : {}) },
      { address: "b@mx.example.test", ...(b ? { notify: b } : {}) },
    ]);
  const both = [entry({ recipient: "a@mx.example.test" }), entry({ recipient: "b@mx.example.test" })];
  const listed = (r: ReturnType<typeof build>, i = 0) => r.notices[i]?.reported;

  test("NEVER gives no report of any kind", () => {
    const never = two(["NEVER"], ["NEVER"]);
    expect(build("failure", never, both).notices).toEqual([]);
    expect(build("delay", never, both).notices).toEqual([]);
    expect(build("success", never, both).notices).toEqual([]);
  });

  test("the sender's report lists only the recipients that asked for it", () => {
    expect(listed(build("failure", two(["NEVER"], undefined), both))).toEqual(["b@mx.example.test"]);
    expect(listed(build("failure", two(["SUCCESS"], ["FAILURE"]), both))).toEqual(["b@mx.example.test"]);
    expect(listed(build("delay", two(["FAILURE"], ["DELAY", "FAILURE"]), both))).toEqual(["b@mx.example.test"]);
    expect(listed(build("delay", two(undefined, undefined), both))).toEqual(["a@mx.example.test", "b@mx.example.test"]);
    expect(listed(build("success", two(undefined, ["SUCCESS"]), both))).toEqual(["b@mx.example.test"]);
  });

  test("notifyAllows: no NOTIFY means failure and delay reports, never success", () => {
    expect(notifyAllows("failure", undefined)).toBe(true);
    expect(notifyAllows("delay", [])).toBe(true);
    expect(notifyAllows("success", undefined)).toBe(false);
    expect(notifyAllows("success", ["SUCCESS"])).toBe(true);
    expect(notifyAllows("failure", ["NEVER"])).toBe(false);
  });

  test("the postmaster's copy ignores NOTIFY and returns headers only", () => {
    const r = build("failure", two(["NEVER"], ["NEVER"]), both, configFrom('notify_classes = "bounce"\n'));
    expect(r.notices.length).toBe(1);
    const copy = r.notices[0]!;
    expect(copy.audience).toBe("postmaster");
    expect(copy.reported).toEqual(["a@mx.example.test", "b@mx.example.test"]);
    const mime = parseMime(copy.content("4B2E3D1C0A"));
    expect(header(mime, "Subject")).toBe("Postmaster Copy: Undelivered Mail");
    expect(header(mime, "Auto-Submitted")).toBe("auto-generated");
    expect(mime.parts![0]!.body).toBe('\n<a@mx.example.test>: unknown user: "bob"\n\n<b@mx.example.test>: unknown user: "bob"\n');
    expect(mime.parts![2]!.type).toBe("text/rfc822-headers");
  });
});

describe("who gets a report, and no loops", () => {
  test("a sender's bounce goes to the sender from the null sender; notify_classes=bounce adds a postmaster copy from double-bounce", () => {
    const r = build("failure", message(), [entry()], configFrom('notify_classes = "resource, software, bounce"\nmyorigin = "example.test"\n'));
    expect(r.notices.map((n) => [n.audience, n.description, n.sender, n.recipients])).toEqual([
      ["sender", "sender non-delivery notification", "", ["alice@example.org"]],
      ["postmaster", "postmaster non-delivery notification", "double-bounce@mx.example.test", ["postmaster@example.test"]],
    ]);
    expect(r.log).toEqual([]);
  });

  test("a bounce of a null-sender message goes to 2bounce_notice_recipient, whole, from the double-bounce sender", () => {
    const r = build("failure", message({ sender: "" }), [entry()], configFrom('notify_classes = "2bounce"\n2bounce_notice_recipient = "mailops"\n'));
    expect(r.notices.length).toBe(1);
    const n = r.notices[0]!;
    expect([n.audience, n.sender, n.recipients, n.description]).toEqual(["postmaster", "double-bounce@mx.example.test", ["mailops@mx.example.test"], "postmaster non-delivery notification"]);
    const mime = parseMime(n.content("4B2E3D1C0A"));
    expect(header(mime, "To")).toBe("mailops@mx.example.test");
    expect(fields(mime.parts![1]!.groups![0]!)["X-Postern-Sender"]).toBe("rfc822; MAILER-DAEMON@mx.example.test");
    expect(mime.parts![2]!.type).toBe("message/rfc822");
    expect(header(mime.parts![2]!.parts![0]!, "Return-Path")).toBe("<MAILER-DAEMON@mx.example.test>");
  });

  test("notify_classes=bounce also sends bounces of bounces to the postmaster", () => {
    expect(build("failure", message({ sender: "" }), [entry()], configFrom('notify_classes = "bounce"\n')).notices.map((n) => n.recipients)).toEqual([["postmaster@mx.example.test"]]);
  });

  test("without bounce or 2bounce in notify_classes a bounce of a bounce is dropped, as Postfix does", () => {
    const r = build("failure", message({ sender: "" }), [entry()]);
    expect(r.notices).toEqual([]);
    expect(r.log).toEqual([]);
  });

  test("a failed postmaster notice (sender double-bounce) is dropped with Postfix's warning", () => {
    const r = build("failure", message({ sender: "Double-Bounce@mx.example.test" }), [entry()], configFrom('notify_classes = "bounce, 2bounce"\n'));
    expect(r.notices).toEqual([]);
    expect(r.log).toEqual([{ severity: "warning", text: "3A1F2C0B5E: undeliverable postmaster notification discarded" }]);
  });

  test("double_bounce_sender names the double-bounce address", () => {
    const config = configFrom('double_bounce_sender = "bounces-x"\n');
    expect(build("failure", message({ sender: "bounces-x@mx.example.test" }), [entry()], config).log[0]!.severity).toBe("warning");
    expect(build("failure", message({ sender: "double-bounce@mx.example.test" }), [entry()], config).notices.length).toBe(1);
  });

  test("no success report to the null sender or the double-bounce sender; the info lines say why", () => {
    const ok = [entry({ status: "2.0.0", action: "delivered", reason: "delivered to mailbox" })];
    const rcpt = [{ address: "bob@mx.example.test", notify: ["SUCCESS"] as Recipient["notify"] }];
    expect(build("success", message({ sender: "" }, rcpt), ok).log).toEqual([{ severity: "info", text: "3A1F2C0B5E: not sending trace/success notification for single-bounce message" }]);
    expect(build("success", message({ sender: "double-bounce@mx.example.test" }, rcpt), ok).log).toEqual([
      { severity: "info", text: "3A1F2C0B5E: not sending trace/success notification for double-bounce message" },
    ]);
  });

  test("no delay report about null-sender or double-bounce mail, even with delay in notify_classes", () => {
    const config = configFrom('notify_classes = "delay"\n');
    expect(noticeRoutes("delay", config, "", "Q").routes).toEqual([]);
    expect(noticeRoutes("delay", config, "double-bounce@mx.example.test", "Q").routes).toEqual([]);
    expect(noticeRoutes("delay", config, "alice@example.org", "Q").routes.map((r) => [r.audience, r.recipients])).toEqual([
      ["sender", ["alice@example.org"]],
      ["postmaster", ["postmaster@mx.example.test"]],
    ]);
  });
});

describe("delay reports", () => {
  const delayed = entry({ status: "4.4.1", action: "delayed", reason: "connect to mx.example.org[192.0.2.1]:25: Connection refused" });

  test("text, subject, Action and Will-Retry-Until", () => {
    const mime = parsed("delay", message(), [delayed], configFrom('delay_warning_time = "4h"\nmaximal_queue_lifetime = "3d"\n'));
    expect(header(mime, "Subject")).toBe("Delayed Mail (still being retried)");
    const text = mime.parts![0]!.body!;
    expect(text).toContain("# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #");
    expect(text).toContain("Your message could not be delivered for more than 4 hour(s).\nIt will be retried until it is 3 day(s) old.\n");
    const g = fields(mime.parts![1]!.groups![1]!);
    expect(g.Action).toBe("delayed");
    expect(g.Status).toBe("4.4.1");
    expect(g["Will-Retry-Until"]).toBe("Thu,  5 Mar 2026 10:00:00 +0000 (UTC)");
    expect(g["Diagnostic-Code"]).toBe("X-Postern; connect to mx.example.org[192.0.2.1]:25: Connection refused");
  });

  test("a time that rounds down to zero hours is warned about in Postfix's words", () => {
    const r = build("delay", message(), [delayed], configFrom('delay_warning_time = "20m"\n'));
    expect(r.log.map((l) => l.text)).toEqual([
      '[built-in]: zero result in delay template conversion of parameter "delay_warning_time_hours"',
      'please reduce time unit "hours" of "delay_warning_time_hours" in delay template',
      "for instructions see the bounce(5) manual",
    ]);
  });

  test("recipients already finished and repeated defer lines: one group per waiting recipient, the latest reason", () => {
    const original = message({}, [{ address: "bob@mx.example.test" }, { address: "carol@mx.example.test", done: true }]);
    const entries = [
      entry({ status: "4.4.1", action: "delayed", reason: "first try" }),
      entry({ recipient: "carol@mx.example.test", status: "4.4.1", action: "delayed", reason: "carol waits" }),
      entry({ status: "4.2.2", action: "delayed", reason: "second try" }),
    ];
    const r = build("delay", original, entries);
    expect(r.notices[0]!.reported).toEqual(["bob@mx.example.test"]);
    const g = fields(parseMime(r.notices[0]!.content("X")).parts![1]!.groups![1]!);
    expect([g.Status, g["Diagnostic-Code"]]).toEqual(["4.2.2", "X-Postern; second try"]);
  });
});

describe("success reports", () => {
  const rcpt: Recipient[] = [{ address: "bob@mx.example.test", notify: ["SUCCESS"] }];

  test("local delivery: 'delivery via RELAY: reason'", () => {
    const mime = parsed("success", message({}, rcpt), [entry({ status: "2.0.0", action: "delivered", relay: "local", reason: "delivered to maildir" })]);
    expect(header(mime, "Subject")).toBe("Successful Mail Delivery Report");
    expect(mime.parts![0]!.body).toContain("\n<bob@mx.example.test>: delivery via local: delivered to maildir\n");
    const g = fields(mime.parts![1]!.groups![1]!);
    expect([g.Action, g.Status, g["Diagnostic-Code"]]).toEqual(["delivered", "2.0.0", "X-Postern; delivery via local: delivered to maildir"]);
    expect(g["Remote-MTA"]).toBeUndefined();
  });

  test("relayed by SMTP: Remote-MTA and the server's reply", () => {
    const mime = parsed("success", message({}, rcpt), [entry({ status: "2.0.0", action: "relayed", relay: "mx.example.org[192.0.2.1]:25", reason: "250 2.0.0 Ok: queued as 1A2B" })]);
    const g = fields(mime.parts![1]!.groups![1]!);
    expect([g.Action, g["Remote-MTA"], g["Diagnostic-Code"]]).toEqual(["relayed", "dns; mx.example.org", "smtp; 250 2.0.0 Ok: queued as 1A2B"]);
  });
});

describe("recipient details", () => {
  test("a remote server's rejection gives Remote-MTA and an smtp Diagnostic-Code", () => {
    const reason = "host mx.example.org[192.0.2.1] said: 550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command)";
    const mime = parsed("failure", message(), [entry({ reason })]);
    const g = fields(mime.parts![1]!.groups![1]!);
    expect(g["Remote-MTA"]).toBe("dns; mx.example.org");
    expect(g["Diagnostic-Code"]).toBe("smtp; 550 5.1.1 <bob@example.org>: Recipient address rejected: User unknown");
    expect(mime.parts![0]!.body).toContain(
      "<bob@mx.example.test>: host mx.example.org[192.0.2.1] said: 550 5.1.1\n    <bob@example.org>: Recipient address rejected: User unknown (in reply to\n    RCPT TO command)\n",
    );
  });

  test("explicit remoteMta and diagnosticCode win over the reason", () => {
    const g = fields(parsed("failure", message(), [entry({ remoteMta: "dns; lmtp.example.org", diagnosticCode: "smtp; 552 5.2.2 over quota" })]).parts![1]!.groups![1]!);
    expect([g["Remote-MTA"], g["Diagnostic-Code"]]).toEqual(["dns; lmtp.example.org", "smtp; 552 5.2.2 over quota"]);
  });

  test("remoteDetails reads Postfix-style reasons and nothing else", () => {
    expect(remoteDetails("host a.example[192.0.2.7] refused to talk to me: 554 5.7.1 go away")).toEqual({ remoteMta: "dns; a.example", reply: "554 5.7.1 go away" });
    expect(remoteDetails("host a.example[192.0.2.7] said: 552 too big (in reply to end of DATA command)")).toEqual({ remoteMta: "dns; a.example", reply: "552 too big" });
    expect(remoteDetails("mail forwarding loop for bob@example.org")).toBeUndefined();
    expect(remoteDetails("250 ok", "local")).toBeUndefined();
  });

  test("an aliased recipient: '(expanded from <...>)' and Original-Recipient from the queue file", () => {
    const original = message({}, [{ address: "bob@mx.example.test", original: "sales-team@example.test" }]);
    const mime = parsed("failure", original, [entry()]);
    expect(mime.parts![0]!.body).toContain('\n<bob@mx.example.test> (expanded from <sales-team@example.test>): unknown user:\n    "bob"\n');
    expect(fields(mime.parts![1]!.groups![1]!)["Original-Recipient"]).toBe("rfc822;sales-team@example.test");
  });

  test("an entry's own original address wins over the queue file's", () => {
    const mime = parsed("failure", message(), [entry({ original: "info@example.test" })]);
    expect(fields(mime.parts![1]!.groups![1]!)["Original-Recipient"]).toBe("rfc822;info@example.test");
  });
});

describe("untrusted text cannot break the report", () => {
  test("CR/LF in a reason or an ENVID cannot add headers or fields", () => {
    const evil = entry({ reason: "bad\r\nSubject: pwned\r\n\r\n--x" });
    const mime = parsed("failure", message({ attributes: { envid: "id\nX-Evil: 1" } }), [evil]);
    expect(mime.defects).toEqual([]);
    expect(mime.headers.filter(([k]) => k === "Subject").length).toBe(1);
    expect(mime.parts!.length).toBe(3);
    const groups = mime.parts![1]!.groups!;
    expect(groups.length).toBe(2);
    expect(fields(groups[0]!)["X-Evil"]).toBeUndefined();
    expect(fields(groups[1]!)["Diagnostic-Code"]).toBe("X-Postern; bad Subject: pwned --x");
  });

  test("a returned message that contains the boundary gets a longer boundary", () => {
    const trap = `Subject: trap\n\n--3A1F2C0B5E.1772445900/mx.example.test--\n`;
    const mime = parsed("failure", message({ content: Buffer.from(trap) }), [entry()]);
    expect(mime.params.boundary).not.toBe("3A1F2C0B5E.1772445900/mx.example.test");
    expect(mime.params.boundary!.startsWith("3A1F2C0B5E.1772445900/mx.example.test.")).toBe(true);
    expect(mime.parts!.length).toBe(3);
    expect(mime.parts![2]!.parts![0]!.body).toBe("--3A1F2C0B5E.1772445900/mx.example.test--\n");
  });

  test("8-bit content is returned byte for byte and marks the report 8bit even without smtputf8", () => {
    const latin1 = Buffer.concat([Buffer.from("Subject: caf"), Buffer.from([0xe9]), Buffer.from("\n\nna"), Buffer.from([0xef]), Buffer.from("ve\n")]);
    const r = build("failure", message({ content: latin1 }), [entry()], configFrom('smtputf8_enable = "no"\n'));
    const bytes = Buffer.from(r.notices[0]!.content("Q1"));
    expect(bytes.includes(latin1)).toBe(true);
    const mime = parseMime(bytes);
    expect(header(mime, "Content-Transfer-Encoding")).toBe("8bit");
    expect(r.notices[0]!.queueFile("Q1").attributes.encoding).toBe("8BITMIME");
  });
});

describe("the notice's queue file", () => {
  test("sender, recipients, attributes and content, and it survives the queue-file format", () => {
    const n = build("failure", message(), [entry()]).notices[0]!;
    const qf = n.queueFile("4B2E3D1C0A");
    expect(qf.sender).toBe("");
    expect(qf.recipients).toEqual([{ address: "alice@example.org" }]);
    expect(qf.arrivalTime).toBe(NOW.getTime());
    expect(qf.attributes).toEqual({ origin: "bounce", rewrite_context: "local", encoding: "8BITMIME" });
    expect(Buffer.from(qf.content).equals(Buffer.from(n.content("4B2E3D1C0A")))).toBe(true);
    const back = decodeQueueFile(encodeQueueFile(qf));
    expect(Buffer.from(back.content).equals(Buffer.from(qf.content))).toBe(true);
  });

  test("with smtputf8 off and ASCII content the report is 7bit", () => {
    const n = build("failure", message({ attributes: { encoding: "7BIT" } }), [entry()], configFrom('smtputf8_enable = "no"\n')).notices[0]!;
    expect(n.queueFile("Q").attributes.encoding).toBe("7BIT");
    expect(header(parseMime(n.content("Q")), "Content-Transfer-Encoding")).toBe("7bit");
  });
});

describe("mail_name", () => {
  test("names the vendor fields and the Received: line", () => {
    const mime = parsed("failure", message(), [entry()], configFrom('mail_name = "Postfix"\n'));
    expect(Object.keys(fields(mime.parts![1]!.groups![0]!))).toContain("X-Postfix-Queue-ID");
    expect(fields(mime.parts![1]!.groups![1]!)["Diagnostic-Code"]).toBe('X-Postfix; unknown user: "bob"');
    expect(header(mime, "Received")).toStartWith("by mx.example.test (Postfix) id ");
  });
});

describe("verify and record reports (sendmail -bv, sendmail -v)", () => {
  const probe = (over: Partial<QueueFile> = {}) =>
    message({ attributes: { verify: "yes" }, ...over }, [
      { address: "staff@mx.example.test", original: "staff", orcpt: "rfc822;staff@mx.example.test", notify: ["NEVER"] },
      { address: "carol@remote.test", original: "carol@remote.test" },
    ]);
  const answers: NoticeEntry[] = [
    { recipient: "bob@mx.example.test", original: "staff", orcpt: "rfc822;staff@mx.example.test", status: "2.0.0", action: "deliverable", time: 0, reason: "delivers to mailbox", relay: "local" },
    { recipient: "dan@mx.example.test", original: "staff", orcpt: "rfc822;staff@mx.example.test", status: "5.1.1", action: "undeliverable", time: 0, reason: 'unknown user: "dan"', relay: "local" },
    { recipient: "bob@mx.example.test", original: "staff", orcpt: "rfc822;staff@mx.example.test", status: "2.0.0", action: "deliverable", time: 0, reason: "delivers to file: /tmp/x", relay: "local" },
    { recipient: "carol@remote.test", status: "2.1.5", action: "deliverable", time: 0, reason: "250 2.1.5 Ok", relay: "mx.remote.test[192.0.2.7]:25" },
  ];

  test("Postfix's verify template, to the sender from the null sender, headers only", () => {
    const r = build("verify", probe(), answers);
    expect(r.notices.map((n) => [n.audience, n.description, n.sender, n.recipients])).toEqual([["sender", "sender delivery status notification", "", ["alice@example.org"]]]);
    const mime = parseMime(r.notices[0]!.content("4B2E3D1C0A"));
    expect(header(mime, "Subject")).toBe("Mail Delivery Status Report");
    expect(mime.parts![0]!.body!).toStartWith("This is the mail system at host mx.example.test.\n\nEnclosed is the mail delivery report that you requested.\n");
    expect(mime.parts!.map((p) => [p.type, header(p, "Content-Description")])).toEqual([
      ["text/plain", "Notification"],
      ["message/delivery-status", "Delivery report"],
      ["text/rfc822-headers", "Message Headers"],
    ]);
  });

  test("every entry in the order logged, NOTIFY=NEVER or not, each 'delivery via RELAY: reason'", () => {
    const mime = parsed("verify", probe(), answers);
    const text = mime.parts![0]!.body!.replace(/\n {4}/g, " ");
    expect(text.slice(text.indexOf("<"))).toBe(
      [
        "<bob@mx.example.test> (expanded from <staff>): delivery via local: delivers to mailbox",
        '<dan@mx.example.test> (expanded from <staff>): delivery via local: unknown user: "dan"',
        "<bob@mx.example.test> (expanded from <staff>): delivery via local: delivers to file: /tmp/x",
        "<carol@remote.test>: delivery via mx.remote.test[192.0.2.7]:25: 250 2.1.5 Ok",
      ].join("\n\n") + "\n",
    );
    const groups = mime.parts![1]!.groups!.slice(1).map(fields);
    expect(groups.map((g) => [g["Final-Recipient"], g["Original-Recipient"], g.Action, g.Status, g["Diagnostic-Code"], g["Remote-MTA"]])).toEqual([
      ["rfc822; bob@mx.example.test", "rfc822;staff@mx.example.test", "deliverable", "2.0.0", "X-Postern; delivery via local: delivers to mailbox", undefined],
      ["rfc822; dan@mx.example.test", "rfc822;staff@mx.example.test", "undeliverable", "5.1.1", 'X-Postern; delivery via local: unknown user: "dan"', undefined],
      ["rfc822; bob@mx.example.test", "rfc822;staff@mx.example.test", "deliverable", "2.0.0", "X-Postern; delivery via local: delivers to file: /tmp/x", undefined],
      ["rfc822; carol@remote.test", "rfc822;carol@remote.test", "deliverable", "2.1.5", "smtp; 250 2.1.5 Ok", "dns; mx.remote.test"],
    ]);
    // no Will-Retry-Until: a verify report is not a delay report
    expect(groups.some((g) => "Will-Retry-Until" in g)).toBe(false);
  });

  test("relay=none gives the reason alone, as Postfix's trace_append does", () => {
    const mime = parsed("verify", probe(), [{ recipient: "x@nowhere.test", status: "5.1.2", action: "undeliverable", time: 0, reason: "bad address", relay: "none" }]);
    expect(mime.parts![0]!.body!).toContain("\n<x@nowhere.test>: bad address\n");
  });

  test("a record report uses the same template, whatever the kinds of outcome", () => {
    const mime = parsed("record", message({ attributes: { record: "yes" } }), [
      entry({ status: "2.0.0", action: "delivered", reason: "delivered to mailbox", relay: "local" }),
      entry({ recipient: "dan@mx.example.test", status: "4.2.0", action: "delayed", reason: "mailbox busy", relay: "local" }),
    ]);
    expect(header(mime, "Subject")).toBe("Mail Delivery Status Report");
    expect(mime.parts![1]!.groups!.slice(1).map((g) => fields(g).Action)).toEqual(["delivered", "delayed"]);
    expect(mime.parts![0]!.body!).toContain("<dan@mx.example.test>: delivery via local: mailbox busy\n");
  });

  test("bounce_template_file's verify_template replaces the text of both", () => {
    const file = join(root, "verify-bounce.cf");
    writeFileSync(file, "verify_template = <<EOF\nSubject: Probe results\n\nHere is what $myhostname found.\nEOF\n");
    const config = configFrom(`bounce_template_file = "${file}"\n`);
    for (const kind of ["verify", "record"] as const) {
      const mime = parsed(kind, probe(), answers, config);
      expect(header(mime, "Subject")).toBe("Probe results");
      expect(mime.parts![0]!.body!).toStartWith("Here is what mx.example.test found.\n");
    }
  });

  test("none to the null sender or the double-bounce sender: Postfix's info lines", () => {
    for (const kind of ["verify", "record"] as const) {
      expect(build(kind, probe({ sender: "" }), answers)).toEqual({ notices: [], log: [{ severity: "info", text: "3A1F2C0B5E: not sending trace/success notification for single-bounce message" }] });
      expect(build(kind, probe({ sender: "double-bounce@mx.example.test" }), answers).log).toEqual([
        { severity: "info", text: "3A1F2C0B5E: not sending trace/success notification for double-bounce message" },
      ]);
    }
  });

  test("notifyAllows lets every recipient into these reports", () => {
    expect(notifyAllows("verify", ["NEVER"])).toBe(true);
    expect(notifyAllows("record", undefined)).toBe(true);
  });
});

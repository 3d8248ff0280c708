import { describe, expect, test } from "bun:test";
import { formatJsonEntry, formatMailqEntry, mailqSummary, printable, quoteAddress, shownAddress } from "../../../../src/cmd/postqueue/mailq-format.ts";
import type { ListedMessage } from "../../../../src/global/queue/listing.ts";


function message(over: Partial<ListedMessage> = {}): ListedMessage {
  return {
    queueName: "deferred",
    queueId: "4CAF620C78F",
    arrivalTime: 1795242239, // Sat Nov 21 06:23:59 2026 UTC
    messageSize: 2077,
    forcedExpire: false,
    sender: "alice@example.com",
    recipients: [],
    ...over,
  };
}

const INDENT = " ".repeat(41);

describe("addresses as mailq shows them", () => {
  test("a dot-atom local part stays as it is", () => {
    expect(quoteAddress("first.last+tag@example.com")).toBe("first.last+tag@example.com");
  });
  test("a local part with a space or special characters is quoted, quote and backslash escaped", () => {
    expect(quoteAddress("odd user@remote.test")).toBe('"odd user"@remote.test');
    expect(quoteAddress('a"b\\c@x.test')).toBe('"a\\"b\\\\c"@x.test');
    expect(quoteAddress("a..b@x.test")).toBe('"a..b"@x.test');
  });
  test("an already quoted local part is not quoted twice", () => {
    expect(quoteAddress('"odd user"@remote.test')).toBe('"odd user"@remote.test');
  });
  test("the null sender is shown by the configured name", () => {
    expect(shownAddress("", "MAILER-DAEMON")).toBe("MAILER-DAEMON");
  });
  test("control characters and DEL print as ?", () => {
    expect(printable("a\tb\rc\x7fd\ne")).toBe("a?b?c?d?e");
  });
});

describe("one message in mailq text", () => {
  test("the sender line: ID padded to 11, size right-aligned in 7, 20 columns of asctime, sender", () => {
    expect(formatMailqEntry(message(), "MAILER-DAEMON")).toBe("4CAF620C78F    2077 Sat Nov 21 06:23:59  alice@example.com\n");
  });

  test("status characters: * active, ! hold, # forced expiry, after the ID", () => {
    const line = (m: Partial<ListedMessage>) => formatMailqEntry(message(m), "M").split("\n")[0]!;
    expect(line({ queueName: "active", queueId: "272C820C459" })).toStartWith("272C820C459*    2077 ");
    expect(line({ queueName: "hold" })).toStartWith("4CAF620C78F!    2077 ");
    expect(line({ queueName: "hold", forcedExpire: true })).toStartWith("4CAF620C78F!#    2077 ");
    expect(line({ queueName: "deferred", forcedExpire: true })).toStartWith("4CAF620C78F#    2077 ");
    expect(line({ queueId: "ABCDEF" })).toStartWith("ABCDEF         2077 ");
  });

  test("a short reason is right-aligned so that it ends in column 78", () => {
    const reason = "connect to 127.0.0.1[127.0.0.1]:2526: Connection refused";
    const text = formatMailqEntry(message({ recipients: [{ address: "dave@remote.test", reason }] }), "M");
    const lines = text.split("\n");
    expect(lines[1]).toBe(" ".repeat(76 - reason.length) + `(${reason})`);
    expect(lines[1]!.length).toBe(78);
    expect(lines[2]).toBe(INDENT + "dave@remote.test");
  });

  test("a reason longer than 76 bytes starts in column 1 and is not wrapped", () => {
    const reason = "x".repeat(150);
    const lines = formatMailqEntry(message({ recipients: [{ address: "a@b.test", reason }] }), "M").split("\n");
    expect(lines[1]).toBe(`(${reason})`);
  });

  test("alignment counts bytes, as Postfix's strlen does", () => {
    const reason = "Überlauf"; // 9 bytes in UTF-8
    const lines = formatMailqEntry(message({ recipients: [{ address: "a@b.test", reason }] }), "M").split("\n");
    expect(lines[1]).toBe(" ".repeat(76 - 9) + `(${reason})`);
  });

  test("a reason is printed again only when it changes; a missing one after a reason is 'reason unavailable'", () => {
    const text = formatMailqEntry(
      message({
        recipients: [
          { address: "same1@x.test", reason: "R1" },
          { address: "same2@x.test", reason: "R1" },
          { address: "other@x.test", reason: "R2" },
          { address: "none@x.test", reason: "" },
        ],
      }),
      "M",
    );
    expect(text.split("\n").slice(1, -1)).toEqual([
      " ".repeat(74) + "(R1)",
      INDENT + "same1@x.test",
      INDENT + "same2@x.test",
      " ".repeat(74) + "(R2)",
      INDENT + "other@x.test",
      " ".repeat(58) + "(reason unavailable)",
      INDENT + "none@x.test",
    ]);
  });

  test("recipients without any reason have no reason line at all", () => {
    const text = formatMailqEntry(message({ queueName: "maildrop", recipients: [{ address: "a@x.test", reason: "" }, { address: "b@x.test", reason: "" }] }), "M");
    expect(text.split("\n").slice(1, -1)).toEqual([INDENT + "a@x.test", INDENT + "b@x.test"]);
  });

  test("the null sender prints as MAILER-DAEMON (empty_address_recipient)", () => {
    expect(formatMailqEntry(message({ sender: "" }), "MAILER-DAEMON")).toEndWith("  MAILER-DAEMON\n");
  });

  test("a newline in an address cannot start a line of its own", () => {
    const text = formatMailqEntry(message({ recipients: [{ address: "evil\n-- 0 Kbytes@x.test", reason: "a\nb" }] }), "M");
    expect(text.split("\n")).toHaveLength(4);
  });
});

describe("the closing line", () => {
  test("singular and plural requests, Kbytes rounded down", () => {
    expect(mailqSummary(1, 1023)).toBe("\n-- 0 Kbytes in 1 Request.\n");
    expect(mailqSummary(9, 9515)).toBe("\n-- 9 Kbytes in 9 Requests.\n");
    expect(mailqSummary(2, 2048)).toBe("\n-- 2 Kbytes in 2 Requests.\n");
  });
});

describe("postqueue -j objects", () => {
  test("Postfix's members, order and spacing; delay_reason only when there is one", () => {
    const line = formatJsonEntry(
      message({ forcedExpire: true, recipients: [{ address: "a@x.test", reason: "later" }, { address: "odd user@x.test", reason: "" }] }),
      "MAILER-DAEMON",
    );
    expect(line).toBe(
      '{"queue_name": "deferred", "queue_id": "4CAF620C78F", "arrival_time": 1795242239, "message_size": 2077, "forced_expire": true, ' +
        '"sender": "alice@example.com", "recipients": [{"address": "a@x.test", "delay_reason": "later"}, {"address": "\\"odd user\\"@x.test"}]}\n',
    );
    expect(JSON.parse(line).recipients[1].address).toBe('"odd user"@x.test');
  });

  test("quotes and backslashes are escaped, control characters print as ?", () => {
    const parsed = JSON.parse(formatJsonEntry(message({ sender: "", recipients: [{ address: "a@x.test", reason: 'say "hi"\\\t\n' }] }), "MAILER-DAEMON"));
    expect(parsed.sender).toBe("MAILER-DAEMON");
    expect(parsed.recipients[0].delay_reason).toBe('say "hi"\\??');
  });

  test("no recipients left gives an empty array", () => {
    expect(formatJsonEntry(message(), "M")).toContain('"recipients": []}');
  });
});

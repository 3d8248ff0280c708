/**
 * header_checks(5) and body_checks: cleanup's actions (every one of
 * Postfix's cleanup_act) and the SMTP client's (header_body_checks.c), on
 * regexp: and pcre: tables, through the engine and the MIME reader they
 * share; receive_override_options=no_header_body_checks.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig } from "../../../../src/global/config/config.ts";
import { closeAllTables } from "../../../../src/global/tables/open-table.ts";
import { TableError } from "../../../../src/global/tables/table.ts";
import { cleanupCheckTables, QUEUE_ID_PLACEHOLDER, rejectReason, runCleanupChecks, withQueueId, type CheckLogContext } from "../../../../src/cleanup/header-body-checks.ts";
import { clientCheckTables, runClientChecks } from "../../../../src/smtp/header-body-checks.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-checks-");
afterAll(() => {
  closeAllTables();
  removeDir(dir);
});

let n = 0;
function table(text: string, type = "regexp"): string {
  const path = join(dir, `t${n++}`);
  writeFileSync(path, text);
  return `${type}:${path}`;
}

const ctx: CheckLogContext = { origin: "client.example[192.0.2.1]", sender: "s@example.com", recipient: "r@example.net", proto: "ESMTP", helo: "client.example" };
const MSG = "Subject: hello world\nFrom: a@example.com\nX-Spam: yes\n\nfirst line\nbad word here\nlast line\n";

async function cleanup(o: Record<string, string>, msg = MSG) {
  const tables = cleanupCheckTables(defaultsOnlyConfig().withOverrides(o));
  if (!tables) throw new Error("no tables");
  const out = await runCleanupChecks(Buffer.from(msg, "latin1"), tables, ctx);
  return { ...out, text: Buffer.from(out.content).toString("latin1") };
}

describe("cleanup's header and body checks", () => {
  test("no tables, or receive_override_options=no_header_body_checks: nothing to run", () => {
    expect(cleanupCheckTables(defaultsOnlyConfig())).toBeUndefined();
    const h = table("/^Subject:/ REJECT\n");
    expect(cleanupCheckTables(defaultsOnlyConfig().withOverrides({ header_checks: h }))).toBeDefined();
    expect(cleanupCheckTables(defaultsOnlyConfig().withOverrides({ header_checks: h, receive_override_options: "no_header_body_checks" }))).toBeUndefined();
  });

  test("REJECT without text: 5.7.1 message content rejected, logged as Postfix's cleanup logs it, inspection stops", async () => {
    const out = await cleanup({ header_checks: table("/^Subject: hello/ REJECT\n/^X-Spam:/ HOLD\n") });
    expect(out.reject).toBe("5.7.1 message content rejected");
    expect(out.hold).toBe(false);
    expect(out.logs).toEqual(["reject: header Subject: hello world from client.example[192.0.2.1]; from=<s@example.com> to=<r@example.net> proto=ESMTP helo=<client.example>: 5.7.1 message content rejected"]);
  });

  test("REJECT text: 5.7.1 in front unless a status is there; 4.x.x defers; a bad class becomes 4", () => {
    const w: string[] = [];
    expect(rejectReason("go away", w)).toBe("5.7.1 go away");
    expect(rejectReason("5.7.0 no spam", w)).toBe("5.7.0 no spam");
    expect(rejectReason("4.7.1 later", w)).toBe("4.7.1 later");
    expect(rejectReason("2.0.0 huh", w)).toBe("4.0.0 huh");
    expect(w).toHaveLength(1);
  });

  test("$1 from the message: a reply text is one printable line; a REDIRECT or BCC target with blanks or line breaks is refused", async () => {
    const folded = await cleanup({ header_checks: table("/^Subject: (.*)/ REJECT 5.7.1 Bad subject $1\n") }, "Subject: one\r\n\ttwo\x01\n\nx\n");
    expect(folded.reject).toBe("5.7.1 Bad subject one two?");
    const redirect = await cleanup({ header_checks: table("/^X-To: (.*)/ REDIRECT $1\n/^X-Cc: (.*)/ BCC $1\n") }, "X-To: a@b\n c@d\nX-Cc: e@f g@h\n\nx\n");
    expect(redirect.redirect).toBeUndefined();
    expect(redirect.bcc).toEqual([]);
    expect(redirect.warnings).toHaveLength(2);
  });

  test("body_checks REJECT with $1 substitution (pcre:)", async () => {
    const out = await cleanup({ body_checks: table("/^bad (\\w+)/ REJECT 5.7.0 Bad $1 found\n", "pcre") });
    expect(out.reject).toBe("5.7.0 Bad word found");
    expect(out.logs[0]).toStartWith("reject: body bad word here from client.example[192.0.2.1];");
  });

  test("DISCARD stops inspection; HOLD, FILTER, REDIRECT, BCC are recorded and logged", async () => {
    const hold = await cleanup({ header_checks: table("/^X-Spam:/ HOLD suspicious\n/^Subject:/ FILTER smtp:[127.0.0.1]:10025\n/^From:/ BCC archive@example.com\n") });
    expect(hold.hold).toBe(true);
    expect(hold.filter).toBe("smtp:[127.0.0.1]:10025");
    expect(hold.bcc).toEqual(["archive@example.com"]);
    expect(hold.logs.map((l) => l.split(":")[0])).toEqual(["filter", "bcc", "hold"]);
    expect(hold.logs[2]).toEndWith(": suspicious");
    const redirect = await cleanup({ header_checks: table("/^Subject:/ REDIRECT other@example.org\n/^X-Spam:/ HOLD\n") });
    expect(redirect.redirect).toBe("other@example.org");
    expect(redirect.hold).toBe(false); // REDIRECT ends the inspection, as Postfix's FILTER_ALL flag
    const discard = await cleanup({ header_checks: table("/^Subject:/ DISCARD\n/^X-Spam:/ HOLD\n") });
    expect(discard.discard).toBe(true);
    expect(discard.hold).toBe(false);
    expect(discard.logs).toHaveLength(1);
  });

  test("PREPEND, REPLACE, IGNORE, STRIP change the message; WARN, INFO, DUNNO, OK do not", async () => {
    const out = await cleanup({
      header_checks: table("/^Subject:/ PREPEND X-Seen: yes\n/^X-Spam:/ IGNORE\n/^From:/ REPLACE From: someone@example.com\n"),
      body_checks: table("/^first/ STRIP gone\n/^bad/ REPLACE good word here\n/^last/ PREPEND inserted\n"),
    });
    expect(out.changed).toBe(true);
    expect(out.text).toBe("X-Seen: yes\nSubject: hello world\nFrom: someone@example.com\n\ngood word here\ninserted\nlast line\n");
    expect(out.logs.map((l) => l.split(":")[0])).toEqual(["prepend", "replace", "strip", "replace", "prepend"]);
    const quiet = await cleanup({ header_checks: table("/^Subject:/ WARN look\n/^From:/ INFO noted\n/^X-Spam:/ DUNNO\n"), body_checks: table("/line/ OK\n") });
    expect(quiet.changed).toBe(false);
    expect(quiet.text).toBe(MSG);
    expect(quiet.logs.map((l) => l.split(":")[0])).toEqual(["warning", "info"]);
  });

  test("PREPEND and REPLACE of a header need header text; unknown commands are warned about", async () => {
    const out = await cleanup({ header_checks: table("/^Subject:/ PREPEND not a header\n/^From:/ REPLACE nope\n/^X-Spam:/ FROB\n") });
    expect(out.changed).toBe(false);
    expect(out.warnings).toHaveLength(3);
    expect(out.warnings[2]).toContain("unknown command in header_checks map: FROB");
  });

  test("mime_header_checks and nested_header_checks default to header_checks; each class its own table", async () => {
    const msg = "Subject: top\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\nSubject: inner\n\nx\n--b--\n";
    const all = await cleanup({ header_checks: table("/^Subject: inner/ REJECT nested\n") }, msg);
    expect(all.reject).toBe("5.7.1 nested");
    const split = await cleanup({ header_checks: table("/^Subject: inner/ REJECT nested\n"), nested_header_checks: "" }, msg);
    expect(split.reject).toBeUndefined();
    const mime = await cleanup({ mime_header_checks: table("/^Content-Type: message/ WARN attached message\n") }, msg);
    expect(mime.logs).toHaveLength(1);
  });

  test("header lines are matched whole, folding included; body_checks_size_limit bounds each body part", async () => {
    const folded = await cleanup({ header_checks: table("/^Subject: one\\n two$/ REJECT folded\n", "pcre") }, "Subject: one\n two\n\nx\n");
    expect(folded.reject).toBe("5.7.1 folded");
    const body = `S: x\n\n${"filler\n".repeat(20)}needle\n`;
    expect((await cleanup({ body_checks: table("/needle/ REJECT\n"), body_checks_size_limit: "50" }, body)).reject).toBeUndefined();
    expect((await cleanup({ body_checks: table("/needle/ REJECT\n"), body_checks_size_limit: "0" }, body)).reject).toBeDefined();
  });

  test("more nested multiparts than mime_nesting_limit: rejected 5.6.0 when header checks are set", async () => {
    const parts: string[] = [];
    for (let i = 0; i < 5; i++) parts.push(`Content-Type: multipart/mixed; boundary=b${i}`, "", `--b${i}`);
    const out = await cleanup({ header_checks: table("/^X-Nothing:/ REJECT\n"), mime_nesting_limit: "3" }, `${parts.join("\n")}\n`);
    expect(out.reject).toBe("5.6.0 MIME nesting exceeds safety limit");
  });

  test("the server's own header is checked first: dropped, replaced with the queue ID put in, or it rejects", async () => {
    const tables = (text: string) => cleanupCheckTables(defaultsOnlyConfig().withOverrides({ header_checks: table(text) }))!;
    const own = `Received: from x.example\n\tby mx id ${QUEUE_ID_PLACEHOLDER}; date`;
    const dropped = await runCleanupChecks(Buffer.from(MSG), tables("/^Received: from x/ IGNORE\n"), ctx, own);
    expect(dropped.ownHeader).toEqual([]);
    const replaced = await runCleanupChecks(Buffer.from(MSG), tables("/^Received: .* id (.*);/ REPLACE X-Was-Id: $1\n"), ctx, own);
    expect(withQueueId(replaced.ownHeader!, "4F2A1B")).toEqual(["X-Was-Id: 4F2A1B"]);
    const rejected = await runCleanupChecks(Buffer.from(MSG), tables("/^Received: from x/ REJECT\n/^Subject:/ HOLD\n"), ctx, own);
    expect(rejected.reject).toBe("5.7.1 message content rejected");
    expect(rejected.hold).toBe(false);
  });

  test("a table that cannot be read throws TableError (the caller defers)", async () => {
    const tables = cleanupCheckTables(defaultsOnlyConfig().withOverrides({ header_checks: `regexp:${join(dir, "missing")}` }))!;
    await expect(runCleanupChecks(Buffer.from(MSG), tables, ctx)).rejects.toBeInstanceOf(TableError);
  });
});

describe("the SMTP client's checks", () => {
  test("smtp_ tables: REPLACE, PREPEND, STRIP, IGNORE, WARN, INFO; cleanup-only actions are unsupported", async () => {
    const tables = clientCheckTables(
      defaultsOnlyConfig().withOverrides({
        smtp_header_checks: table("/^Subject:/ REPLACE Subject: [external] hello\n/^X-Spam:/ STRIP\n/^From:/ REJECT\n"),
        smtp_body_checks: table("/^first/ PREPEND before\n/^bad/ IGNORE\n/^last/ WARN last\n"),
      }),
      false,
    )!;
    const out = await runClientChecks(Buffer.from(MSG), tables);
    expect(Buffer.from(out.content).toString()).toBe("Subject: [external] hello\nFrom: a@example.com\n\nbefore\nfirst line\nlast line\n");
    expect(out.logs).toEqual(["replace: header Subject: hello world: Subject: [external] hello", "strip: header X-Spam: yes", "prepend: body first line: before", "warning: body last line: last"]);
    expect(out.warnings).toEqual(["unsupported command in smtp_header_checks map: REJECT"]);
  });

  test("lmtp_ tables for LMTP, none without them", () => {
    const c = defaultsOnlyConfig().withOverrides({ smtp_header_checks: table("/x/ WARN\n") });
    expect(clientCheckTables(c, false)).toBeDefined();
    expect(clientCheckTables(c, true)).toBeUndefined();
  });
});

/**
 * Mailbox names in mail_spool_directory (src/local/mailbox-name.ts): one
 * visible file name or nothing, and the writers' "inside the directory"
 * check.
 */
import { expect, test } from "bun:test";
import { isPathInside, mailboxNameProblem, spoolMailboxPath } from "../../../src/local/mailbox-name.ts";

test("a plain name is a mailbox: maildir with a trailing slash, mbox file otherwise", () => {
  expect(spoolMailboxPath("/var/mail/", "you")).toBe("/var/mail/you/");
  expect(spoolMailboxPath("/var/mail", "you")).toBe("/var/mail/you");
  expect(spoolMailboxPath("/var/mail", "jürgen.x-y_z+a")).toBe("/var/mail/jürgen.x-y_z+a");
  expect(spoolMailboxPath("/var/mail", "a".repeat(64))).toBe(`/var/mail/${"a".repeat(64)}`);
});

test.each([
  ["..", 'starts with "."'],
  [".", 'starts with "."'],
  ["../x", 'contains "/"'],
  ["../home/.bashrc", 'contains "/"'],
  [".bashrc", 'starts with "."'],
  ["a/b", 'contains "/"'],
  ["/etc/passwd", 'contains "/"'],
  ["a\nb", "contains a control character"],
  ["a\rb", "contains a control character"],
  ["a\u0000b", "contains a control character"],
  ["a\u001bb", "contains a control character"],
  ["a\u007fb", "contains a control character"],
  ["a\u0085b", "contains a control character"],
  ["", "empty name"],
  ["a".repeat(65), "longer than 64 bytes"],
  ["ü".repeat(33), "longer than 64 bytes"],
])("%j is no mailbox name (%s)", (name, problem) => {
  expect(mailboxNameProblem(name)).toBe(problem);
  expect(spoolMailboxPath("/var/mail/", name)).toBeUndefined();
  expect(spoolMailboxPath("/var/mail", name)).toBeUndefined();
});

test("isPathInside: strictly below the directory, after resolving", () => {
  expect(isPathInside("/var/mail/you/", "/var/mail/")).toBe(true);
  expect(isPathInside("/var/mail/you", "/var/mail")).toBe(true);
  expect(isPathInside("/var/mail/../x/", "/var/mail/")).toBe(false);
  expect(isPathInside("/var/mail", "/var/mail/")).toBe(false);
  expect(isPathInside("/var/mailx/you", "/var/mail")).toBe(false);
  expect(isPathInside("/home/u/Maildir/", "/home/u")).toBe(true);
  expect(isPathInside("/Maildir/", "/")).toBe(true);
});

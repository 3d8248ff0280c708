/** Keys for `postmap -hq -` and `-bq -`: logical header lines, then body lines. */
import { expect, test } from "bun:test";
import { messageKeys } from "../../../../src/cmd/postmap/message-keys.ts";

const MSG = "From: a@b\r\nSubject : two\n  lines\nX-Empty:\n\nbody 1\nNot-A-Header: here\n";

test("-h: one key per logical header, folded lines joined with their newline", () => {
  expect(messageKeys(MSG, true, false)).toEqual(["From: a@b", "Subject : two\n  lines", "X-Empty:"]);
});

test("-b: every line after the header", () => {
  expect(messageKeys(MSG, false, true)).toEqual(["body 1", "Not-A-Header: here"]);
});

test("a line that is no header ends the header without an empty line", () => {
  expect(messageKeys("From: a\nthis is body\nmore\n", true, true)).toEqual(["From: a", "this is body", "more"]);
});

import { expect, test } from "bun:test";
import { ARGUMENT_RESTRICTIONS, PLAIN_RESTRICTIONS } from "../../../../src/global/config/restriction-names.ts";
import { RESTRICTION_NAMES, RESTRICTIONS_WITH_ARGUMENT } from "../../../../src/smtpd/restrictions/restrictions.ts";

test("postern check knows exactly the restrictions the SMTP server implements, and which take an argument", () => {
  expect([...PLAIN_RESTRICTIONS, ...ARGUMENT_RESTRICTIONS].sort()).toEqual([...RESTRICTION_NAMES].sort());
  expect([...ARGUMENT_RESTRICTIONS].sort()).toEqual([...RESTRICTIONS_WITH_ARGUMENT].sort());
});

import { expect, test } from "bun:test";
import { maildirHostname, maildirNewName, maildirTmpName } from "../../../src/local/worker/maildir-file.ts";

const parts = { seconds: 1763706405, microseconds: 123456, pid: 4242, count: 7, dev: 0x803, ino: 0x1a2b3c, host: "mail.example.test" };

test("tmp/ names use the process ID and a per-process delivery count", () => {
  expect(maildirTmpName(parts)).toBe("1763706405.P4242Q7.mail.example.test");
});

test("new/ names use device, inode and microseconds, as Postfix's", () => {
  expect(maildirNewName(parts)).toBe("1763706405.V803I1a2b3cM123456.mail.example.test");
});

test("slashes and colons in the host name are escaped", () => {
  expect(maildirHostname("a/b:c")).toBe("a\\057b\\072c");
});

test("two deliveries in one second differ in the new/ name", () => {
  expect(maildirNewName({ ...parts, ino: 0x1a2b3d })).not.toBe(maildirNewName(parts));
});

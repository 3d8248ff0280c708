import { expect, test } from "bun:test";
import { validateRequest } from "../../../src/local/service.ts";

const good = {
  queueId: "3A1F2C0B5E",
  queueFile: "/var/spool/postern/active/3A1F2C0B5E",
  sender: "a@example.org",
  arrivalTime: 1,
  transport: "local",
  nexthop: "host",
  recipients: [{ index: 0, address: "u@host", notify: ["SUCCESS"] }],
  attributes: { envid: "x" },
};

test("a well-formed request passes", () => {
  expect(validateRequest(good, "/var/spool/postern")).toMatchObject({ queueId: "3A1F2C0B5E", recipients: [{ index: 0, address: "u@host" }] });
});

test("the queue file must be this queue's file of that ID", () => {
  expect(() => validateRequest({ ...good, queueFile: "/etc/shadow" }, "/var/spool/postern")).toThrow(/not a file of this queue/);
  expect(() => validateRequest({ ...good, queueFile: "/var/spool/postern/active/../../../etc/3A1F2C0B5E" }, "/var/spool/postern")).toThrow(/not a file of this queue/);
  expect(() => validateRequest({ ...good, queueFile: "/var/spool/postern/active/3A1F2C0B5F" }, "/var/spool/postern")).toThrow(/not a file of this queue/);
});

test("fields of the wrong type are refused", () => {
  expect(() => validateRequest({ ...good, queueId: "../x" }, "/var/spool/postern")).toThrow(/queueId/);
  expect(() => validateRequest({ ...good, recipients: [] }, "/var/spool/postern")).toThrow(/recipients/);
  expect(() => validateRequest({ ...good, recipients: [{ index: "0", address: "u" }] }, "/var/spool/postern")).toThrow(/recipient/);
  expect(() => validateRequest({ ...good, recipients: [{ index: 0, address: "u", notify: ["ALWAYS"] }] }, "/var/spool/postern")).toThrow(/notify/);
  expect(() => validateRequest({ ...good, attributes: { a: 1 } }, "/var/spool/postern")).toThrow(/attributes/);
});

test("verify (sendmail -bv) is passed on, and only as a boolean", () => {
  expect(validateRequest({ ...good, verify: true }, "/var/spool/postern").verify).toBe(true);
  expect(validateRequest(good, "/var/spool/postern").verify).toBeUndefined();
  expect(validateRequest({ ...good, verify: false }, "/var/spool/postern").verify).toBeUndefined();
  expect(() => validateRequest({ ...good, verify: "yes" }, "/var/spool/postern")).toThrow(/verify/);
});

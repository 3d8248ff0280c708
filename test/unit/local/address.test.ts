import { expect, test } from "bun:test";
import { addressParts, canonicalAddress, splitExtension, withExtension } from "../../../src/local/address.ts";
import { splitDestinations } from "../../../src/local/destinations.ts";

const opts = { delimiters: "+", ownerRequestSpecial: true };

test("user and extension", () => {
  expect(addressParts("Alice+Lists@Example.Test", opts)).toEqual({
    address: "alice+lists@example.test",
    local: "alice+lists",
    domain: "example.test",
    user: "alice",
    extension: "lists",
    delimiter: "+",
  });
  expect(addressParts("alice@x", { ...opts, delimiters: "" }).user).toBe("alice");
});

test("split_addr's exceptions", () => {
  const dash = { delimiters: "-", ownerRequestSpecial: true };
  expect(splitExtension("owner-list", dash)).toBeUndefined();
  expect(splitExtension("list-request", dash)).toBeUndefined();
  expect(splitExtension("postmaster", { ...opts, delimiters: "t" })).toBeUndefined();
  expect(splitExtension("list-foo", dash)).toEqual({ user: "list", extension: "foo", delimiter: "-" });
  expect(splitExtension("owner-list", { ...dash, ownerRequestSpecial: false })).toEqual({ user: "owner", extension: "list", delimiter: "-" });
  expect(splitExtension("+x", opts)).toBeUndefined();
  expect(splitExtension("a-b+c", { delimiters: "+-", ownerRequestSpecial: true })?.user).toBe("a");
});

test("an extension with a slash is not split off", () => {
  const p = addressParts("alice+../x@h", opts);
  expect(p.user).toBe("alice+../x");
  expect(p.illegalExtension).toBe(true);
});

test("canonical form and extension propagation", () => {
  expect(canonicalAddress("bob", "example.test")).toBe("bob@example.test");
  expect(canonicalAddress("bob@x", "example.test")).toBe("bob@x");
  expect(withExtension("bob@x", "ext", "+")).toBe("bob+ext@x");
  expect(withExtension("bob@x", undefined, "+")).toBe("bob@x");
});

test("destinations in an alias value, as Postfix's tokenizer splits them", () => {
  expect(splitDestinations('root, "|/usr/bin/foo -x", /var/log/mail.log, :include:/etc/mail/list, Bob <bob@example.org>')).toEqual([
    "root",
    "|/usr/bin/foo -x",
    "/var/log/mail.log",
    ":include:/etc/mail/list",
    "bob@example.org",
  ]);
  // unquoted words side by side are separate destinations
  expect(splitDestinations("|/bin/sleep 60")).toEqual(["|/bin/sleep", "60"]);
  expect(splitDestinations("alice (the boss), \\bob")).toEqual(["alice", "bob"]);
  expect(splitDestinations("  ,  ")).toEqual([]);
});

/**
 * Postfix's address lookup order (mail_addr_find) and extension splitting,
 * with tables that record the keys they were asked for.
 */
import { describe, expect, test } from "bun:test";
import { lookupAddress, lookupLocalpart, splitExtension } from "../../../../src/global/tables/address-lookup.ts";
import { InlineTable } from "../../../../src/global/tables/inline-table.ts";
import { RegexpTable } from "../../../../src/global/tables/regexp-table.ts";
import type { Table } from "../../../../src/global/tables/table.ts";

/** A fixed table that answers nothing and records every key it is asked. */
function recorder(kind: "fixed" | "pattern" = "fixed"): Table & { asked: string[] } {
  const asked: string[] = [];
  return {
    spec: "recorder:",
    kind,
    asked,
    async lookup(key: string) {
      asked.push(key);
      return undefined;
    },
    owner: () => ({ status: "trusted", uid: 0 }),
    close() {},
  };
}

describe("splitExtension", () => {
  test("splits at the first delimiter of the set", () => {
    expect(splitExtension("user+a-b", "+-")).toEqual({ user: "user", extension: "a-b", delimiter: "+" });
    expect(splitExtension("user-a+b", "+-")).toEqual({ user: "user", extension: "a+b", delimiter: "-" });
  });
  test("leaves alone what Postfix leaves alone", () => {
    expect(splitExtension("user", "+")).toBeUndefined();
    expect(splitExtension("+user", "+")).toBeUndefined();
    expect(splitExtension("user+x", "")).toBeUndefined();
    expect(splitExtension("MAILER-DAEMON", "-")).toBeUndefined();
    expect(splitExtension("double-bounce", "-")).toBeUndefined();
    expect(splitExtension("owner-list", "-")).toBeUndefined();
    expect(splitExtension("list-request", "-")).toBeUndefined();
    expect(splitExtension("owner-list", "-", { ownerRequestSpecial: false })).toEqual({ user: "owner", extension: "list", delimiter: "-" });
    expect(splitExtension("owner+list", "+")).toEqual({ user: "owner", extension: "list", delimiter: "+" });
  });
});

describe("lookupAddress", () => {
  test("the full order for a local domain: user+ext@domain, user@domain, user+ext, user, @domain", async () => {
    const t = recorder();
    expect(await lookupAddress(t, "user+ext@example.com", "+", { localDomain: true })).toBeUndefined();
    expect(t.asked).toEqual(["user+ext@example.com", "user@example.com", "user+ext", "user", "@example.com"]);
  });
  test("a remote domain skips the bare local part", async () => {
    const t = recorder();
    await lookupAddress(t, "user+ext@example.com", "+");
    expect(t.asked).toEqual(["user+ext@example.com", "user@example.com", "@example.com"]);
  });
  test("no extension, no extension-less retries", async () => {
    const t = recorder();
    await lookupAddress(t, "user@example.com", "+", { localDomain: true });
    expect(t.asked).toEqual(["user@example.com", "user", "@example.com"]);
  });
  test("an address without a domain", async () => {
    const t = recorder();
    await lookupAddress(t, "user+ext", "+");
    expect(t.asked).toEqual(["user+ext", "user"]);
  });
  test("pattern tables see only the full address", async () => {
    const t = recorder("pattern");
    await lookupAddress(t, "user+ext@example.com", "+", { localDomain: true });
    expect(t.asked).toEqual(["user+ext@example.com"]);
  });
  test("each form is tried in every table before the next form", async () => {
    const a = recorder();
    const b = new InlineTable("inline", "{ user@example.com=from-b }");
    const c = recorder();
    expect(await lookupAddress([a, b, c], "user+x@example.com", "+")).toEqual({ value: "from-b", key: "user@example.com", unmatchedExtension: "+x" });
    expect(a.asked).toEqual(["user+x@example.com", "user@example.com"]);
    expect(c.asked).toEqual(["user+x@example.com"]);
  });
  test("@domain catches the rest; a regexp table matches the whole address", async () => {
    const fixed = new InlineTable("inline", "{ @example.com=catchall }");
    expect(await lookupAddress(fixed, "anyone@example.com", "+")).toEqual({ value: "catchall", key: "@example.com" });
    const re = new RegexpTable("regexp:inline", "regexp", "{ {/^(.*)\\+.*@example\\.com$/ $1-stripped} }");
    expect(await lookupAddress(re, "u+x@example.com", "+")).toEqual({ value: "u-stripped", key: "u+x@example.com" });
  });
});

describe("lookupLocalpart (aliases)", () => {
  test("the local part, then without its extension", async () => {
    const t = new InlineTable("inline", "{ user=found }");
    expect(await lookupLocalpart(t, "user+tag", "+")).toEqual({ value: "found", key: "user", unmatchedExtension: "+tag" });
    expect(await lookupLocalpart(t, "USER", "+")).toEqual({ value: "found", key: "USER" });
    expect(await lookupLocalpart(t, "other+tag", "+")).toBeUndefined();
  });
});

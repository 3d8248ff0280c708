import { describe, expect, test } from "bun:test";
import { isValidFlushSite } from "../../../../src/cmd/postqueue/flush.ts";

describe("sites postqueue -s accepts", () => {
  test("host and domain names", () => {
    for (const site of ["example.com", "mx-1.example.com", "localhost", "a_b.example", "example.com."]) expect(isValidFlushSite(site)).toBe(true);
  });
  test("address literals in brackets", () => {
    for (const site of ["[192.0.2.1]", "[IPv6:2001:db8::1]", "[IPv6:::1]"]) expect(isValidFlushSite(site)).toBe(true);
  });
  test("anything else is refused", () => {
    for (const site of ["", "bad site!", "-lead.example", "a..b", "192.0.2.1", "[192.0.2.300]", "[example.com]", "[IPv6:zz]", "x".repeat(256), "a/b", "../etc"]) {
      expect(isValidFlushSite(site)).toBe(false);
    }
  });
});

import { describe, expect, test } from "bun:test";
import { addressOfReverseName, canonicalName, nameToLabels, reverseName, sameName } from "../../../../src/global/dns/names.ts";
import { formatIpAddress } from "../../../../src/util/net/cidr-match.ts";

describe("domain names", () => {
  test("canonical form: lower case, no trailing dot, the root as a dot", () => {
    expect(canonicalName("Mail.Example.COM.")).toBe("mail.example.com");
    expect(canonicalName(".")).toBe(".");
    expect(canonicalName("")).toBe(".");
    expect(sameName("EXAMPLE.com.", "example.COM")).toBe(true);
    expect(sameName("example.com", "example.net")).toBe(false);
  });

  test("escapes: \\. stays inside a label, \\DDD is a byte", () => {
    const labels = nameToLabels("a\\.b.c\\032d.e");
    expect(Array.isArray(labels) && labels.map((l) => [...l])).toEqual([[97, 46, 98], [99, 32, 100], [101]]);
    expect(canonicalName("a\\.b.c\\032d.e")).toBe("a\\.b.c\\032d.e");
  });

  test("limits: labels of 1 to 63 bytes, 255 bytes in all", () => {
    expect(canonicalName(`${"a".repeat(63)}.example`)).toBe(`${"a".repeat(63)}.example`);
    expect(canonicalName(`${"a".repeat(64)}.example`)).toEqual({ problem: expect.stringContaining("longer than 63") });
    expect(canonicalName("a..example")).toEqual({ problem: expect.stringContaining("empty label") });
    const long = Array(4).fill("b".repeat(63)).join("."); // 4*64+1 = 257 bytes
    expect(canonicalName(long)).toEqual({ problem: expect.stringContaining("longer than 255") });
    expect(canonicalName("bad\\256.example")).toEqual({ problem: expect.stringContaining("bad escape") });
  });

  test("reverse names of IPv4, IPv6 and IPv4-mapped addresses", () => {
    expect(reverseName("192.0.2.1")).toBe("1.2.0.192.in-addr.arpa");
    expect(reverseName("2001:db8::1")).toBe("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa");
    expect(reverseName("::ffff:198.51.100.3")).toBe("3.100.51.198.in-addr.arpa");
    expect(reverseName("not-an-address")).toBeUndefined();
  });

  test("a reverse name gives its address back", () => {
    for (const ip of ["192.0.2.1", "2001:db8::1", "::1"]) {
      const addr = addressOfReverseName(reverseName(ip)!);
      expect(addr && formatIpAddress(addr)).toBe(ip);
    }
    expect(addressOfReverseName("1.2.0.192.example")).toBeUndefined();
    expect(addressOfReverseName("300.2.0.192.in-addr.arpa")).toBeUndefined();
  });
});

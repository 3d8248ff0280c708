/**
 * cidr: specifics, against Postfix 3.7's answers for the same table: first
 * match wins in file order, negation only within an address family, if/endif,
 * IPv6 in any spelling, and Postfix's complaints about bad patterns.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CidrTable } from "../../../../src/global/tables/cidr-table.ts";
import { formatIpAddress, parseIpAddress, parseNetwork } from "../../../../src/util/net/cidr-match.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-cidr-");
afterAll(() => removeDir(dir));

describe("cidr: as Postfix answers", () => {
  const path = join(dir, "c1");
  writeFileSync(
    path,
    [
      "192.168.1.1   one",
      "192.168.0.0/16   sixteen",
      "10.1.2.3/8   badbits",
      "[10.0.0.0]/8  bracketed",
      "2001:db8::1  v6one",
      "2001:DB8::/32   v6net",
      "!172.16.0.0/12  not-private",
      "if 127.0.0.0/8",
      "127.0.0.1 lo1",
      "endif",
      "0.0.0.0/0 any4",
      "01.2.3.4 octal",
      "garbage x",
      "::/0 any6",
    ].join("\n") + "\n",
  );
  const t = new CidrTable(`cidr:${path}`, path);
  const cases: Array<[string, string | undefined]> = [
    ["192.168.1.1", "one"],
    ["192.168.9.9", "sixteen"],
    ["172.16.0.1", "any4"],
    ["127.0.0.1", "not-private"],
    ["8.8.8.8", "not-private"],
    ["2001:db8::1", "v6one"],
    ["2001:0db8:0::0001", "v6one"],
    ["2001:db8:ffff::1", "v6net"],
    ["::1", "any6"],
    ["::ffff:192.168.1.1", "any6"],
    ["[192.168.1.1]", undefined],
    ["foo", undefined],
    ["10.0.0.1", "bracketed"],
    ["001.2.3.4", undefined],
  ];
  for (const [key, want] of cases) {
    test(`${key} -> ${want}`, async () => {
      expect(await t.lookup(key)).toBe(want);
    });
  }
});

describe("cidr: rule order and blocks", () => {
  test("the first matching rule wins, not the most specific", async () => {
    const t = new CidrTable("cidr:inline", "{ {10.0.0.0/8 wide}, {10.1.0.0/16 narrow} }");
    expect(await t.lookup("10.1.2.3")).toBe("wide");
  });
  test("if !network skips the block for addresses inside it", async () => {
    const t = new CidrTable("cidr:inline", "{ {if !10.0.0.0/8}, {0.0.0.0/0 outside}, {endif}, {0.0.0.0/0 inside} }");
    expect(await t.lookup("192.0.2.1")).toBe("outside");
    expect(await t.lookup("10.9.9.9")).toBe("inside");
  });
});

describe("cidr: address parsing", () => {
  test("networks with host bits set are refused with Postfix's suggestion", () => {
    expect(parseNetwork("10.1.2.3/8")).toEqual({ problem: 'non-null host address bits in "10.1.2.3/8", perhaps you should use "10.0.0.0/8" instead' });
    expect(parseNetwork("2001:db8::1/32")).toEqual({ problem: 'non-null host address bits in "2001:db8::1/32", perhaps you should use "2001:db8::/32" instead' });
    expect(parseNetwork("1.2.3.4/33")).toEqual({ problem: 'bad mask length in "1.2.3.4/33"' });
  });
  test("IPv6 forms", () => {
    for (const ok of ["::", "::1", "1::", "1:2:3:4:5:6:7:8", "::ffff:1.2.3.4", "fe80::1:2"]) expect(parseIpAddress(ok)?.family).toBe(6);
    for (const bad of ["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "fe80::1%eth0", ":::"]) expect(parseIpAddress(bad)).toBeUndefined();
    expect(formatIpAddress(parseIpAddress("2001:0db8:0:0:0:0:0:0001")!)).toBe("2001:db8::1");
  });
  test("IPv4 forms: no leading zeros, four octets", () => {
    for (const bad of ["1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 "]) expect(parseIpAddress(bad)).toBeUndefined();
    expect(parseIpAddress("0.0.0.0")?.family).toBe(4);
  });
});

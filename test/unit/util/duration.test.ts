import { describe, expect, test } from "bun:test";
import { parseBoolean, parseInteger, parseTime } from "../../../src/util/duration.ts";

describe("parseTime", () => {
  test("each Postfix unit", () => {
    expect(parseTime("45s")).toBe(45);
    expect(parseTime("5m")).toBe(300);
    expect(parseTime("2h")).toBe(7200);
    expect(parseTime("5d")).toBe(432000);
    expect(parseTime("1w")).toBe(604800);
  });

  test("a bare number takes the parameter's default unit", () => {
    expect(parseTime("300")).toBe(300);
    expect(parseTime("5", "d")).toBe(432000);
    expect(parseTime("3", "h")).toBe(10800);
    expect(parseTime("0", "h")).toBe(0);
  });

  test("an explicit unit wins over the default unit", () => {
    expect(parseTime("30s", "d")).toBe(30);
  });

  test("a sequence of number+unit pairs adds up", () => {
    expect(parseTime("1h30m")).toBe(5400);
    expect(parseTime("1d2h3m4s")).toBe(86400 + 7200 + 180 + 4);
  });

  test("upper-case units and surrounding blanks are accepted", () => {
    expect(parseTime(" 10M ")).toBe(600);
  });

  test("malformed values are undefined", () => {
    for (const bad of ["", "x", "5x", "1.5h", "-5s", "h", "5 s", "5s5", "1h 30m", "+5"]) expect(parseTime(bad)).toBeUndefined();
  });
});

describe("parseInteger", () => {
  test("non-negative decimal integers", () => {
    expect(parseInteger("0")).toBe(0);
    expect(parseInteger("10240000")).toBe(10240000);
    expect(parseInteger(" 42 ")).toBe(42);
  });

  test("signs, fractions, units, hex and text are rejected", () => {
    for (const bad of ["", "-1", "+1", "1.5", "10k", "0x10", "lots", "1e6", "1 000"]) expect(parseInteger(bad)).toBeUndefined();
  });

  test("values beyond the safe integer range are rejected", () => {
    expect(parseInteger("9007199254740993")).toBeUndefined();
    expect(parseInteger("9007199254740991")).toBe(9007199254740991);
  });
});

describe("parseBoolean", () => {
  test("yes/no in any case, and TOML's true/false", () => {
    expect(parseBoolean("yes")).toBe(true);
    expect(parseBoolean("YES")).toBe(true);
    expect(parseBoolean("true")).toBe(true);
    expect(parseBoolean("no")).toBe(false);
    expect(parseBoolean("No")).toBe(false);
    expect(parseBoolean("false")).toBe(false);
  });

  test("anything else is undefined", () => {
    for (const bad of ["", "y", "n", "1", "0", "on", "off", "maybe"]) expect(parseBoolean(bad)).toBeUndefined();
  });
});

import { describe, expect, test } from "bun:test";
import { splitList, tomlValueToText } from "../../../../src/global/config/value-text.ts";

describe("splitList", () => {
  test("commas and white space separate, empty elements vanish", () => {
    expect(splitList("a, b,c  d\te\n f,,  ,g")).toEqual(["a", "b", "c", "d", "e", "f", "g"]);
    expect(splitList("")).toEqual([]);
    expect(splitList(" , ")).toEqual([]);
  });

  test("a {...} group stays one element, braces kept", () => {
    expect(splitList("check_policy_service { inet:127.0.0.1:9998, timeout=10s }, permit")).toEqual([
      "check_policy_service",
      "{ inet:127.0.0.1:9998, timeout=10s }",
      "permit",
    ]);
  });

  test("nested braces and a group glued to a word", () => {
    expect(splitList("x{a {b, c} d},y")).toEqual(["x{a {b, c} d}", "y"]);
  });

  test("a stray closing brace does not open a group", () => {
    expect(splitList("a } b")).toEqual(["a", "}", "b"]);
  });
});

describe("tomlValueToText", () => {
  test("strings as written, numbers in decimal, booleans as yes/no", () => {
    expect(tomlValueToText("mail.example.com")).toBe("mail.example.com");
    expect(tomlValueToText(10240000)).toBe("10240000");
    expect(tomlValueToText(12345678901234567890n)).toBe("12345678901234567890");
    expect(tomlValueToText(true)).toBe("yes");
    expect(tomlValueToText(false)).toBe("no");
  });

  test("arrays join with ', ' (nested ones flatten)", () => {
    expect(tomlValueToText(["127.0.0.0/8", "[::1]/128"])).toBe("127.0.0.0/8, [::1]/128");
    expect(tomlValueToText([])).toBe("");
    expect(tomlValueToText([1, [2, 3]])).toBe("1, 2, 3");
  });

  test("tables, dates and arrays holding them have no parameter text", () => {
    expect(tomlValueToText({ a: 1 })).toBeUndefined();
    expect(tomlValueToText(new Date(0))).toBeUndefined();
    expect(tomlValueToText(["a", { b: 1 }])).toBeUndefined();
  });
});

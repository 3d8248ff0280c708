import { describe, expect, test } from "bun:test";
import { getopt, GetoptError } from "../../../src/util/getopt.ts";

// sendmail's option string in Postfix 3.7 (subset that matters here)
const SENDMAIL = "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx";

describe("getopt", () => {
  test("bundled flags: -ti is -t and -i", () => {
    expect(getopt(["-ti"], SENDMAIL)).toEqual({ options: [["t", undefined], ["i", undefined]], operands: [] });
  });

  test("an argument glued to its letter: -fuser@x", () => {
    expect(getopt(["-fuser@example.com", "rcpt@example.org"], SENDMAIL)).toEqual({
      options: [["f", "user@example.com"]],
      operands: ["rcpt@example.org"],
    });
  });

  test("an argument in the next word, also when it is empty: -f ''", () => {
    expect(getopt(["-f", "", "-F", "Full Name", "rcpt"], SENDMAIL)).toEqual({
      options: [["f", ""], ["F", "Full Name"]],
      operands: ["rcpt"],
    });
  });

  test("flags before an option with an argument share one word: -tif sender", () => {
    expect(getopt(["-tif", "sender@x"], SENDMAIL).options).toEqual([["t", undefined], ["i", undefined], ["f", "sender@x"]]);
  });

  test("an argument that starts with '-' is still the argument", () => {
    expect(getopt(["-f", "-weird", "-t"], SENDMAIL).options).toEqual([["f", "-weird"], ["t", undefined]]);
  });

  test("-- ends the options; what follows is an operand even if it looks like one", () => {
    expect(getopt(["-t", "--", "-i", "rcpt"], SENDMAIL)).toEqual({ options: [["t", undefined]], operands: ["-i", "rcpt"] });
  });

  test("the first operand ends the options (no GNU permutation)", () => {
    expect(getopt(["rcpt", "-t"], SENDMAIL)).toEqual({ options: [], operands: ["rcpt", "-t"] });
  });

  test("a lone '-' is an operand", () => {
    expect(getopt(["-i", "-", "x"], SENDMAIL)).toEqual({ options: [["i", undefined]], operands: ["-", "x"] });
  });

  test("options are returned in the order given, repeats kept", () => {
    expect(getopt(["-oi", "-oem", "-N", "success,delay"], SENDMAIL).options).toEqual([
      ["o", "i"],
      ["o", "em"],
      ["N", "success,delay"],
    ]);
  });

  test("a missing argument throws with getopt's wording and the letter", () => {
    let err: unknown;
    try {
      getopt(["-t", "-f"], SENDMAIL);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(GetoptError);
    expect((err as GetoptError).message).toBe("option requires an argument -- 'f'");
    expect((err as GetoptError).option).toBe("f");
  });

  test("an unknown letter throws, also inside a bundle", () => {
    expect(() => getopt(["-tZ"], SENDMAIL)).toThrow("invalid option -- 'Z'");
    expect(() => getopt(["-Z"], "ab")).toThrow(GetoptError);
  });

  test("':' in the spec is not an option letter", () => {
    expect(() => getopt(["-:"], "a:")).toThrow("invalid option -- ':'");
  });

  test("'#' works as an option letter (postconf -#)", () => {
    expect(getopt(["-#", "name"], "c:#")).toEqual({ options: [["#", undefined]], operands: ["name"] });
  });

  test("no arguments", () => {
    expect(getopt([], SENDMAIL)).toEqual({ options: [], operands: [] });
  });
});

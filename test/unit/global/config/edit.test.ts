import { describe, expect, test } from "bun:test";
import { parse } from "smol-toml";
import { commentOutValue, removeValue, setValue, tomlValueFor } from "../../../../src/global/config/edit.ts";
import { ConfigError } from "../../../../src/global/config/source.ts";
import { editCases, type EditCase } from "../../../helpers/golden.ts";

/** What postconf does with one case: each argument in turn, as editFile() applies them. */
function applyCase(c: EditCase): string {
  let text = c.input;
  for (const arg of c.args) {
    if (c.option === "-e") {
      const eq = arg.indexOf("=");
      text = setValue(text, arg.slice(0, eq).trim(), arg.slice(eq + 1).trim());
    } else {
      text = (c.option === "-X" ? removeValue(text, arg) : commentOutValue(text, arg)) ?? text;
    }
  }
  return text;
}

describe("postconf edits: golden files (test/golden/postconf-edit)", () => {
  const cases = editCases();

  test("the case set covers -e, -X and -#", () => {
    expect(new Set(cases.map((c) => c.option))).toEqual(new Set(["-e", "-X", "-#"]));
    expect(cases.length).toBeGreaterThanOrEqual(10);
  });

  for (const c of cases) {
    test(`${c.name} (${c.option})`, () => {
      parse(c.input); // the input is valid TOML
      const out = applyCase(c);
      expect(out).toBe(c.expected);
      parse(out);
    });
  }
});

describe("postconf edits: details", () => {
  test("an unchanged name is found only by its full path", () => {
    const text = 'smtpd_banner = "a"\n[services.smtp]\nsmtpd_banner = "b"\n';
    expect(setValue(text, "smtpd_banner", "c")).toBe('smtpd_banner = "c"\n[services.smtp]\nsmtpd_banner = "b"\n');
    expect(setValue(text, "services.smtp.smtpd_banner", "c")).toBe('smtpd_banner = "a"\n[services.smtp]\nsmtpd_banner = "c"\n');
  });

  test("a file without a final newline gets one", () => {
    expect(setValue('a_b = "x"', "myhostname", "h")).toBe('a_b = "x"\nmyhostname = "h"\n');
  });

  test("an edit that would break the file is refused with a ConfigError", () => {
    // [services] holds an inline table for smtp, so a [services.smtp] table cannot be added
    const text = "[services]\nsmtp = { listen = \"25\" }\n";
    expect(() => setValue(text, "services.smtp.process_limit", "3")).toThrow(ConfigError);
    expect(() => setValue(text, "services.smtp.process_limit", "3")).toThrow("the edit would make the file invalid");
  });

  test("removing or commenting a name that is not there returns undefined", () => {
    expect(removeValue("a = 1\n", "b")).toBeUndefined();
    expect(commentOutValue("a = 1\n", "b")).toBeUndefined();
    expect(removeValue("a = 1\n", "a")).toBe("");
  });

  test("TOML text for values: typed by the parameter, strings otherwise", () => {
    expect(tomlValueFor("message_size_limit", "100")).toBe("100");
    expect(tomlValueFor("message_size_limit", "99999999999999999999")).toBe('"99999999999999999999"');
    expect(tomlValueFor("smtputf8_enable", "yes")).toBe("true");
    expect(tomlValueFor("smtputf8_enable", "sometimes")).toBe('"sometimes"');
    expect(tomlValueFor("myhostname", "42")).toBe('"42"');
    expect(tomlValueFor("unknown_thing", "yes")).toBe('"yes"');
    expect(tomlValueFor("services.smtp.listen", "25")).toBe('"25"');
    expect(tomlValueFor("services.smtp.listen", "a:25,b:25 c:25")).toBe('["a:25", "b:25", "c:25"]');
    expect(tomlValueFor("services.smtp.process_limit", "7")).toBe("7");
    expect(tomlValueFor("services.smtp.enable", "no")).toBe("false");
    expect(tomlValueFor("services.smtp.message_size_limit", "5")).toBe("5");
    expect(tomlValueFor("services.smtp.role", "smtpd")).toBe('"smtpd"');
  });

  test("control characters and quotes survive a round trip through TOML", () => {
    const value = 'tab\there "q" back\\slash';
    const out = setValue("", "smtpd_banner", value);
    expect((parse(out) as Record<string, string>).smtpd_banner).toBe(value);
  });
});

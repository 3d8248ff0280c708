/**
 * Postfix's db_common templates: what %s %u %d %1-%9 %S %U %D %% give in a
 * query and in a result, which keys are not looked up at all, quoting of
 * substitutions only, and the domain list.
 */
import { describe, expect, test } from "bun:test";
import { TemplateContext, TemplateError, parseDomainList } from "../../../../src/global/tables/query-template.ts";

function ctx(query: string, result = "%s"): TemplateContext {
  const c = new TemplateContext();
  c.parse(query, true);
  c.parse(result, false);
  return c;
}

describe("query templates", () => {
  test("%s %u %d %% of a key, each substitution quoted and nothing else", () => {
    const q = (s: string) => `<${s}>`;
    expect(ctx("s=%s u=%u d=%d 100%%").expand("s=%s u=%u d=%d 100%%", "user@example.com", undefined, q)).toBe("s=<user@example.com> u=<user> d=<example.com> 100%");
  });
  test("%u of a key without a domain is the whole key; %d means such a key is not looked up", () => {
    expect(ctx("%u").expand("%u", "user")).toBe("user");
    expect(ctx("%u@%d").expand("%u@%d", "user")).toBeUndefined();
    expect(ctx("%d").expand("%d", "user@")).toBeUndefined();
  });
  test("%u of a key with an empty local part is not looked up; the empty key never", () => {
    expect(ctx("%u").expand("%u", "@example.com")).toBeUndefined();
    expect(ctx("%s").expand("%s", "")).toBeUndefined();
  });
  test("%1-%9 count the domain's labels from the right; too few or empty ones mean no lookup", () => {
    const c = ctx("dc=%2,dc=%1");
    expect(c.expand("dc=%2,dc=%1", "a@mail.example.com")).toBe("dc=example,dc=com");
    expect(c.expand("dc=%2,dc=%1", "a@com")).toBeUndefined();
    expect(c.expand("dc=%2,dc=%1", "a@.com")).toBeUndefined();
    expect(c.expand("dc=%2,dc=%1", "a")).toBeUndefined();
  });
  test("an unknown % sequence is refused when the template is read", () => {
    expect(() => new TemplateContext().parse("%x", true)).toThrow(TemplateError);
    expect(() => new TemplateContext().parse("%s%", true)).toThrow(TemplateError);
  });
});

describe("result templates", () => {
  test("lower case is the value, upper case (and %1-%9) the key", () => {
    const c = ctx("%s", "%s|%u|%d|%S|%U|%D");
    expect(c.expand("%s|%u|%d|%S|%U|%D", "x@y.org", "k@d.net")).toBe("x@y.org|x|y.org|k@d.net|k|d.net");
  });
  test("a value without the parts the result needs is skipped", () => {
    const c = ctx("%s", "%u@%d");
    expect(c.expand("%u@%d", "plain", "k@d.net")).toBeUndefined();
    expect(c.expand("%u@%d", "x@y.org", "k@d.net")).toBe("x@y.org");
  });
});

describe("domain", () => {
  test("only keys in the listed domains, in any letter case; never a key without a local part", async () => {
    const c = new TemplateContext();
    c.domains = parseDomainList("example.com, Example.ORG");
    expect(await c.domainAllows("a@EXAMPLE.com")).toBe(true);
    expect(await c.domainAllows("a@example.org")).toBe(true);
    expect(await c.domainAllows("a@sub.example.com")).toBe(false);
    expect(await c.domainAllows("@example.com")).toBe(false);
    expect(await c.domainAllows("a")).toBe(false);
    expect(parseDomainList("  ")).toBeUndefined();
  });

  test("a Postfix string list: !name, and type:table entries asked through the lookup", async () => {
    const c = new TemplateContext();
    c.domains = parseDomainList("!Not.Example.com, example.com, inline:{ hosted.example=yes }");
    const lookup = async (table: string, key: string) => (table.startsWith("inline:") && key === "hosted.example" ? "yes" : undefined);
    expect(await c.domainAllows("a@not.example.com", lookup)).toBe(false);
    expect(await c.domainAllows("a@example.com", lookup)).toBe(true);
    expect(await c.domainAllows("a@hosted.example", lookup)).toBe(true);
    expect(await c.domainAllows("a@other.example", lookup)).toBe(false);
  });
});

/**
 * The query and result templates shared by sqlite:, mysql: and pgsql:
 * (Postfix's db_common.c): which keys fill a template, what each %x gives,
 * result_format, the domain list, expansion_limit and the legacy keys.
 */
import { describe, expect, test } from "bun:test";
import { DbTemplates, TableSettings, parseSettingsText } from "../../../../src/global/tables/db-common.ts";
import { TableError } from "../../../../src/global/tables/table.ts";

const templates = (text: string) => new DbTemplates(new TableSettings("mysql:/x.cf", "/x.cf", parseSettingsText(text)));
const q = (s: string) => `[${s}]`;

describe("query template", () => {
  test("%s %u %d %1 %2 %% with quoting of each value", () => {
    const t = templates("query = %s|%u|%d|%1|%2|%%|%S|%U|%D");
    expect(t.expandQuery("joe@mail.example.com", q)).toBe("[joe@mail.example.com]|[joe]|[mail.example.com]|[com]|[example]|%|[joe@mail.example.com]|[joe]|[mail.example.com]");
  });

  test("%u is the whole key without @; %d needs a domain; an empty local part suppresses %u", () => {
    expect(templates("query = %u").expandQuery("joe", q)).toBe("[joe]");
    expect(templates("query = %d").expandQuery("joe", q)).toBeUndefined();
    expect(templates("query = %d").expandQuery("joe@", q)).toBeUndefined();
    expect(templates("query = %u").expandQuery("@example.com", q)).toBeUndefined();
    expect(templates("query = %s").expandQuery("@example.com", q)).toBe("[@example.com]");
  });

  test("%N needs N labels, none of them empty", () => {
    expect(templates("query = %3").expandQuery("a@example.com", q)).toBeUndefined();
    expect(templates("query = %2").expandQuery("a@x..com", q)).toBeUndefined();
    expect(templates("query = %1").expandQuery("a@x..com", q)).toBe("[com]");
  });

  test("the empty key is never looked up", () => {
    expect(templates("query = %s").expandQuery("", q)).toBeUndefined();
  });

  test("an unknown %x is an error", () => {
    expect(() => templates("query = SELECT '%x'")).toThrow(TableError);
    expect(() => templates("query = %s\nresult_format = %z")).toThrow("invalid result template");
  });

  test("the legacy keys make Postfix's query", () => {
    const t = templates("table = postfix_alias\nselect_field = destination\nwhere_field = alias\nadditional_conditions = and type = 'x'");
    expect(t.query).toBe("SELECT destination FROM postfix_alias WHERE alias='%s' and type = 'x'");
    expect(() => templates("table = t\nselect_field = v")).toThrow('"where_field"');
  });
});

describe("result_format and expansion_limit", () => {
  test("values of all rows are joined with commas; null and empty values are skipped", () => {
    expect(templates("query = %s").formatResults("k", [["a", null], ["", "b"], ["c"]])).toBe("a,b,c");
    expect(templates("query = %s").formatResults("k", [[null]])).toBeUndefined();
  });

  test("lower case takes the value's parts, upper case and digits the key's", () => {
    const t = templates("query = %s\nresult_format = %u+%d=%U@%D/%1");
    expect(t.formatResults("k@ex.org", [["v@dom"], ["noat"]])).toBe("v+dom=k@ex.org/org");
    expect(templates("query = %s\nresult_format = smtp:[%s]").formatResults("k", [["mx.example"]])).toBe("smtp:[mx.example]");
  });

  test("more values than expansion_limit is a temporary error", () => {
    const t = templates("query = %s\nexpansion_limit = 2");
    expect(t.formatResults("k", [["a"], ["b"]])).toBe("a,b");
    expect(() => t.formatResults("k", [["a"], ["b"], ["c"]])).toThrow(TableError);
  });
});

describe("domain", () => {
  test("only user@listed-domain keys are looked up", async () => {
    const t = templates("query = %s\ndomain = example.com, !bad.example.com, Example.ORG");
    expect(await t.domainAllows("joe@example.com")).toBe(true);
    expect(await t.domainAllows("joe@example.org")).toBe(true);
    expect(await t.domainAllows("joe@bad.example.com")).toBe(false);
    expect(await t.domainAllows("joe@other.net")).toBe(false);
    expect(await t.domainAllows("joe")).toBe(false);
    expect(await t.domainAllows("@example.com")).toBe(false);
  });

  test("a type:table in the list is looked up", async () => {
    const t = templates("query = %s\ndomain = inline:{ tabled.example=yes }");
    expect(await t.domainAllows("joe@tabled.example")).toBe(true);
    expect(await t.domainAllows("joe@example.com")).toBe(false);
  });
});

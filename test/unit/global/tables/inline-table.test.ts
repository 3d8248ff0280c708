/**
 * inline: and static: specifics, matching what Postfix 3.7's postmap
 * accepts and answers for the same specifications.
 */
import { describe, expect, test } from "bun:test";
import { FailTable, InlineTable, StaticTable } from "../../../../src/global/tables/inline-table.ts";
import { TableError, type Table } from "../../../../src/global/tables/table.ts";

describe("inline:", () => {
  test("bare and braced elements, commas or spaces between them", async () => {
    const t = new InlineTable("inline", "{ Foo=Bar a=1;b=2 { baz = text with  spaces }, qux= }");
    expect(await t.lookup("foo")).toBe("Bar");
    expect(await t.lookup("FOO")).toBe("Bar");
    expect(await t.lookup("a")).toBe("1;b=2");
    expect(await t.lookup("baz")).toBe("text with  spaces");
    expect(await t.lookup("qux")).toBe("");
  });
  test("the last of duplicate keys wins", async () => {
    expect(await new InlineTable("inline", "{a=1,a=2}").lookup("a")).toBe("2");
  });
  test("Postfix's syntax errors", () => {
    expect(() => new InlineTable("inline:{}", "{}")).toThrow('bad syntax: "inline:{}"');
    expect(() => new InlineTable("inline:{a=1}junk", "{a=1}junk")).toThrow("bad syntax");
    expect(() => new InlineTable("inline:{a=1, b=2", "{a=1, b=2")).toThrow("bad syntax");
    expect(() => new InlineTable("inline:{ bar = baz }", "{ bar = baz }")).toThrow("missing '=' after attribute name");
    expect(() => new InlineTable("inline:{ {k x = y} }", "{ {k x = y} }")).toThrow("missing '=' after attribute name");
    expect(() => new InlineTable("inline:{a}", "{a}")).toThrow(TableError);
  });
  test("postmap -f keeps the case", async () => {
    const t = new InlineTable("inline", "{Foo=Bar}", { fold: false });
    expect(await t.lookup("foo")).toBeUndefined();
    expect(await t.lookup("Foo")).toBe("Bar");
  });
  test("entries list every pair", async () => {
    const seen: Array<[string, string]> = [];
    for await (const e of new InlineTable("inline", "{a=1, b=2}").entries()) seen.push(e);
    expect(seen).toEqual([["a", "1"], ["b", "2"]]);
  });
});

describe("static: and fail:", () => {
  test("static answers every key; braces keep inner spaces", async () => {
    expect(await new StaticTable("static:x", "OK").lookup("anything")).toBe("OK");
    expect(await new StaticTable("static:{ a  b }", "{ a  b }").lookup("k")).toBe("a  b");
  });
  test("static cannot list its entries", () => {
    expect((new StaticTable("static:x", "x") as Table).entries).toBeUndefined();
  });
  test("fail: fails every lookup", async () => {
    await expect(new FailTable("fail:x").lookup("k")).rejects.toBeInstanceOf(TableError);
  });
});

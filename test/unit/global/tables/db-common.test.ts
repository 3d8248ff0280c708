/**
 * What sqlite:, mysql:, pgsql: and ldap: share (Postfix's db_common.c and
 * cfg_parser.c): which keys fill a template, what each %x gives,
 * result_format, the domain list, expansion_limit and the legacy keys; the
 * `name = value` files, read before the privilege drop, and postern check's
 * warning about a password other users can read.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configFileWarnings } from "../../../../src/global/config/file-checks.ts";
import { DbTemplates, TableSettings, parseSettingsText, preloadTableFiles, readTableSettings, settingsFilesOf, templateUsesKey } from "../../../../src/global/tables/db-common.ts";
import { TableError } from "../../../../src/global/tables/table.ts";
import { configIn } from "../../../helpers/config.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-db-common-");
afterAll(() => removeDir(dir));

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

  test("a trailing % is an error too", () => {
    expect(() => templates("query = %s%")).toThrow("invalid query template");
  });

  test("more key templates (ldap:'s search_base): their needs add up, each is quoted its own way", () => {
    const settings = new TableSettings("ldap:/x.cf", "/x.cf", parseSettingsText("result_filter = %s"));
    const t = new DbTemplates(settings, "(uid=%u)", { keyTemplates: ["dc=%2,dc=%1"], resultFormat: "<%s>" });
    expect(t.expandKeyTemplate("dc=%2,dc=%1", "a(b@example.com", (v) => `{${v}}`)).toBe("dc={example},dc={com}");
    expect(t.expandQuery("a(b@example.com", (v) => v.replace("(", "\\28"))).toBe("(uid=a\\28b)");
    // the base needs two labels: a key with one is looked up by neither template
    expect(t.expandQuery("a@com", q)).toBeUndefined();
    expect(t.formatValue("k", "v")).toBe("<v>");
    expect(() => t.expandKeyTemplate("%s", "a@example.com", q)).toThrow("not a key template");
    expect(() => new DbTemplates(settings, "%s", { keyTemplates: ["ou=%x"] })).toThrow("invalid query template: ou=%x");
  });

  test("templateUsesKey: any % but %%", () => {
    expect(templateUsesKey("ou=people,dc=example")).toBe(false);
    expect(templateUsesKey("100%% (objectClass=*)")).toBe(false);
    expect(templateUsesKey("dc=%1")).toBe(true);
    expect(templateUsesKey("%%%s")).toBe(true);
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

  test("formatValue: one value, skipped when it lacks a part the format uses", () => {
    const t = templates("query = %s\nresult_format = %u@%d");
    expect(t.formatValue("k@d.net", "plain")).toBeUndefined();
    expect(t.formatValue("k@d.net", "x@y.org")).toBe("x@y.org");
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

describe("table files read before the privilege drop", () => {
  test("the files of mysql: and pgsql: tables named in parameters and service overrides are found", () => {
    const config = configIn(dir, 'virtual_alias_maps = "proxy:mysql:/etc/a.cf, hash:/etc/x"\nrelay_domains = "pgsql:/etc/b.cf"\n[services.sub]\nlisten = "2525"\nsmtpd_recipient_restrictions = "check_recipient_access mysql:/etc/c.cf"\n');
    expect(settingsFilesOf(config).sort((a, b) => a.path.localeCompare(b.path))).toEqual([
      { param: "virtual_alias_maps", type: "mysql", path: "/etc/a.cf" },
      { param: "relay_domains", type: "pgsql", path: "/etc/b.cf" },
      { param: "services.sub.smtpd_recipient_restrictions", type: "mysql", path: "/etc/c.cf" },
    ]);
  });

  test("ldap: files too, behind proxy: and in a service's overrides", () => {
    const c = configIn(
      dir,
      `virtual_alias_maps = "hash:/etc/x, proxy:ldap:/etc/postern/a.cf"\nrelay_recipient_maps = "ldap:/etc/postern/b.cf"\n` +
        `[services.sub]\nlisten = "2525"\nsmtpd_recipient_restrictions = "check_recipient_access ldap:/etc/postern/c.cf"\n`,
    );
    expect(settingsFilesOf(c).map((f) => [f.param, f.type, f.path]).sort()).toEqual([
      ["relay_recipient_maps", "ldap", "/etc/postern/b.cf"],
      ["services.sub.smtpd_recipient_restrictions", "ldap", "/etc/postern/c.cf"],
      ["virtual_alias_maps", "ldap", "/etc/postern/a.cf"],
    ]);
  });

  test("name = value pairs with comments and continuation lines; other text is reported", () => {
    const warnings: string[] = [];
    const v = parseSettingsText("# c\nserver_host = a\n  b\nbind_pw=se cret \nnonsense\n", (line, m) => warnings.push(`${line}: ${m}`));
    expect([...v]).toEqual([
      ["server_host", "a  b"],
      ["bind_pw", "se cret"],
    ]);
    expect(warnings).toEqual(['5: ignoring text without "name = value"']);
  });

  test("postern check warns about a password (ldap:'s bind_pw, mysql:'s password) other users can read, and only then", () => {
    const file = (name: string, text: string, mode: number) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      chmodSync(path, mode);
      return path;
    };
    const open = file("open.cf", "server_host = x\nbind_pw = secret\n", 0o644);
    const closed = file("closed.cf", "server_host = x\nbind_pw = secret\n", 0o640);
    const nopw = file("nopw.cf", "server_host = x\nbind_pw =\n", 0o644);
    const sql = file("sql.cf", "hosts = x\npassword = secret\n", 0o644);
    const c = configIn(dir, `virtual_alias_maps = "ldap:${open}, ldap:${closed}, ldap:${nopw}, mysql:${sql}"\n`);
    const w = configFileWarnings(c).filter((x) => x.includes("password"));
    expect(w).toHaveLength(2);
    expect(w[0]).toContain(`ldap table ${open} holds a password and other users can read it`);
    expect(w[1]).toContain(`mysql table ${sql} holds a password and other users can read it`);
  });

  test("a preloaded copy serves when the file can no longer be read", () => {
    const cf = join(dir, "gone.cf");
    writeFileSync(cf, "hosts = db.example\npassword = secret\n", { mode: 0o600 });
    const config = configIn(dir, `virtual_alias_maps = "mysql:${cf}"\n`);
    expect(preloadTableFiles(config)).toEqual([]);
    // as if we had dropped privileges: the file is unreadable (root ignores modes, so remove it)
    chmodSync(cf, 0);
    removeDir(cf);
    expect(readTableSettings(`mysql:${cf}`, cf).value("password")).toBe("secret");
    expect(() => readTableSettings(`mysql:${join(dir, "never.cf")}`, join(dir, "never.cf"))).toThrow(TableError);
    expect(preloadTableFiles(configIn(dir, `virtual_alias_maps = "mysql:${join(dir, "never.cf")}"\n`))).toEqual([`virtual_alias_maps: cannot read ${join(dir, "never.cf")}: No such file or directory`]);
  });
});

/**
 * The settings files of database tables: which the configuration names,
 * their `name = value` pairs, and `postern check`'s warning about a file
 * with a password that other users can read.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configFileWarnings } from "../../../../src/global/config/file-checks.ts";
import { parseSettings, settingsFileText, settingsFilesOf } from "../../../../src/global/tables/settings-file.ts";
import { configIn } from "../../../helpers/config.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-settings-file-");
afterAll(() => removeDir(dir));

function file(name: string, text: string, mode: number): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

describe("settings files", () => {
  test("the ldap: tables a configuration names, behind proxy: and in a service's overrides too", () => {
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
    const v = parseSettings("# c\nserver_host = a\n  b\nbind_pw=se cret \nnonsense\n", (line, m) => warnings.push(`${line}: ${m}`));
    expect([...v]).toEqual([
      ["server_host", "a  b"],
      ["bind_pw", "se cret"],
    ]);
    expect(warnings).toEqual(['5: ignoring text without "name = value"']);
  });

  test("a missing file is an error naming it", () => {
    expect(() => settingsFileText(join(dir, "missing.cf"))).toThrow(`open ${join(dir, "missing.cf")}: No such file or directory`);
  });

  test("postern check warns about a password other users can read, and only then", () => {
    const open = file("open.cf", "server_host = x\nbind_pw = secret\n", 0o644);
    const closed = file("closed.cf", "server_host = x\nbind_pw = secret\n", 0o640);
    const nopw = file("nopw.cf", "server_host = x\nbind_pw =\n", 0o644);
    const c = configIn(dir, `virtual_alias_maps = "ldap:${open}, ldap:${closed}, ldap:${nopw}"\n`);
    const w = configFileWarnings(c).filter((x) => x.includes("password"));
    expect(w).toHaveLength(1);
    expect(w[0]).toContain(`${open} holds a password (bind_pw) and other users can read it`);
  });
});

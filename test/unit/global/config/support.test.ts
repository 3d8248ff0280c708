import { describe, expect, test } from "bun:test";
import { Config } from "../../../../src/global/config/config.ts";
import { configSourceFromText } from "../../../../src/global/config/source.ts";

/** The refusals validate() reports for a postern.toml text, as "line N: detail". */
function refusals(text: string): string[] {
  const config = new Config(configSourceFromText(text, "/etc/postern"));
  return config.validate().map((e) => `line ${e.line}: ${e.detail}`);
}

describe("settings that ask for something postern does not do", () => {
  test("a transport postern has no agent for, myorigin read from a file", () => {
    const r = refusals('default_transport = "maildrop"\nmyorigin = "/etc/mailname"\nrelay_transport = "smtp:[relay.example]:587"\nlocal_transport = "local:$myhostname"\n');
    expect(r).toHaveLength(2);
    expect(r[0]).toStartWith('line 1: default_transport = "maildrop": transport "maildrop" is not one postern has');
    expect(r[1]).toStartWith('line 2: myorigin = "/etc/mailname": postern does not read this value from a file');
  });

  test("values that ask for nothing: defaults, empty, a missing feature turned off", () => {
    expect(refusals('biff = "no"\ncontent_filter = ""\nalways_bcc = ""\nallow_min_user = "no"\nsmtpd_tls_ciphers = "medium"\nheader_checks = ""\nsmtp_tls_security_level = "encrypt"\nmydestination = "$myhostname, localhost"\n')).toEqual([]);
  });

  test("a table type postern lacks, wherever it is, and in a service override", () => {
    const r = refusals('alias_maps = "hash:/etc/aliases, ldap:/etc/postfix/ldap-aliases.cf"\n[services.sub]\nlisten = "2525"\nsmtpd_sender_restrictions = "check_sender_access pgsql:/etc/postfix/p.cf"\n');
    expect(r).toHaveLength(2);
    expect(r[0]).toContain('table type "ldap:" is not implemented by postern');
    expect(r[1]).toStartWith('line 4: services.sub.smtpd_sender_restrictions = "check_sender_access pgsql:/etc/postfix/p.cf": table type "pgsql:"');
  });
});

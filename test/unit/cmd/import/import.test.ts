import { describe, expect, test } from "bun:test";
import { parse as parseToml } from "smol-toml";
import { convert } from "../../../../src/cmd/import/convert.ts";
import { parseMainCf } from "../../../../src/cmd/import/main-cf.ts";
import { parseMasterCf } from "../../../../src/cmd/import/master-cf.ts";

describe("main.cf as Postfix reads it", () => {
  test("continuation lines, comments inside a value, the last assignment, a line without =", () => {
    const { items, problems } = parseMainCf("# head\nmynetworks = 10.0.0.0/8,\n# a comment inside\n    192.0.2.1\n\nrelayhost = a\nrelayhost = b\n  \nbogus line\n");
    const params = items.filter((i) => i.kind === "param");
    expect(params.map((p) => [p.name, p.value, p.line])).toEqual([
      ["mynetworks", "10.0.0.0/8,    192.0.2.1", 2],
      ["relayhost", "a", 6],
      ["relayhost", "b", 7],
    ]);
    // the comment met inside the value follows it
    expect(items.map((i) => i.kind)).toEqual(["comment", "param", "comment", "blank", "param", "param", "blank"]);
    expect(problems).toEqual([{ line: 9, message: `missing '=' after parameter name: "bogus line"` }]);
  });

  test("a continuation line before any parameter is ignored with a warning", () => {
    const { items, problems } = parseMainCf("   stray\nx = 1\n");
    expect(items).toHaveLength(1);
    expect(problems[0]!.line).toBe(1);
  });
});

describe("master.cf as master(8) reads it", () => {
  test("eight fields, -o name=value, -o { name = value with spaces }, -oname=value, other arguments", () => {
    const { entries, problems } = parseMasterCf(
      "submission inet n - y - - smtpd\n  -o syslog_name=postfix/submission\n  -o { smtpd_client_restrictions = permit_sasl_authenticated, reject }\n  -osmtpd_tls_security_level=encrypt -v\nmaildrop unix - n n - - pipe\n  flags=DRhu user=vmail argv=/usr/bin/maildrop -d ${recipient}\nshort inet n -\n",
    );
    expect(entries[0]).toMatchObject({ name: "submission", type: "inet", chroot: "y", maxproc: "-", command: "smtpd", args: ["-v"], line: 1 });
    expect(entries[0]!.overrides).toEqual([
      { name: "syslog_name", value: "postfix/submission", line: 2 },
      { name: "smtpd_client_restrictions", value: "permit_sasl_authenticated, reject", line: 3 },
      { name: "smtpd_tls_security_level", value: "encrypt", line: 4 },
    ]);
    expect(entries[1]!.args).toEqual(["flags=DRhu", "user=vmail", "argv=/usr/bin/maildrop", "-d", "${recipient}"]);
    expect(problems).toEqual([{ line: 7, message: "a service needs 8 fields (service, type, private, unpriv, chroot, wakeup, maxproc, command); found 4" }]);
  });
});

function run(main: string, master: string) {
  return convert({
    postfixDir: "/etc/postfix",
    mainPath: "/etc/postfix/main.cf",
    masterPath: "/etc/postfix/master.cf",
    main: parseMainCf(main).items,
    master: parseMasterCf(master).entries,
    configDir: "/etc/postern",
    readFile: () => "submission 587/tcp\n",
  });
}

describe("services", () => {
  test("submission: its -o settings as keys, $service_name filled in, postern's built-in overrides reset to main.cf's", () => {
    const c = run("smtpd_sasl_auth_enable = no\n", "smtp inet n - y - - smtpd\nsubmission inet n - y - 20 smtpd\n  -o syslog_name=postfix/$service_name\n  -o smtpd_tls_security_level=encrypt\n");
    expect(c.refusals).toEqual([]);
    const doc = parseToml(c.toml) as { services: Record<string, Record<string, string>> };
    expect(doc.services.submission).toEqual({
      listen: "587",
      role: "smtpd",
      process_limit: "20",
      syslog_name: "postfix/submission",
      smtpd_tls_security_level: "encrypt",
      // not in master.cf: Postfix would use main.cf's values, and so does postern now
      smtpd_sasl_auth_enable: "no",
      smtpd_tls_auth_only: "no",
      smtpd_reject_unlisted_recipient: "yes",
      smtpd_relay_restrictions: "${{$compatibility_level} <level {1} ? {} : {permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination}}",
      smtpd_recipient_restrictions: "",
    });
  });

  test("postscreen and overrides on built-in services are refused; a host:port service gets a plain name", () => {
    const c = run("", "smtp inet n - y - 1 postscreen\ncleanup unix n - y - 0 cleanup\n  -o header_checks=regexp:/etc/postfix/h\n127.0.0.1:10025 inet n - n - - smtpd\n  -o content_filter=\n");
    expect(c.refusals.map((r) => `${r.line}: ${r.message}`)).toEqual([
      '1: service "smtp" runs postscreen(8), which postern does not have; postern\'s inet services run smtpd only',
      "3: -o header_checks=regexp:/etc/postfix/h on the built-in cleanup service: postern has no per-service settings for its built-in roles; set it in main.cf if it should apply everywhere",
    ]);
    const doc = parseToml(c.toml) as { services: Record<string, Record<string, string>> };
    expect(doc.services["127-0-0-1-10025"]).toEqual({ listen: "127.0.0.1:10025", role: "smtpd", content_filter: "" });
  });

  test("a refusal inside a service override names the master.cf line", () => {
    const c = run("", "smtp inet n - n - - smtpd\n  -o smtpd_tls_security_level=dane\n");
    expect(c.refusals).toEqual([{ file: "/etc/postfix/master.cf", line: 2, subject: "services.smtp.smtpd_tls_security_level", message: 'services.smtp.smtpd_tls_security_level = "dane": unknown server TLS security level "dane"; use none, may or encrypt' }]);
  });
});

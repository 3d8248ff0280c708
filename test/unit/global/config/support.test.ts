import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Config } from "../../../../src/global/config/config.ts";
import { configSourceFromText } from "../../../../src/global/config/source.ts";

/** The refusals validate() reports for a postern.toml text, as "line N: detail". */
function refusals(text: string): string[] {
  const config = new Config(configSourceFromText(text, "/etc/postern"));
  return config.validate().map((e) => `line ${e.line}: ${e.detail}`);
}

describe("settings that ask for something postern does not do", () => {
  test("virtual(8): its settings are acted on; a relative virtual_mailbox_base or an unknown lock is refused", () => {
    const ok = 'virtual_transport = "virtual"\nvirtual_mailbox_base = "/var/mail/vhosts"\nvirtual_uid_maps = "static:5000"\nvirtual_gid_maps = "static:5000"\nvirtual_minimum_uid = 1000\nvirtual_mailbox_limit = 0\nvirtual_mailbox_lock = "flock"\n';
    expect(refusals(ok)).toEqual([]);
    const r = refusals('virtual_mailbox_base = "vhosts"\nvirtual_mailbox_lock = "fcntl, lockf"\n');
    expect(r).toEqual([
      'line 1: virtual_mailbox_base = "vhosts": do not specify relative pathname: "vhosts"; write the absolute directory',
      'line 2: virtual_mailbox_lock = "fcntl, lockf": unknown locking method "lockf"; use fcntl, flock or dotlock',
    ]);
  });

  test("mailbox_transport, fallback_transport and their _maps are acted on; a pass to local itself or to a transport postern lacks is refused", () => {
    const ok = 'mailbox_transport = "lmtp:unix:private/dovecot-lmtp"\nfallback_transport = "lmtp:inet:127.0.0.1:24"\nmailbox_transport_maps = "inline:{a = lmtp}"\nfallback_transport_maps = "inline:{b = smtp:[x.example]}"\n';
    expect(refusals(ok)).toEqual([]);
    const r = refusals('mailbox_transport = "local:$myhostname"\nfallback_transport = "cyrus"\n').sort();
    expect(r).toHaveLength(2);
    expect(r[0]).toStartWith('line 1: mailbox_transport = "local:$myhostname": local delivery cannot pass mail to the local transport itself');
    expect(r[1]).toStartWith('line 2: fallback_transport = "cyrus": transport "cyrus" is not one postern has');
  });

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
    const r = refusals('alias_maps = "hash:/etc/aliases, memcache:/etc/postfix/memcache-aliases.cf"\n[services.sub]\nlisten = "2525"\nsmtpd_sender_restrictions = "check_sender_access mongodb:/etc/postfix/p.cf"\n');
    expect(r).toHaveLength(2);
    expect(r[0]).toContain('table type "memcache:" is not implemented by postern');
    expect(r[1]).toStartWith('line 4: services.sub.smtpd_sender_restrictions = "check_sender_access mongodb:/etc/postfix/p.cf": table type "mongodb:"');
  });
});

describe("interface lists", () => {
  test("inet_interfaces and proxy_interfaces take addresses, all or loopback-only; a host name is refused at check, not at start", () => {
    expect(refusals('inet_interfaces = "all"\nproxy_interfaces = "192.0.2.1, [2001:db8::1]"\n')).toEqual([]);
    expect(refusals('inet_interfaces = "loopback-only"\n')).toEqual([]);
    expect(refusals('inet_interfaces = "127.0.0.1, [::1], localhost"\n')).toEqual([]);
    const r = refusals('inet_interfaces = "127.0.0.1, mail.example.com"\nproxy_interfaces = "nat.example.com"\n');
    expect(r).toEqual([
      'line 1: inet_interfaces = "127.0.0.1, mail.example.com": host names are not supported here ("mail.example.com"); write the addresses they stand for, or all / loopback-only',
      'line 2: proxy_interfaces = "nat.example.com": host names are not supported here ("nat.example.com"); write the addresses they stand for, or all / loopback-only',
    ]);
  });
});

describe("restriction lists", () => {
  test("an unknown restriction, a missing argument; a restriction class is a restriction", () => {
    const r = refusals('smtpd_restriction_classes = "mine"\nmine = "permit_mynetworks, reject"\nsmtpd_recipient_restrictions = "mine, check_policy_service unix:private/policy, check_policy_service { inet:127.0.0.1:9998, timeout=10s }"\nsmtpd_sender_restrictions = "reject_rbl_client"\nsmtpd_client_restrictions = "permit_mynetworks, reject_unverified_sender_bogus"\n');
    expect(r).toEqual([
      'line 5: smtpd_client_restrictions = "permit_mynetworks, reject_unverified_sender_bogus": restriction "reject_unverified_sender_bogus" is not one postern implements (nor a class in smtpd_restriction_classes); remove it',
      'line 4: smtpd_sender_restrictions = "reject_rbl_client": restriction reject_rbl_client needs an argument; add it or remove the restriction',
    ]);
  });

  test("an access table that answers FILTER, REDIRECT or BCC passes, inline or in its source file; a FILTER to a missing transport is refused", () => {
    const dir = mkdtempSync(join(tmpdir(), "postern-support-"));
    try {
      writeFileSync(join(dir, "access"), "# comment\nok.example OK\nscan.example FILTER smtp:[127.0.0.1]:10025\n");
      writeFileSync(join(dir, "re"), "/^bcc@/ BCC archive@example.com\n");
      const r = refusals(`smtpd_sender_restrictions = "check_sender_access hash:${dir}/access"\nsmtpd_recipient_restrictions = "check_recipient_access regexp:${dir}/re"\nsmtpd_client_restrictions = "check_client_access inline:{{1.2.3.4 = REDIRECT x@y.test}}"\nsmtpd_helo_restrictions = "check_helo_access inline:{h.example = OK}"\n`);
      expect(r).toEqual([]);
      expect(refusals('smtpd_recipient_restrictions = "check_recipient_access inline:{{scan@x.example = FILTER amavis:[127.0.0.1]:10024}}"\n')).toEqual([
        'line 1: smtpd_recipient_restrictions = "check_recipient_access inline:{{scan@x.example = FILTER amavis:[127.0.0.1]:10...": access table inline:{{scan@x.example = FILTER amavis:[127.0.0.1]:10024}} answers FILTER amavis:[127.0.0.1]:10024, a transport postern does not have; change the table or define the transport as a pipe service',
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test("content_filter: a transport postern lacks is refused; smtp, lmtp and a pipe service pass", () => {
  expect(refusals('content_filter = "nosuch:[127.0.0.1]:10024"\n')).toEqual([
    'line 1: content_filter = "nosuch:[127.0.0.1]:10024": transport "nosuch" is not one postern has (local, virtual, smtp, relay, lmtp, error, discard, retry); define it as a [services.nosuch] table with role = "pipe", or name another transport',
  ]);
  expect(refusals('content_filter = "smtp:[127.0.0.1]:10024"\n')).toEqual([]);
  expect(refusals('content_filter = "lmtp:unix:private/filter"\n')).toEqual([]);
});

test("transport_maps: a table that routes mail to a transport postern lacks (a pipe service) is refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "postern-support-"));
  try {
    writeFileSync(join(dir, "transport"), "example.com smtp:[192.0.2.1]\nlists.example.com mailman:\n.example.net :[192.0.2.2]\n");
    expect(refusals(`transport_maps = "hash:${dir}/transport"\n`)).toEqual([
      `line 1: transport_maps = "hash:${dir}/transport": table hash:${dir}/transport routes mail to transport "mailman" (line 2), which postern does not have (local, virtual, smtp, relay, lmtp, error, discard, retry); change the table or define the transport as a pipe service`,
    ]);
    expect(refusals('transport_maps = "inline:{example.org = relay:[192.0.2.3]}"\n')).toEqual([]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a [services.NAME] pipe service is a transport: transport_maps and *_transport may name it; an unknown name is still refused", () => {
  const dir = mkdtempSync(join(tmpdir(), "postern-support-"));
  try {
    writeFileSync(join(dir, "transport"), "lists.example.com mylist:\nother.example.com mailman:\n");
    const pipe = '\n[services.mylist]\nrole = "pipe"\nuser = "nobody"\nargv = "/usr/bin/list ${recipient}"\n';
    expect(refusals(`transport_maps = "inline:{lists.example.com = mylist:}"\ndefault_transport = "mylist"\nfallback_transport = "mylist"\n${pipe}`)).toEqual([]);
    expect(refusals(`transport_maps = "hash:${dir}/transport"\n${pipe}`)).toEqual([
      `line 1: transport_maps = "hash:${dir}/transport": table hash:${dir}/transport routes mail to transport "mailman" (line 2), which postern does not have (local, virtual, smtp, relay, lmtp, error, discard, retry, mylist); change the table or define the transport as a pipe service`,
    ]);
    expect(refusals('default_transport = "mylist"\n')[0]).toStartWith('line 1: default_transport = "mylist": transport "mylist" is not one postern has');
    // a disabled pipe service is no transport
    expect(refusals(`default_transport = "mylist"\n${pipe}enable = false\n`)[0]).toStartWith('line 1: default_transport = "mylist": transport "mylist" is not one postern has');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

describe("content checks and receive_override_options", () => {
  test("header and body checks are acted on; receive_override_options takes Postfix's four words only", () => {
    const ok =
      'header_checks = "regexp:/etc/postern/header_checks"\nbody_checks = "pcre:/etc/postern/body_checks"\nsmtp_header_checks = "regexp:/etc/postern/smtp_header"\nlmtp_body_checks = "regexp:/etc/postern/lmtp_body"\nreceive_override_options = "no_header_body_checks, no_address_mappings, no_unknown_recipient_checks, no_milters"\n[services.reinject]\nlisten = "10025"\nreceive_override_options = "no_header_body_checks"\n';
    expect(refusals(ok)).toEqual([]);
    expect(refusals('receive_override_options = "no_header_body_checks, no_spam"\n')).toEqual(['line 1: receive_override_options = "no_header_body_checks, no_spam": unknown receive_override_options value "no_spam" (known: no_unknown_recipient_checks, no_address_mappings, no_header_body_checks, no_milters)']);
  });
});

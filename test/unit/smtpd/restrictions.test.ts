import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { openTable, openTableLoaded } from "../../../src/global/tables/open-table.ts";
import type { DnsQuerier, DnsResult } from "../../../src/global/dns/index.ts";
import { formatReply } from "../../../src/smtpd/protocol/reply.ts";
import type { AcceptedRecipient, PolicyResult, SessionView } from "../../../src/smtpd/protocol/types.ts";
import { Anvil } from "../../../src/smtpd/anvil.ts";
import { SmtpdPolicy } from "../../../src/smtpd/policy.ts";
import { hostMatcherFor } from "../../../src/smtpd/restrictions/host-list.ts";
import { resolveClientAddress as resolveRecipient } from "../../../src/smtpd/restrictions/recipient-checks.ts";
import { HOP_COUNTS, ROUTING_FORMS, exploit, routed } from "../../helpers/routing-forms.ts";

/** A zone for the stub resolver: "name TYPE" -> records, or a failure status. */
type Zone = Record<string, unknown[] | "nxdomain" | "nodata" | "servfail">;

function stubDns(zone: Zone): DnsQuerier & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    async query(name: string, type: string) {
      const key = `${name.toLowerCase().replace(/\.$/, "")} ${type}`;
      asked.push(key);
      const v = zone[key];
      if (v === undefined) {
        const exists = Object.keys(zone).some((k) => k.startsWith(`${name.toLowerCase()} `));
        return { status: exists ? "nodata" : "nxdomain" } as DnsResult<never>;
      }
      if (typeof v === "string") return { status: v } as DnsResult<never>;
      return { status: "ok", records: v, canonicalName: name, ttl: 60, authenticated: false, source: "dns" } as DnsResult<never>;
    },
  } as DnsQuerier & { asked: string[] };
}

const BASE: Record<string, string> = {
  myhostname: "mx.example.test",
  mydomain: "example.test",
  myorigin: "mx.example.test",
  mydestination: "mx.example.test, localhost",
  inet_interfaces: "127.0.0.1",
  mynetworks: "10.0.0.0/8",
  relay_domains: "relay.example",
  local_recipient_maps: "",
  alias_maps: "",
};

interface Setup {
  params?: Record<string, string>;
  client?: { address: string; name?: string };
  helo?: string;
  sender?: string;
  sasl?: string;
  dns?: Zone;
  pipelined?: boolean;
}

function policy(s: Setup = {}) {
  const config = defaultsOnlyConfig().withOverrides({ ...BASE, ...s.params });
  const client = { address: s.client?.address ?? "192.0.2.7", port: 1, name: s.client?.name ?? "unknown", reverseName: s.client?.name ?? "unknown", nameStatus: "ok" as const };
  const dns = stubDns(s.dns ?? {});
  const warnings: string[] = [];
  const view: SessionView = {
    client,
    helo: s.helo ?? "client.example.org",
    esmtp: true,
    protocol: "ESMTP",
    tls: undefined,
    sasl: s.sasl ? { method: "PLAIN", username: s.sasl } : undefined,
    sender: s.sender ?? "sender@example.org",
    mailParams: {},
    recipients: [],
    pipelined: s.pipelined ?? false,
    pipeliningAllowed: false,
  };
  const p = new SmtpdPolicy({
    config,
    service: "smtp",
    dns,
    mynetworks: hostMatcherFor(config, "mynetworks"),
    limitExceptions: hostMatcherFor(config, "smtpd_client_event_limit_exceptions"),
    anvil: new Anvil(60_000),
    names: { name: client.name, nameStatus: client.name === "unknown" ? "perm" : "ok", reverseName: client.name, reverseNameStatus: client.name === "unknown" ? "perm" : "ok" },
    warn: (t) => warnings.push(t),
    info: (t) => warnings.push(`info: ${t}`),
  });
  const rcpt = async (address: string): Promise<PolicyResult> => p.rcpt(view, { address, written: address } as AcceptedRecipient);
  return { p, view, rcpt, config, dns, warnings };
}

/** The reply line of a result, or "OK". */
const text = (r: PolicyResult) => (r.reject ? formatReply(r.reject).trimEnd() : "OK");

describe("relay control for a client outside mynetworks", () => {
  // the classic open-relay test list, in internal (unquoted) form
  const RELAY_FORMS = [
    "user@target.example",
    "user@TARGET.EXAMPLE.",
    "user%target.example@mx.example.test",
    "user%target.example@[127.0.0.1]",
    "user@target.example@mx.example.test", // "user@target.example"@mx.example.test after unquoting
    "user@target.example@[127.0.0.1]",
    "@mx.example.test:user@target.example",
    "@[127.0.0.1]:user@target.example",
    "@mx.example.test,@localhost:user@target.example",
    "target.example!user@mx.example.test",
    "target.example!user@[127.0.0.1]",
    "mx.example.test!target.example!user@mx.example.test",
    "target.example!user",
    "user%target.example",
    "user%target.example%mx.example.test",
    "user%target.example@localhost",
    "user@[192.0.2.99]",
    "user@sub.relay.example.other",
  ];
  for (const form of RELAY_FORMS) {
    test(`${form}: 454 4.7.1 Relay access denied (defer_unauth_destination)`, async () => {
      const { rcpt } = policy();
      expect(text(await rcpt(form))).toBe(`454 4.7.1 <${form}>: Relay access denied`);
    });
  }

  test("with reject_unauth_destination the refusal is 554 5.7.1", async () => {
    const { rcpt } = policy({ params: { smtpd_relay_restrictions: "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination" } });
    expect(text(await rcpt("user%target.example@mx.example.test"))).toBe("554 5.7.1 <user%target.example@mx.example.test>: Relay access denied");
  });

  test("our own domains and relay_domains (and their subdomains) are authorized destinations", async () => {
    const { rcpt } = policy();
    for (const a of ["user@mx.example.test", "user@localhost", "postmaster@[127.0.0.1]", "user@relay.example", "user@sub.relay.example", "user"]) {
      expect({ a, r: text(await rcpt(a)) }).toEqual({ a, r: "OK" });
    }
  });

  test("clients in mynetworks and authenticated clients may relay", async () => {
    expect(text(await policy({ client: { address: "10.1.2.3" } }).rcpt("user@target.example"))).toBe("OK");
    expect(text(await policy({ sasl: "alice" }).rcpt("user%target.example@mx.example.test"))).toBe("OK");
  });

  test("routed addresses that end in our own domains are ours; to relay_domains only with allow_untrusted_routing", async () => {
    expect(text(await policy().rcpt("user%localhost@mx.example.test"))).toBe("OK");
    // through us to a relay domain is fine (Postfix agrees); routing left at the relay domain is not
    expect(text(await policy().rcpt("user%relay.example@mx.example.test"))).toBe("OK");
    expect(text(await policy().rcpt("user%other.example@relay.example"))).toBe("454 4.7.1 <user%other.example@relay.example>: Relay access denied");
    const { rcpt } = policy({ params: { allow_untrusted_routing: "yes" } });
    expect(text(await rcpt("user%other.example@relay.example"))).toBe("OK");
    expect(text(await rcpt("user%target.example@mx.example.test"))).toMatch(/Relay access denied/);
  });

  test("the resolver ends routed addresses at the last host", async () => {
    const config = defaultsOnlyConfig().withOverrides(BASE);
    expect(await resolveRecipient(config, "a!b!user@mx.example.test")).toMatchObject({ address: "b!user@a", routed: true, addressClass: "default" });
    expect(await resolveRecipient(config, "user%relay.example@mx.example.test")).toMatchObject({ address: "user@relay.example", routed: false, addressClass: "relay" });
    expect(await resolveRecipient(config, "user@mx.example.test")).toMatchObject({ address: "user@mx.example.test", routed: false, addressClass: "local" });
  });
});

describe("recipient validation", () => {
  test("reject_unlisted_recipient (implicit): unknown local users get 550 5.1.1", async () => {
    const { rcpt } = policy({ params: { local_recipient_maps: "inline:{root=x, alice=x}", recipient_delimiter: "+" } });
    expect(text(await rcpt("alice@mx.example.test"))).toBe("OK");
    expect(text(await rcpt("alice+tag@mx.example.test"))).toBe("OK");
    expect(text(await rcpt("bob@mx.example.test"))).toBe("550 5.1.1 <bob@mx.example.test>: Recipient address rejected: User unknown in local recipient table");
    // even for trusted clients, as Postfix does
    const trusted = policy({ client: { address: "10.0.0.1" }, params: { local_recipient_maps: "inline:{root=x}" } });
    expect(text(await trusted.rcpt("bob@localhost"))).toMatch(/^550 5\.1\.1 <bob@localhost>: Recipient address rejected: User unknown/);
  });

  test("relay_recipient_maps and virtual alias domains", async () => {
    const { rcpt } = policy({ params: { relay_recipient_maps: "inline:{ok@relay.example=x}", virtual_alias_domains: "virt.example", virtual_alias_maps: "inline:{a@virt.example=b@elsewhere.example}" } });
    expect(text(await rcpt("ok@relay.example"))).toBe("OK");
    expect(text(await rcpt("no@relay.example"))).toBe("550 5.1.1 <no@relay.example>: Recipient address rejected: User unknown in relay recipient table");
    expect(text(await rcpt("a@virt.example"))).toBe("OK");
    expect(text(await rcpt("z@virt.example"))).toBe("550 5.1.1 <z@virt.example>: Recipient address rejected: User unknown in virtual alias table");
  });

  test("show_user_unknown_table_name = no; smtpd_reject_unlisted_recipient = no", async () => {
    expect(text(await policy({ params: { local_recipient_maps: "inline:{root=x}", show_user_unknown_table_name: "no" } }).rcpt("bob@localhost"))).toBe(
      "550 5.1.1 <bob@localhost>: Recipient address rejected: User unknown",
    );
    expect(text(await policy({ params: { local_recipient_maps: "inline:{root=x}", smtpd_reject_unlisted_recipient: "no" } }).rcpt("bob@localhost"))).toBe("OK");
  });
});

describe("access maps", () => {
  const list = (table: string) => ({ smtpd_recipient_restrictions: `check_recipient_access inline:{${table}}` });

  test("actions: OK, REJECT [text], DEFER, 4xx/5xx text, DUNNO, a restriction list", async () => {
    const { rcpt } = policy({
      params: list("ok@mx.example.test=OK, {rej@mx.example.test = REJECT go away}, rej2@mx.example.test=REJECT, defer@mx.example.test=DEFER, {code@mx.example.test = 550 5.2.1 full}, {soft@mx.example.test = 421 later}, dunno@mx.example.test=DUNNO, {list@mx.example.test = reject_unauth_destination reject}"),
    });
    expect(text(await rcpt("rej@mx.example.test"))).toBe("554 5.7.1 <rej@mx.example.test>: Recipient address rejected: go away");
    expect(text(await rcpt("rej2@mx.example.test"))).toBe("554 5.7.1 <rej2@mx.example.test>: Recipient address rejected: Access denied");
    expect(text(await rcpt("defer@mx.example.test"))).toBe("450 4.7.1 <defer@mx.example.test>: Recipient address rejected: Access denied");
    expect(text(await rcpt("code@mx.example.test"))).toBe("550 5.2.1 <code@mx.example.test>: Recipient address rejected: full");
    expect(text(await rcpt("soft@mx.example.test"))).toBe("421 4.7.1 <soft@mx.example.test>: Recipient address rejected: later");
    expect(text(await rcpt("ok@mx.example.test"))).toBe("OK");
    expect(text(await rcpt("dunno@mx.example.test"))).toBe("OK");
    expect(text(await rcpt("list@mx.example.test"))).toBe("554 5.7.1 <list@mx.example.test>: Recipient address rejected: Access denied");
  });

  test("lookup order: the address, without its extension, the domain and its parents, user@", async () => {
    const { rcpt } = policy({ params: { ...list("{example.org=REJECT domain}, {user@=REJECT local part}"), relay_domains: "sub.example.org, other.example", recipient_delimiter: "+" } });
    expect(text(await rcpt("x@sub.example.org"))).toBe("554 5.7.1 <x@sub.example.org>: Recipient address rejected: domain");
    expect(text(await rcpt("user+tag@other.example"))).toBe("554 5.7.1 <user+tag@other.example>: Recipient address rejected: local part");
  });

  test("HOLD, DISCARD and PREPEND become actions for the message", async () => {
    const { rcpt } = policy({ params: list("{h@mx.example.test = HOLD}, {d@mx.example.test = DISCARD spam}, {p@mx.example.test = PREPEND X-Tag: yes}") });
    expect((await rcpt("h@mx.example.test")).actions).toEqual([{ kind: "hold", reason: "<h@mx.example.test>: Recipient address triggers HOLD action", stage: "RCPT", subject: "h@mx.example.test" }]);
    expect((await rcpt("d@mx.example.test")).actions?.[0]).toMatchObject({ kind: "discard", reason: "<d@mx.example.test>: Recipient address spam" });
    expect((await rcpt("p@mx.example.test")).actions).toEqual([{ kind: "prepend", header: "X-Tag: yes" }]);
  });

  test("FILTER, REDIRECT and BCC become actions for the message; a malformed target is ignored with a warning", async () => {
    const w = policy({ params: list("{f@mx.example.test = FILTER smtp:[127.0.0.1]:10025}, {r@mx.example.test = REDIRECT x@y.test}, {b@mx.example.test = BCC x@y.test}, {n@mx.example.test = FILTER nocolon}, {m@mx.example.test = REDIRECT nobody}") });
    expect((await w.rcpt("f@mx.example.test")).actions).toEqual([
      { kind: "filter", filter: "smtp:[127.0.0.1]:10025", reason: "<f@mx.example.test>: Recipient address triggers FILTER smtp:[127.0.0.1]:10025", stage: "RCPT", subject: "f@mx.example.test" },
    ]);
    expect((await w.rcpt("r@mx.example.test")).actions).toEqual([
      { kind: "redirect", address: "x@y.test", reason: "<r@mx.example.test>: Recipient address triggers REDIRECT x@y.test", stage: "RCPT", subject: "r@mx.example.test" },
    ]);
    expect((await w.rcpt("b@mx.example.test")).actions).toEqual([{ kind: "bcc", address: "x@y.test", reason: "<b@mx.example.test>: Recipient address triggers BCC x@y.test", stage: "RCPT", subject: "b@mx.example.test" }]);
    for (const r of ["n", "m"]) expect(await w.rcpt(`${r}@mx.example.test`)).toEqual({ actions: [] });
    expect(w.warnings.some((l) => l.includes('FILTER needs transport:destination'))).toBe(true);
    expect(w.warnings.some((l) => l.includes('REDIRECT needs a user@domain target'))).toBe(true);
  });

  test("check_client_access: the name and its parents, then the address and its networks", async () => {
    const params = { smtpd_client_restrictions: "check_client_access inline:{bad.example=REJECT, {198.51.100=REJECT net}}" };
    expect(text(await policy({ params, client: { address: "192.0.2.1", name: "mail.bad.example" } }).rcpt("u@mx.example.test"))).toBe(
      "554 5.7.1 <mail.bad.example[192.0.2.1]>: Client host rejected: Access denied",
    );
    expect(text(await policy({ params, client: { address: "198.51.100.20" } }).rcpt("u@mx.example.test"))).toBe("554 5.7.1 <unknown[198.51.100.20]>: Client host rejected: net");
    expect(text(await policy({ params, client: { address: "203.0.113.1" } }).rcpt("u@mx.example.test"))).toBe("OK");
  });

  test("check_sender_access and the null sender's lookup key; check_helo_access", async () => {
    const params = { smtpd_sender_restrictions: "check_sender_access inline:{{<>=REJECT no bounces}, spam.example=REJECT}", smtpd_helo_restrictions: "check_helo_access inline:{{evil.example = 550 bad helo}}" };
    expect(text(await policy({ params, sender: "" }).rcpt("u@mx.example.test"))).toBe("554 5.7.1 <>: Sender address rejected: no bounces");
    expect(text(await policy({ params, sender: "a@x.spam.example" }).rcpt("u@mx.example.test"))).toBe("554 5.7.1 <a@x.spam.example>: Sender address rejected: Access denied");
    expect(text(await policy({ params, helo: "evil.example" }).rcpt("u@mx.example.test"))).toBe("550 5.7.1 <evil.example>: Helo command rejected: bad helo");
  });

  test("a cidr: table for check_client_access sees the whole address", async () => {
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const dir = mkdtempSync("/tmp/postern-cidr-");
    writeFileSync(`${dir}/clients`, "192.0.2.0/24 REJECT listed network\n");
    expect(text(await policy({ params: { smtpd_client_restrictions: `check_client_access cidr:${dir}/clients` } }).rcpt("u@mx.example.test"))).toBe(
      "554 5.7.1 <unknown[192.0.2.7]>: Client host rejected: listed network",
    );
  });
});

describe("name and syntax checks", () => {
  test("reject_non_fqdn_*, reject_invalid_helo_hostname", async () => {
    const params = { smtpd_recipient_restrictions: "reject_non_fqdn_helo_hostname, reject_invalid_helo_hostname, reject_non_fqdn_sender, reject_non_fqdn_recipient" };
    expect(text(await policy({ params, helo: "localhost" }).rcpt("u@mx.example.test"))).toBe("504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname");
    expect(text(await policy({ params, helo: "bad_host!.example" }).rcpt("u@mx.example.test"))).toBe("501 5.5.2 <bad_host!.example>: Helo command rejected: Invalid name");
    expect(text(await policy({ params, helo: "[192.0.2.7]" }).rcpt("u@mx.example.test"))).toBe("OK");
    expect(text(await policy({ params, sender: "user@host" }).rcpt("u@mx.example.test"))).toBe("504 5.5.2 <user@host>: Sender address rejected: need fully-qualified address");
    expect(text(await policy({ params }).rcpt("u@localhost"))).toBe("504 5.5.2 <u@localhost>: Recipient address rejected: need fully-qualified address");
    expect(text(await policy({ params, sender: "" }).rcpt("u@mx.example.test"))).toBe("OK");
  });

  test("reject_unknown_sender_domain and reject_unknown_recipient_domain", async () => {
    const dns: Zone = {
      "good.example MX": [{ preference: 10, exchange: "mx.good.example" }],
      "aonly.example A": [{ address: "192.0.2.1" }],
      "nullmx.example MX": [{ preference: 0, exchange: "" }],
      "broken.example MX": "servfail",
    };
    const params = { smtpd_recipient_restrictions: "reject_unknown_sender_domain, reject_unknown_recipient_domain", relay_domains: "good.example, none.example" };
    expect(text(await policy({ params, dns, sender: "a@good.example" }).rcpt("b@good.example"))).toBe("OK");
    expect(text(await policy({ params, dns, sender: "a@aonly.example" }).rcpt("b@good.example"))).toBe("OK");
    expect(text(await policy({ params, dns, sender: "a@none.example" }).rcpt("b@good.example"))).toBe("450 4.1.8 <a@none.example>: Sender address rejected: Domain not found");
    expect(text(await policy({ params, dns, sender: "a@good.example" }).rcpt("b@none.example"))).toBe("450 4.1.2 <b@none.example>: Recipient address rejected: Domain not found");
    expect(text(await policy({ params, dns, sender: "a@nullmx.example" }).rcpt("b@good.example"))).toBe(
      "556 5.1.10 <a@nullmx.example>: Sender address rejected: Domain nullmx.example does not accept mail (nullMX)",
    );
    // a temporary failure defers only if the rest would permit (defer_if_permit)
    expect(text(await policy({ params, dns, sender: "a@broken.example" }).rcpt("b@good.example"))).toBe("450 4.4.3 <a@broken.example>: Sender address rejected: Domain not found");
    // our own domains are not looked up
    expect(text(await policy({ params, dns, sender: "a@mx.example.test" }).rcpt("b@good.example"))).toBe("OK");
  });
});

describe("DNS lists", () => {
  const dns: Zone = {
    "7.2.0.192.zen.example A": [{ address: "127.0.0.2" }],
    "7.2.0.192.zen.example TXT": [{ text: "listed for spam", strings: ["listed for spam"] }],
    "7.2.0.192.codes.example A": [{ address: "127.0.0.4" }],
    "spammer.example.dbl.example A": [{ address: "127.0.1.2" }],
  };

  test("reject_rbl_client: Postfix's default_rbl_reply, the TXT reason", async () => {
    const r = await policy({ dns, params: { smtpd_recipient_restrictions: "reject_rbl_client zen.example" } }).rcpt("u@mx.example.test");
    expect(text(r)).toMatch(/^554 5\.7\.1 Service unavailable; Client host \[192\.0\.2\.7\] blocked using zen\.example; /);
  });

  test("zone=address filters which answers count", async () => {
    const params = (z: string) => ({ smtpd_recipient_restrictions: `reject_rbl_client ${z}` });
    expect(text(await policy({ dns, params: params("codes.example=127.0.0.2") }).rcpt("u@mx.example.test"))).toBe("OK");
    expect(text(await policy({ dns, params: params("codes.example=127.0.0.[3..5]") }).rcpt("u@mx.example.test"))).toMatch(/^554 5\.7\.1 Service unavailable; Client host \[192\.0\.2\.7\] blocked using codes\.example$/);
  });

  test("an unlisted client passes; permit_mynetworks before the list exempts trusted clients", async () => {
    const params = { smtpd_recipient_restrictions: "permit_mynetworks, reject_rbl_client zen.example" };
    expect(text(await policy({ dns, params, client: { address: "198.51.100.1" } }).rcpt("u@mx.example.test"))).toBe("OK");
  });

  test("reject_rhsbl_sender", async () => {
    const r = await policy({ dns, sender: "x@spammer.example", params: { smtpd_sender_restrictions: "reject_rhsbl_sender dbl.example" } }).rcpt("u@mx.example.test");
    expect(text(r)).toBe("554 5.7.1 Service unavailable; Sender address [spammer.example] blocked using dbl.example");
  });
});

describe("authentication-related restrictions", () => {
  test("reject_sender_login_mismatch with smtpd_sender_login_maps", async () => {
    const params = { smtpd_sender_login_maps: "inline:{alice@mx.example.test=alice, {shared@mx.example.test = alice bob}}", smtpd_sender_restrictions: "reject_sender_login_mismatch" };
    expect(text(await policy({ params, sasl: "alice", sender: "alice@mx.example.test" }).rcpt("u@mx.example.test"))).toBe("OK");
    expect(text(await policy({ params, sasl: "bob", sender: "shared@mx.example.test" }).rcpt("u@mx.example.test"))).toBe("OK");
    expect(text(await policy({ params, sasl: "bob", sender: "alice@mx.example.test" }).rcpt("u@mx.example.test"))).toBe("553 5.7.1 <alice@mx.example.test>: Sender address rejected: not owned by user bob");
    expect(text(await policy({ params, sender: "alice@mx.example.test" }).rcpt("u@mx.example.test"))).toBe("553 5.7.1 <alice@mx.example.test>: Sender address rejected: not logged in");
    expect(text(await policy({ params, sender: "nobody@example.org" }).rcpt("u@mx.example.test"))).toBe("OK");
  });
});

describe("the engine", () => {
  test("defer_if_permit defers what would be accepted; a later reject still rejects", async () => {
    expect(text(await policy({ params: { smtpd_recipient_restrictions: "defer_if_permit, permit" } }).rcpt("u@mx.example.test"))).toBe(
      "450 4.7.1 <u@mx.example.test>: Recipient address rejected: Service unavailable",
    );
    expect(text(await policy({ params: { smtpd_recipient_restrictions: "defer_if_permit, reject" } }).rcpt("u@mx.example.test"))).toMatch(/^554 5\.7\.1 /);
  });

  test("defer_if_reject turns a later reject temporary; warn_if_reject only logs it", async () => {
    expect(text(await policy({ params: { smtpd_recipient_restrictions: "defer_if_reject, reject" } }).rcpt("u@mx.example.test"))).toMatch(/^450 4\.7\.1 /);
    const w = policy({ params: { smtpd_recipient_restrictions: "warn_if_reject, reject" } });
    expect(text(await w.rcpt("u@mx.example.test"))).toBe("OK");
    expect(w.warnings.some((l) => l.includes("reject_warning: RCPT from unknown[192.0.2.7]: 554 5.7.1 <u@mx.example.test>: Recipient address rejected: Access denied"))).toBe(true);
  });

  test("restriction classes; unknown names are a configuration error (451 4.3.5)", async () => {
    expect(text(await policy({ params: { smtpd_restriction_classes: "strict", strict: "reject", smtpd_recipient_restrictions: "strict" } }).rcpt("u@mx.example.test"))).toMatch(/^554 5\.7\.1 /);
    const bad = policy({ params: { smtpd_recipient_restrictions: "reject_everything" } });
    expect(text(await bad.rcpt("u@mx.example.test"))).toBe("451 4.3.5 Server configuration error");
    expect(bad.warnings).toContain('unknown smtpd restriction: "reject_everything"');
  });

  test("reject_unauth_pipelining in smtpd_data_restrictions", async () => {
    const { p, view } = policy({ pipelined: true, params: { smtpd_data_restrictions: "reject_unauth_pipelining" } });
    expect(text(await p.data(view))).toBe("503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining");
  });

  test("smtpd_delay_reject = no: client restrictions at connect, HELO restrictions at HELO", async () => {
    const { p, view } = policy({ params: { smtpd_delay_reject: "no", smtpd_client_restrictions: "reject", smtpd_helo_restrictions: "reject_non_fqdn_helo_hostname" } });
    expect(text(await p.connect(view))).toBe("554 5.7.1 <unknown[192.0.2.7]>: Client host rejected: Access denied");
    expect(text(await p.helo(view, "nodots"))).toBe("504 5.5.2 <nodots>: Helo command rejected: need fully-qualified hostname");
  });

  test("a table that cannot be read is a temporary failure, not a pass", async () => {
    const { rcpt } = policy({ params: { smtpd_recipient_restrictions: "check_recipient_access hash:/nonexistent/table" } });
    expect(text(await rcpt("u@mx.example.test"))).toBe("451 4.3.0 <u@mx.example.test>: Recipient address rejected: Temporary lookup failure");
  });

  // the first ldap:/mysql:/pgsql: table a process opens waits for its backend to load (LazyTable), later ones
  // get the backend at once: a bad settings file must look the same to the client and in the log either way
  test("a database table with a bad settings file: 451 4.3.0 and the same warning, backend loading or loaded", async () => {
    const dir = mkdtempSync(join(tmpdir(), "postern-restrictions-"));
    try {
      const sql = "hosts = 127.0.0.1:1\ndbname = x\nquery = SELECT %q\n";
      for (const [type, settings] of [["mysql", sql], ["pgsql", sql], ["ldap", "server_host = ldap://127.0.0.1:1\nsearch_base = dc=x\ntimeout = abc\n"]] as const) {
        const seen: { reply: string; warnings: string[] }[] = [];
        for (const name of ["first", "later"]) {
          const path = join(dir, `${type}-${name}.cf`);
          writeFileSync(path, settings);
          const { rcpt, warnings } = policy({ params: { smtpd_recipient_restrictions: `check_recipient_access ${type}:${path}` } });
          seen.push({ reply: text(await rcpt("u@mx.example.test")), warnings: warnings.map((w) => w.replaceAll(path, "PATH")) });
          // the backend is loaded from here on: the next table of this type is the backend itself
          (await openTableLoaded(`${type}:${path}`, undefined)).close();
          openTable(`${type}:${path}`).close();
        }
        expect(seen[0]!.reply).toBe("451 4.3.0 <u@mx.example.test>: Recipient address rejected: Temporary lookup failure");
        expect(seen[0]!.warnings.length).toBeGreaterThan(0);
        expect(seen[1]).toEqual(seen[0]!);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("per-client limits (in-process anvil)", () => {
  test("message and recipient rates; mynetworks is exempt", async () => {
    const { p, view } = policy({ params: { smtpd_client_message_rate_limit: "2", smtpd_client_recipient_rate_limit: "3" } });
    expect(text(await p.mail(view))).toBe("OK");
    expect(text(await p.mail(view))).toBe("OK");
    expect(text(await p.mail(view))).toBe("450 4.7.1 Error: too much mail from 192.0.2.7");
    for (let i = 0; i < 3; i++) expect(text(await p.rcpt(view, { address: "u@mx.example.test", written: "u@mx.example.test" }))).toBe("OK");
    expect(text(await p.rcpt(view, { address: "u@mx.example.test", written: "u@mx.example.test" }))).toBe("450 4.7.1 Error: too many recipients from 192.0.2.7");
    const trusted = policy({ client: { address: "10.0.0.9" }, params: { smtpd_client_message_rate_limit: "1" } });
    for (let i = 0; i < 5; i++) expect(text(await trusted.p.mail(trusted.view))).toBe("OK");
  });

  test("connection count: the next session over the limit gets 421; a disconnect frees a slot", async () => {
    const config = defaultsOnlyConfig().withOverrides({ ...BASE, smtpd_client_connection_count_limit: "2" });
    const anvil = new Anvil(60_000);
    const make = () =>
      new SmtpdPolicy({
        config,
        service: "smtp",
        dns: stubDns({}),
        mynetworks: hostMatcherFor(config, "mynetworks"),
        limitExceptions: hostMatcherFor(config, "smtpd_client_event_limit_exceptions"),
        anvil,
        names: { name: "unknown", nameStatus: "perm", reverseName: "unknown", reverseNameStatus: "perm" },
        warn: () => {},
        info: () => {},
      });
    const view = policy().view;
    const [a, b, c] = [make(), make(), make()];
    expect(text(await a.connect(view))).toBe("OK");
    expect(text(await b.connect(view))).toBe("OK");
    expect(text(await c.connect(view))).toBe("421 4.7.0 mx.example.test Error: too many connections from 192.0.2.7");
    c.disconnect(view);
    a.disconnect(view);
    expect(text(await make().connect(view))).toBe("OK");
  });
});

describe("deep sender-specified routing (issue 9): smtpd asks the queue manager's resolver", () => {
  const DENIED = (a: string) => `454 4.7.1 <${a}>: Relay access denied`;
  const TABLES: Record<string, Record<string, string>> = {
    "empty local_recipient_maps": { local_recipient_maps: "" },
    "a catch-all local_recipient_maps": { local_recipient_maps: "static:yes" },
    "a catch-all virtual alias": { local_recipient_maps: "inline:{root=x}", virtual_alias_maps: "inline:{@mx.example.test=root}" },
  };
  for (const [tables, params] of Object.entries(TABLES)) {
    for (const delimiter of ["", "+"]) {
      for (const form of ROUTING_FORMS) {
        test(`${form} at ${HOP_COUNTS.join(", ")} hops: relay denied (${tables}, recipient_delimiter = "${delimiter}")`, async () => {
          const { rcpt } = policy({ params: { ...params, recipient_delimiter: delimiter } });
          for (const hops of HOP_COUNTS) {
            const a = exploit(hops, form, "mx.example.test");
            expect({ hops, r: text(await rcpt(a)) }).toEqual({ hops, r: DENIED(a) });
          }
        });
      }
    }
  }

  test("routing hidden in a quoted local part, at any depth, through localhost and literals too: relay denied", async () => {
    const { rcpt } = policy({ params: { recipient_delimiter: "+" } });
    for (const hops of HOP_COUNTS) {
      const inner = exploit(hops, "%", "localhost");
      for (const a of [`${inner.slice(0, inner.lastIndexOf("@"))}@mx.example.test`, exploit(hops, "mixed", "[127.0.0.1]")]) {
        expect({ hops, r: text(await rcpt(a)) }).toEqual({ hops, r: DENIED(a) });
      }
    }
  });

  test("routing left at one of our own domains is not ours (Postfix's RESOLVE_FLAG_ROUTED in every class)", async () => {
    const params = { virtual_alias_domains: "virt.example", virtual_alias_maps: "inline:{@virt.example=root@mx.example.test}", virtual_mailbox_domains: "vmail.example", virtual_mailbox_maps: "static:yes" };
    const { rcpt } = policy({ params });
    for (const hops of [0, ...HOP_COUNTS]) {
      for (const final of ["virt.example", "vmail.example"]) {
        const a = routed(`root+x%victim.example@${final}`, hops, "%", "mx.example.test");
        expect({ hops, r: text(await rcpt(a)) }).toEqual({ hops, r: DENIED(a) });
      }
    }
    // with the percent hack off, user%host@ours stays local but routed: not for an untrusted client
    const off = policy({ params: { allow_percent_hack: "no", swap_bangpath: "no" } });
    for (const a of ["root+x%victim.example@mx.example.test", "victim.example!root@mx.example.test"]) expect(text(await off.rcpt(a))).toBe(DENIED(a));
    // allow_untrusted_routing = yes accepts routing left at our own domains, as Postfix does, never the deep exploit
    const trusting = policy({ params: { ...params, allow_untrusted_routing: "yes" } });
    expect(text(await trusting.rcpt("root+x%victim.example@virt.example"))).toBe("OK");
    for (const hops of HOP_COUNTS) {
      const a = exploit(hops, "mixed", "mx.example.test");
      expect({ hops, r: text(await trusting.rcpt(a)) }).toEqual({ hops, r: DENIED(a) });
    }
  });

  test("resolve_dequoted = no: routing in a quoted local part stays, and is routed, so not ours", async () => {
    const { rcpt } = policy({ params: { resolve_dequoted: "no" } });
    for (const a of ["root+x@victim.example@mx.example.test", "root x%victim.example@localhost", exploit(11, "mixed", "mx.example.test")]) expect(text(await rcpt(a))).toBe(DENIED(a));
  });

  test("a resolution that fails is refused, even for a trusted client, never taken as local", async () => {
    const expected = "550 5.1.3 <@mx.example.test>: Recipient address rejected: Address resolution loop";
    expect(text(await policy({ params: { empty_address_recipient: "" } }).rcpt("@mx.example.test"))).toBe(expected);
    expect(text(await policy({ client: { address: "10.0.0.1" }, params: { empty_address_recipient: "" } }).rcpt("@mx.example.test"))).toBe(expected);
  });

  test("a domain table that cannot be read while resolving gives 451 4.3.0, never local", async () => {
    const { rcpt } = policy({ params: { virtual_alias_domains: "fail:broken" } });
    for (const hops of HOP_COUNTS) expect({ hops, r: text(await rcpt(exploit(hops, "%", "mx.example.test"))) }).toEqual({ hops, r: expect.stringMatching(/^451 4\.3\.0 /) });
  });

  test("reject_unknown_recipient_domain looks up the resolved domain, not the first one", async () => {
    const { rcpt, dns } = policy({ client: { address: "10.0.0.1" }, params: { smtpd_recipient_restrictions: "reject_unknown_recipient_domain" } });
    const a = exploit(11, "%", "mx.example.test");
    expect(text(await rcpt(a))).toMatch(/^450 4\.1\.2 <.*>: Recipient address rejected: Domain not found$|^550 5\.1\.2 /);
    expect(dns.asked).toContain("victim.example MX");
  });
});

describe("smtpd and the queue manager resolve with the same function", () => {
  test("the queue manager and smtpd import the one resolver; nothing else in src/ takes routing apart", async () => {
    const { Glob } = await import("bun");
    const root = `${import.meta.dir}/../../../src`;
    // the queue manager resolves where it schedules (qmgr/schedule.ts)
    const qmgr = await Bun.file(`${root}/qmgr/schedule.ts`).text();
    expect(qmgr).toContain('import { resolveRecipient } from "../global/rewrite/resolve.ts";');
    const smtpd = await Bun.file(`${root}/smtpd/restrictions/recipient-checks.ts`).text();
    expect(smtpd).toContain('from "../../global/rewrite/resolve.ts"');
    // the routing operators' switches are read only by the resolver and by canonicalization (cleanup's and smtpd's rewrite step)
    const readers: string[] = [];
    for await (const f of new Glob("**/*.ts").scan(root)) {
      if (f.includes("config/params/")) continue;
      if (/"(swap_bangpath|allow_percent_hack|allow_untrusted_routing)"/.test(await Bun.file(`${root}/${f}`).text())) readers.push(f);
    }
    expect(readers.sort()).toEqual(["global/address/canonical.ts", "global/rewrite/resolve.ts", "smtpd/restrictions/recipient-checks.ts"]);
  });

  test("whenever smtpd accepts a recipient from an untrusted client, the queue manager's routing keeps it here or in relay_domains", async () => {
    const params = {
      recipient_delimiter: "+",
      local_recipient_maps: "",
      virtual_alias_domains: "virt.example",
      virtual_alias_maps: "inline:{@virt.example=root@mx.example.test}",
      virtual_mailbox_domains: "vmail.example",
      virtual_mailbox_maps: "static:yes",
    };
    const { rcpt, config } = policy({ params });
    const targets = ["root@mx.example.test", "root+x@victim.example", "u@relay.example", "u%victim.example@relay.example", "a@virt.example", "root+x%victim.example@virt.example", "u@vmail.example", "u@[192.0.2.1]", "u@localhost"];
    const addresses = ["user", "user%victim.example", "victim.example!user", "user%localhost", "@localhost", "user@"];
    for (const target of targets) {
      for (const hops of [0, ...HOP_COUNTS]) {
        for (const form of ROUTING_FORMS) for (const local of ["mx.example.test", "localhost", "[127.0.0.1]"]) addresses.push(routed(target, hops, form, local));
      }
    }
    const { canonicalizeAddress, canonicalOptions } = await import("../../../src/global/address/canonical.ts");
    const { resolveRecipient: qmgrResolve } = await import("../../../src/global/rewrite/resolve.ts");
    const here = new Set(["local", "virtual"]);
    let accepted = 0;
    for (const a of addresses) {
      const smtpd = text(await rcpt(a));
      // what the queue manager does with it: cleanup canonicalizes the envelope recipient, the queue manager resolves it
      const queued = await qmgrResolve(config, canonicalizeAddress(a, canonicalOptions(config, "local")));
      const kept = !queued.failed && (here.has(queued.transport) || queued.addressClass === "relay" || queued.addressClass === "virtual_alias");
      if (smtpd === "OK") {
        accepted++;
        expect({ a, queued: { class: queued.addressClass, transport: queued.transport, failed: queued.failed } }).toEqual({ a, queued: expect.objectContaining({ failed: false }) });
        expect({ a, kept }).toEqual({ a, kept: true });
        expect({ a, routed: queued.routed }).toEqual({ a, routed: false });
      }
      if (queued.failed || queued.addressClass === "default") expect({ a, smtpd }).toEqual({ a, smtpd: expect.not.stringMatching(/^OK$/) });
    }
    // the list holds both kinds
    expect(accepted).toBeGreaterThan(50);
    expect(addresses.length - accepted).toBeGreaterThan(50);
  });
});

describe("addresses the resolver ends without a valid domain (Postfix's smtpd_check_addr)", () => {
  test("are a syntax error before any restriction, for trusted clients too", async () => {
    for (const client of [undefined, { address: "10.0.0.1" }]) {
      const { rcpt, warnings } = policy({ client });
      for (const a of ["user%@mx.example.test", "!victim.example@mx.example.test", "root+x!victim.example@localhost", "victim.example!user@mx.example.test!", "u@[::1]"]) {
        expect({ a, r: text(await rcpt(a)) }).toEqual({ a, r: "501 5.1.3 Bad recipient address syntax" });
      }
      expect(warnings.some((w) => w.startsWith("Illegal address syntax from unknown[") && w.endsWith("in RCPT command: <user%@mx.example.test>"))).toBe(true);
    }
    const { p, view } = policy({ sender: "user%@mx.example.test" });
    expect(text(await p.mail(view, "user%@mx.example.test"))).toBe("501 5.1.7 Bad sender address syntax");
  });

  test("postmaster, MAILER-DAEMON (the empty local part) and the double-bounce sender are known local recipients, as in Postfix", async () => {
    const { rcpt } = policy({ params: { local_recipient_maps: "inline:{root=x}" } });
    for (const a of ["postmaster@mx.example.test", "POSTMASTER@localhost", "@localhost", "MAILER-DAEMON@mx.example.test", "double-bounce@mx.example.test"]) expect({ a, r: text(await rcpt(a)) }).toEqual({ a, r: "OK" });
    expect(text(await rcpt("bob@mx.example.test"))).toMatch(/^550 5\.1\.1 /);
  });
});

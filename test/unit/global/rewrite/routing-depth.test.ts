/**
 * The one resolver and sender-specified routing of any depth (issue 9,
 * item 1): `%`, `!` and `@` layers of local domains are all taken off, at
 * 1, 9, 10, 11, 50 and 101 hops; what is left routed is flagged routed in
 * every class; the loop bound fails the address (error transport, class
 * default), it never makes it local.
 */
import { describe, expect, test } from "bun:test";
import { defaultsOnlyConfig, type Config } from "../../../../src/global/config/config.ts";
import { resolveRecipient } from "../../../../src/global/rewrite/resolve.ts";
import { HOP_COUNTS, ROUTING_FORMS, exploit, routed } from "../../../helpers/routing-forms.ts";

const BASE: Record<string, string> = {
  myhostname: "local.test",
  mydomain: "test",
  myorigin: "local.test",
  mydestination: "local.test, localhost",
  inet_interfaces: "127.0.0.1",
  relay_domains: "relay.example",
  virtual_alias_domains: "virt.example",
  virtual_mailbox_domains: "vmail.example",
};

function config(extra: Record<string, string> = {}): Config {
  return defaultsOnlyConfig().withOverrides({ ...BASE, ...extra });
}

describe("every layer of local routing comes off", () => {
  for (const delimiter of ["", "+"]) {
    for (const form of ROUTING_FORMS) {
      test(`${form} layers at ${HOP_COUNTS.join(", ")} hops end at victim.example (recipient_delimiter = "${delimiter}")`, async () => {
        const c = config({ recipient_delimiter: delimiter });
        for (const hops of HOP_COUNTS) {
          const address = exploit(hops, form, "local.test");
          expect({ hops, r: await resolveRecipient(c, address) }).toEqual({
            hops,
            r: { address: "root+x@victim.example", addressClass: "default", routed: false, transport: "smtp", nexthop: "victim.example", failed: false, invalid: false },
          });
        }
      });
    }
  }

  test("a quoted local part holding the whole route is looked into, at any depth", async () => {
    const c = config();
    for (const hops of HOP_COUNTS) {
      const inner = exploit(hops, "%", "local.test");
      const quoted = `"${inner.slice(0, inner.lastIndexOf("@"))}"@local.test`;
      expect({ hops, r: await resolveRecipient(c, quoted) }).toMatchObject({ hops, r: { address: "root+x@victim.example", addressClass: "default", failed: false } });
    }
  });

  test("through local domains to a relay domain: relay, not routed when nothing is left", async () => {
    for (const hops of HOP_COUNTS) {
      expect(await resolveRecipient(config(), routed("user@relay.example", hops, "mixed", "localhost"))).toMatchObject({ address: "user@relay.example", addressClass: "relay", routed: false });
    }
  });
});

describe("routing left at the final domain is flagged routed, in every class", () => {
  test.each([
    ["local (allow_percent_hack = no)", { allow_percent_hack: "no" }, "root+x%victim.example@local.test", "local", "local"],
    ["local (swap_bangpath = no)", { swap_bangpath: "no" }, "victim.example!root+x@local.test", "local", "local"],
    ["virtual alias", {}, "root+x%victim.example@virt.example", "virtual_alias", "error"],
    ["virtual mailbox", {}, "root+x%victim.example@vmail.example", "virtual_mailbox", "virtual"],
    ["relay", {}, "root+x%victim.example@relay.example", "relay", "relay"],
    ["default", {}, "a.example!b.example!user", "default", "smtp"],
  ])("%s", async (_name, extra, address, addressClass, transport) => {
    expect(await resolveRecipient(config(extra), address)).toMatchObject({ addressClass, routed: true, transport, failed: false });
  });

  test("deep routing that ends in a virtual alias domain stops there, routed (virtual domains are not stripped)", async () => {
    for (const hops of HOP_COUNTS) {
      const address = routed("root+x%victim.example@virt.example", hops, "%", "local.test");
      expect({ hops, r: await resolveRecipient(config(), address) }).toMatchObject({
        hops,
        r: { address: "root+x%victim.example@virt.example", addressClass: "virtual_alias", routed: true, transport: "error", nexthop: "5.1.1 User unknown in virtual alias table" },
      });
    }
  });

  test("virtual mailbox domains go to virtual_transport with the domain as next hop", async () => {
    expect(await resolveRecipient(config({ virtual_transport: "lmtp:unix:private/dovecot" }), "u@vmail.example")).toMatchObject({ addressClass: "virtual_mailbox", routed: false, transport: "lmtp", nexthop: "unix:private/dovecot" });
    expect(await resolveRecipient(config(), "u@vmail.example")).toMatchObject({ transport: "virtual", nexthop: "vmail.example" });
  });
});

describe("the loop bound fails an address; it never makes it local", () => {
  test("a resolution that does not end (empty_address_recipient empty) fails: class default, error transport", async () => {
    const r = await resolveRecipient(config({ empty_address_recipient: "" }), "@local.test");
    expect(r).toEqual({ address: "@local.test", addressClass: "default", routed: true, transport: "error", nexthop: "5.1.3 Address resolution loop", failed: true, invalid: false });
  });

  test("an empty local part is $empty_address_recipient, resolved again", async () => {
    expect(await resolveRecipient(config(), "@local.test")).toMatchObject({ address: "MAILER-DAEMON@local.test", addressClass: "local", failed: false });
  });

  test("a lower bound fails a deep address instead of stopping half way as local", async () => {
    const address = exploit(11, "%", "local.test");
    expect(await resolveRecipient(config(), address, { maxRounds: 5 })).toMatchObject({ addressClass: "default", transport: "error", failed: true });
    // the real bound (length + 100) is never reached by routing alone
    expect(await resolveRecipient(config(), exploit(101, "mixed", "local.test"))).toMatchObject({ failed: false });
  });

  test("an address that ends without a valid domain bounces as bad syntax (Postfix's RESOLVE_FLAG_ERROR), not local", async () => {
    for (const a of ["user@", "user%@local.test", "!victim.example@local.test", "victim.example!user@local.test!", "root+x!victim.example%local.test@local.test", "u@bad_name!", "u@1.2.3.4", "u@[::1]", "u@[IPv6:1.2.3.4]", "u@[300.1.1.1]"]) {
      expect({ a, r: await resolveRecipient(config(), a) }).toMatchObject({ a, r: { addressClass: "default", transport: "error", nexthop: "5.1.3 bad address syntax", failed: false, invalid: true } });
    }
    for (const a of ["u@[127.0.0.1]", "u@[IPv6:::1]", "u@[192.0.2.1]", "u@b\u00fccher.example", "u@under_score.example", "u@localhost"]) {
      expect({ a, r: await resolveRecipient(config(), a) }).toMatchObject({ a, r: { invalid: false } });
    }
  });

  test("a recipient that starts with '-' is bad syntax unless allow_min_user (a pipe command could take it for an option)", async () => {
    for (const a of ["-oQ/tmp/x@local.test", "-x@remote.example", "-x%victim.example@local.test", "local.test!-x"]) {
      expect({ a, r: await resolveRecipient(config(), a) }).toMatchObject({ a, r: { transport: "error", nexthop: "5.1.3 bad address syntax", invalid: true } });
    }
    expect(await resolveRecipient(config(), "x-y@local.test")).toMatchObject({ invalid: false, transport: "local" });
    expect(await resolveRecipient(config({ allow_min_user: "yes" }), "-x@remote.example")).toMatchObject({ invalid: false, transport: "smtp" });
  });
});

describe("resolve_dequoted", () => {
  test("yes (default): routing inside a local part that needs quotes is followed; no: it is one token, local and routed", async () => {
    const on = config();
    const off = config({ resolve_dequoted: "no" });
    // internal forms of "root+x@victim.example"@local.test, "root x%victim.example"@local.test and a literally quoted one
    for (const [a, end] of [
      ["root+x@victim.example@local.test", "root+x@victim.example"],
      ["root x%victim.example@local.test", "root x@victim.example"],
      ['"root+x%victim.example"@local.test', "root+x@victim.example"],
    ]) {
      expect(await resolveRecipient(on, a!)).toMatchObject({ address: end, addressClass: "default" });
      expect(await resolveRecipient(off, a!)).toMatchObject({ address: a, addressClass: "local", routed: true, transport: "local" });
    }
    // unquoted % and ! are operators either way
    expect(await resolveRecipient(off, exploit(11, "%", "local.test"))).toMatchObject({ address: "root+x@victim.example", addressClass: "default" });
  });
});

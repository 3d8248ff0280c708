/**
 * ldap: against a real slapd started by the test (test/helpers/slapd.ts):
 * the settings of Postfix's ldap_table(5), the %-expansions, RFC 4515
 * escaping of the key (no filter injection), special, leaf and terminal
 * result attributes, limits, binds, StartTLS, ldapi://, failover, and
 * temporary failures (a stopped or frozen server) as TableError, never
 * "not found".
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { LdapTable } from "../../../../../src/global/tables/ldap/ldap-table.ts";
import { openTableUncached } from "../../../../../src/global/tables/open-table.ts";
import { TableError } from "../../../../../src/global/tables/table.ts";
import { freePort } from "../../../../helpers/ports.ts";
import { type Slapd, haveSlapd, startSlapd } from "../../../../helpers/slapd.ts";
import { waitFor } from "../../../../helpers/wait.ts";
import { configIn } from "../../../../helpers/config.ts";
import { databaseTableWarnings } from "../../../../../src/global/config/table-checks.ts";
import { DIRECTORY, GROUPS, ODD_ADDRESS, PEOPLE, READER_DN, READER_PW } from "./directory.ts";

const available = haveSlapd();
let slapd: Slapd;
let cfCount = 0;

beforeAll(async () => {
  if (available) slapd = await startSlapd(DIRECTORY, { tls: true });
});
afterAll(async () => {
  await slapd?.destroy();
});

/** Writes a table file: the reader's bind and version 3 unless `settings` say otherwise. */
function cf(settings: Record<string, string | number>): string {
  const all: Record<string, string | number> = {
    server_host: slapd.url,
    version: 3,
    bind_dn: READER_DN,
    bind_pw: READER_PW,
    search_base: PEOPLE,
    query_filter: "(mailLocalAddress=%s)",
    result_attribute: "mailRoutingAddress",
    ...settings,
  };
  const path = join(slapd.dir, `table-${++cfCount}.cf`);
  writeFileSync(path, `# test table\n${Object.entries(all).filter(([, v]) => v !== "(unset)").map(([k, v]) => `${k} = ${v}`).join("\n")}\n`);
  return path;
}

const tables: LdapTable[] = [];
function table(settings: Record<string, string | number> = {}, fold = true): LdapTable {
  const path = cf(settings);
  const t = openTableUncached(`ldap:${path}`, undefined, { fold }) as LdapTable;
  tables.push(t);
  return t;
}
afterAll(() => {
  for (const t of tables) t.close();
});

describe.skipIf(!available)("ldap: lookups against slapd", () => {
  test("a key's result attribute is found; keys fold to lower case; an absent key is undefined", async () => {
    const t = table();
    expect(await t.lookup("alice@example.com")).toBe("alice@mail.example.com");
    expect(await t.lookup("INFO@example.com")).toBe("alice@mail.example.com");
    expect(await t.lookup("alice.smith@example.com")).toBe("alice@mail.example.com");
    expect(await t.lookup("nobody@example.com")).toBeUndefined();
    expect(await t.lookup("")).toBeUndefined();
    expect(t.kind).toBe("fixed");
  });

  test("several result attributes and several entries are joined with commas", async () => {
    const t = table({ query_filter: "(|(mailLocalAddress=%s)(uid=bob))", result_attribute: "mail, mailRoutingAddress" });
    const v = (await t.lookup("alice@example.com"))!.split(",").sort();
    expect(v).toEqual(["alice@example.com", "alice@mail.example.com", "bob@example.com", "bob@mail.example.com"]);
  });

  test("Postfix's defaults: LDAP version 2, server_host as host with server_port", async () => {
    const t = table({ server_host: "127.0.0.1", server_port: slapd.port, version: "(unset)" });
    expect(await t.lookup("bob@example.com")).toBe("bob@mail.example.com");
  });

  test("server_host lists are tried in order: a dead server, then the ldapi:// socket", async () => {
    const t = table({ server_host: `ldap://127.0.0.1:${freePort()}, ${slapd.ldapiUrl}` });
    expect(await t.lookup("bob@example.com")).toBe("bob@mail.example.com");
  });

  test("%u %d %1 %2 in the filter and the search base; %s %u %d %S %U %D in result_format", async () => {
    const t = table({
      search_base: "ou=people,dc=%2,dc=%1",
      query_filter: "(&(uid=%u)(mail=%u@%d))",
      result_format: "%u/%d/%S/%U/%D/%s",
    });
    expect(await t.lookup("alice@example.com")).toBe("alice/mail.example.com/alice@example.com/alice/example.com/alice@mail.example.com");
    // a search base built from the key that does not exist means "not found"
    expect(await t.lookup("alice@other.org")).toBeUndefined();
    // a key without the domain the templates need is not looked up
    expect(await t.lookup("alice")).toBeUndefined();
    expect(await t.lookup("alice@com")).toBeUndefined();
  });

  test("domain limits lookups to keys in those domains", async () => {
    const t = table({ domain: "example.org, Example.COM", query_filter: "(mailLocalAddress=%s)" });
    expect(await t.lookup("bob@example.com")).toBe("bob@mail.example.com");
    const other = table({ domain: "example.org" });
    expect(await other.lookup("bob@example.com")).toBeUndefined();
    expect(await other.lookup("bob")).toBeUndefined();
    // a Postfix string list: tables and negation too
    expect(await table({ domain: "inline:{ example.com=yes }" }).lookup("bob@example.com")).toBe("bob@mail.example.com");
    expect(await table({ domain: "!example.com, static:all" }).lookup("bob@example.com")).toBeUndefined();
  });

  test("the key cannot inject filter syntax: * ( ) \\ and NUL are escaped (RFC 4515)", async () => {
    const t = table();
    for (const key of ["*", "*@example.com", "alice@example.com)(mailLocalAddress=*", "x)(|(uid=*", "\\2a", "alice@example.com\0", "\0*"]) {
      expect(await t.lookup(key)).toBeUndefined();
    }
    // the same characters in a real address are found, byte for byte
    expect(await t.lookup(ODD_ADDRESS)).toBe("odd@mail.example.com");
    // and the key is escaped in a search base too
    const base = table({ search_base: "uid=%u,ou=people,dc=example,dc=com", scope: "base", query_filter: "(objectClass=*)" });
    expect(await base.lookup("alice@example.com")).toBe("alice@mail.example.com");
    expect(await base.lookup("alice,ou=people@example.com")).toBeUndefined();
  });

  test("special_result_attribute follows DNs and LDAP URLs; a missing DN is skipped", async () => {
    const t = table({ search_base: GROUPS, special_result_attribute: "member, memberURL" });
    expect((await t.lookup("staff@example.com"))!.split(",").sort()).toEqual(["alice@mail.example.com", "bob@mail.example.com", "staff-list@mail.example.com"]);
    expect(await t.lookup("dyn@example.com")).toBe("carol@mail.example.com");
  });

  test("leaf_result_attribute is taken only from entries without special attribute values", async () => {
    const t = table({ search_base: GROUPS, special_result_attribute: "member", leaf_result_attribute: "mailRoutingAddress", result_attribute: "" });
    expect((await t.lookup("staff@example.com"))!.split(",").sort()).toEqual(["alice@mail.example.com", "bob@mail.example.com"]);
  });

  test("an entry with a terminal_result_attribute value gives only that", async () => {
    const t = table({ search_base: GROUPS, special_result_attribute: "member", terminal_result_attribute: "mailHost" });
    expect(await t.lookup("sales@example.com")).toBe("sales-host.example.com");
    expect((await t.lookup("staff@example.com"))!.split(",")).toHaveLength(3);
  });

  test("expansion_limit and size_limit: more is a lookup error", async () => {
    const expansion = table({ search_base: GROUPS, special_result_attribute: "member", expansion_limit: 2 });
    await expect(expansion.lookup("staff@example.com")).rejects.toThrow("Expansion limit exceeded");
    const size = table({ query_filter: "(|(mailLocalAddress=%s)(uid=*))", size_limit: 2 });
    await expect(size.lookup("alice@example.com")).rejects.toBeInstanceOf(TableError);
    expect(await table({ size_limit: 2 }).lookup("alice@example.com")).toBe("alice@mail.example.com");
  });

  test("scope: base and one", async () => {
    expect(await table({ scope: "base" }).lookup("alice@example.com")).toBeUndefined();
    expect(await table({ scope: "one" }).lookup("alice@example.com")).toBe("alice@mail.example.com");
    expect(await table({ search_base: "dc=example,dc=com", scope: "one" }).lookup("alice@example.com")).toBeUndefined();
  });

  test("bind: a wrong password is a lookup error naming the server; so is an anonymous search the directory refuses", async () => {
    const wrong = table({ bind_pw: "wrong" });
    await expect(wrong.lookup("alice@example.com")).rejects.toThrow(/Unable to bind to server .* with dn cn=postern,dc=example,dc=com: 49 \(Invalid credentials/);
    // anonymous users may not read this directory: the search fails, and that is a lookup error too
    await expect(table({ bind: "no" }).lookup("alice@example.com")).rejects.toThrow("Insufficient access");
    await expect(table({ bind_dn: "", bind_pw: "" }).lookup("alice@example.com")).rejects.toThrow("Insufficient access");
  });

  test("start_tls, with and without certificate checks", async () => {
    const t = table({ start_tls: "yes" });
    expect(await t.lookup("alice@example.com")).toBe("alice@mail.example.com");
    const checked = table({ start_tls: "yes", tls_require_cert: "yes", tls_ca_cert_file: slapd.caFile!, server_host: `ldap://localhost:${slapd.port}` });
    expect(await checked.lookup("alice@example.com")).toBe("alice@mail.example.com");
    const unchecked = table({ start_tls: "yes", tls_require_cert: "yes", server_host: `ldap://localhost:${slapd.port}` });
    await expect(unchecked.lookup("alice@example.com")).rejects.toThrow(/STARTTLS/);
  });

  test("ldaps://, which implies version 3", async () => {
    const t = table({ server_host: slapd.ldapsUrl!, version: "(unset)", tls_require_cert: "yes", tls_ca_cert_file: slapd.caFile! });
    expect(await t.lookup("alice@example.com")).toBe("alice@mail.example.com");
    const unchecked = table({ server_host: slapd.ldapsUrl!, tls_require_cert: "yes" });
    await expect(unchecked.lookup("alice@example.com")).rejects.toBeInstanceOf(TableError);
  });

  test("bad settings fail every lookup with the reason", async () => {
    await expect(table({ bind: "sasl" }).lookup("x@example.com")).rejects.toThrow("unsupported parameter value: bind = sasl");
    await expect(table({ query_filter: "(mail=%x)" }).lookup("x@example.com")).rejects.toThrow("invalid query template");
    await expect(table({ timeout: "soon" }).lookup("x@example.com")).rejects.toThrow("bad numerical configuration");
    await expect(table({ query_filter: "(mailLocalAddress=%s" }).lookup("x@example.com")).rejects.toThrow("bad search filter");
    await expect(openTableUncached(`ldap:${join(slapd.dir, "missing.cf")}`, undefined).lookup("x")).rejects.toThrow("No such file or directory");
  });

  test("postern check's test lookup names a wrong password and passes a good table", async () => {
    const good = cf({});
    const wrong = cf({ bind_pw: "wrong" });
    const config = configIn(slapd.dir, `virtual_alias_maps = "ldap:${good}"\nrelay_recipient_maps = "proxy:ldap:${wrong}"\n`);
    const warnings = await databaseTableWarnings(config);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toStartWith(`${config.path}: relay_recipient_maps: ldap:${wrong}: test lookup failed: Unable to bind to server`);
    expect(warnings[0]).toContain("49 (Invalid credentials");
  });

  test("2000 lookups at once on one table all get their answer (slapd closes a connection with over 1000 pending)", async () => {
    const t = table();
    const keys = Array.from({ length: 2000 }, (_, i) => (i % 2 ? "alice@example.com" : "nobody@example.com"));
    const results = await Promise.all(keys.map((k) => t.lookup(k)));
    expect(results.filter((r) => r === "alice@mail.example.com")).toHaveLength(1000);
    expect(results.filter((r) => r === undefined)).toHaveLength(1000);
  });

  test("a frozen server: the lookup fails at the timeout; then works again", async () => {
    const t = table({ timeout: 1 });
    expect(await t.lookup("alice@example.com")).toBe("alice@mail.example.com");
    process.kill(slapd.pid!, "SIGSTOP");
    // a stop reaches every thread a little later (on a busy machine, observably so)
    await waitFor("every slapd thread to stop", () => readdirSync(`/proc/${slapd.pid}/task`).every((t) => /^State:\s+T/m.test(readFileSync(`/proc/${slapd.pid}/task/${t}/status`, "utf8"))));
    try {
      await expect(t.lookup("bob@example.com")).rejects.toThrow(/timeout/);
    } finally {
      process.kill(slapd.pid!, "SIGCONT");
    }
    expect(await t.lookup("bob@example.com")).toBe("bob@mail.example.com");
  });

  test("a stopped server is a temporary failure, never 'not found'; a restarted one is used again", async () => {
    const t = table();
    expect(await t.lookup("alice@example.com")).toBe("alice@mail.example.com");
    await slapd.stop();
    try {
      await expect(t.lookup("alice@example.com")).rejects.toBeInstanceOf(TableError);
      await expect(table().lookup("alice@example.com")).rejects.toThrow("Unable to connect to LDAP server");
    } finally {
      await slapd.start();
    }
    expect(await t.lookup("alice@example.com")).toBe("alice@mail.example.com");
  });
});

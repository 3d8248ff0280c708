/**
 * relocated_maps in the one resolver (Postfix's trivial-rewrite): a user
 * who moved resolves to error: with "5.1.6 User has moved to NEW" in every
 * address class, looked up as relocated(5) says (user@domain, user for a
 * local domain, @domain); smtpd refuses such a recipient at RCPT TO with
 * 550 5.1.6, and a table that cannot be read is a temporary error.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, type Config } from "../../../../src/global/config/config.ts";
import { resolveRecipient } from "../../../../src/global/rewrite/resolve.ts";
import { TableError } from "../../../../src/global/tables/table.ts";
import { closeAllTables } from "../../../../src/global/tables/open-table.ts";
import { recipientStatus } from "../../../../src/smtpd/restrictions/recipient-checks.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";

const dir = tempDir("postern-relocated-");
afterAll(() => {
  closeAllTables();
  removeDir(dir);
});

// relocated(5)'s examples
const TABLE = `username@example.com    username@elsewhere.example
localuser               new@example.net
@olddomain.example      newdomain.example
`;

let n = 0;
function config(extra: Record<string, string> = {}): Config {
  const sub = join(dir, `c${n++}`);
  const table = join(dir, `relocated${n}`);
  writeFileSync(table, TABLE);
  mkdirSync(sub);
  const settings: Record<string, string> = {
    myhostname: "mail.example.test",
    mydomain: "example.test",
    mydestination: "$myhostname, localhost",
    relay_domains: "example.com",
    virtual_alias_domains: "olddomain.example",
    recipient_delimiter: "+",
    relocated_maps: `texthash:${table}`,
    ...extra,
  };
  writeFileSync(join(sub, "postern.toml"), Object.entries(settings).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join("\n") + "\n");
  return loadConfig(sub);
}

describe("relocated_maps", () => {
  test("a user who moved resolves to error: 5.1.6 User has moved to NEW, in any class", async () => {
    const c = config();
    expect(await resolveRecipient(c, "username@example.com")).toMatchObject({ addressClass: "relay", transport: "error", nexthop: "5.1.6 User has moved to username@elsewhere.example", relocated: true });
    expect(await resolveRecipient(c, "username+tag@example.com")).toMatchObject({ transport: "error", nexthop: "5.1.6 User has moved to username@elsewhere.example" });
    expect(await resolveRecipient(c, "localuser@mail.example.test")).toMatchObject({ addressClass: "local", transport: "error", nexthop: "5.1.6 User has moved to new@example.net" });
    expect(await resolveRecipient(c, "anyone@olddomain.example")).toMatchObject({ addressClass: "virtual_alias", nexthop: "5.1.6 User has moved to newdomain.example" });
  });

  test("others are routed as before; the bare user matches only in a local domain", async () => {
    const c = config();
    const other = await resolveRecipient(c, "other@example.com");
    expect(other).toMatchObject({ transport: "relay" });
    expect(other.relocated).toBeUndefined();
    expect(await resolveRecipient(c, "localuser@example.com")).toMatchObject({ transport: "relay" });
  });

  test("smtpd: 550 with the new address, as Postfix's reject_unlisted_recipient", async () => {
    const c = config();
    const status = await recipientStatus(c, await resolveRecipient(c, "username@example.com"));
    expect(status).toEqual({ known: false, moved: "User has moved to username@elsewhere.example", code: 550 });
  });

  test("smtpd: a recipient the canonical tables know is known; sender_canonical_maps only for senders", async () => {
    const table = join(dir, "canonical-known");
    writeFileSync(table, "ghost@mail.example.test  real@mail.example.test\n");
    const c = config({ local_recipient_maps: "inline:{nobody=x}", recipient_canonical_maps: `texthash:${table}` });
    expect(await recipientStatus(c, await resolveRecipient(c, "ghost@mail.example.test"))).toEqual({ known: true });
    const s = config({ local_recipient_maps: "inline:{nobody=x}", sender_canonical_maps: `texthash:${table}` });
    const r = await resolveRecipient(s, "ghost@mail.example.test");
    expect(await recipientStatus(s, r, "sender")).toEqual({ known: true });
    expect((await recipientStatus(s, r, "recipient")).known).toBe(false);
  });

  test("a table that cannot be read throws TableError (smtpd 451, the queue manager defers), never passes the address", async () => {
    const c = config({ relocated_maps: `texthash:${join(dir, "missing")}` });
    expect(await resolveRecipient(c, "username@example.com").catch((e) => e)).toBeInstanceOf(TableError);
  });
});

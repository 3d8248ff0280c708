/**
 * cleanup's blind copies (always_bcc, sender_bcc_maps, recipient_bcc_maps)
 * through the one entry point pickup and smtpd call (rewriteRecipients),
 * against texthash tables: Postfix's order, the copies expanded by
 * virtual_alias_maps, duplicates once, and a table that cannot be read
 * defers the message instead of queueing it without its copy.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { closeAllTables } from "../../../src/global/tables/open-table.ts";
import { cleanupSettings } from "../../../src/cleanup/settings.ts";
import { CleanupDeferral, prepareRewrites } from "../../../src/cleanup/address-rewrites.ts";
import type { CleanupSettings } from "../../../src/cleanup/settings.ts";
import type { Recipient } from "../../../src/global/queue/format.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-bcc-");
afterAll(() => {
  closeAllTables();
  removeDir(dir);
});

function table(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return `texthash:${path}`;
}

const settings = (o: Record<string, string>) =>
  cleanupSettings(defaultsOnlyConfig().withOverrides({ myhostname: "mx.example.com", mydomain: "example.com", myorigin: "example.com", mydestination: "mx.example.com", recipient_delimiter: "+", ...o }));

const rewriteRecipients = async (sender: string, recipients: Recipient[], s: CleanupSettings) =>
  (await prepareRewrites({ sender, recipients, content: Buffer.from("Subject: x\n\nbody\n"), rewriteContext: "local" }, s)).recipients;

const addresses = (rs: { address: string }[]) => rs.map((r) => r.address);

describe("blind copies", () => {
  test("always_bcc: one copy per message, after the recipients, its own original recipient, no ORCPT", async () => {
    const out = await rewriteRecipients("joe@example.com", [{ address: "a@example.net" }, { address: "b@example.net" }], settings({ always_bcc: "archive" }));
    expect(addresses(out)).toEqual(["a@example.net", "b@example.net", "archive@example.com"]);
    expect(out[2]).toEqual({ address: "archive@example.com", original: "archive@example.com" });
    expect(out[0]!.orcpt).toBe("rfc822;a@example.net");
  });

  test("sender_bcc_maps: the sender's copy first; none for the null sender", async () => {
    const s = settings({ sender_bcc_maps: table("sender", "@example.com  outgoing-archive@example.com\n") });
    expect(addresses(await rewriteRecipients("joe+x@example.com", [{ address: "a@example.net" }], s))).toEqual(["outgoing-archive@example.com", "a@example.net"]);
    expect(addresses(await rewriteRecipients("", [{ address: "a@example.net" }], s))).toEqual(["a@example.net"]);
    expect(addresses(await rewriteRecipients("joe@example.org", [{ address: "a@example.net" }], s))).toEqual(["a@example.net"]);
  });

  test("recipient_bcc_maps: each recipient's copy after it; a copy already there is queued once", async () => {
    const s = settings({ recipient_bcc_maps: table("rcpt", "sales@example.com  sales-archive@example.com\nb@example.net sales-archive@example.com\n") });
    expect(addresses(await rewriteRecipients("", [{ address: "sales+eu@example.com" }, { address: "b@example.net" }, { address: "c@example.net" }], s))).toEqual([
      "sales+eu@example.com",
      "sales-archive@example.com",
      "b@example.net",
      "c@example.net",
    ]);
  });

  test("copies are expanded by virtual_alias_maps like any recipient", async () => {
    const s = settings({ always_bcc: "archive@example.com", virtual_alias_maps: table("virtual", "archive@example.com  tape@example.net, disk@example.net\n") });
    expect(addresses(await rewriteRecipients("", [{ address: "a@example.net" }], s))).toEqual(["a@example.net", "tape@example.net", "disk@example.net"]);
  });

  test("a bcc table that cannot be read defers the message", async () => {
    const s = settings({ recipient_bcc_maps: `texthash:${join(dir, "missing")}` });
    const err = (await rewriteRecipients("", [{ address: "a@example.net" }], s).catch((e: unknown) => e)) as CleanupDeferral;
    expect(err).toBeInstanceOf(CleanupDeferral);
    expect(err.lookupFailed).toBe(true);
    expect(err.warning).toContain("recipient_bcc_maps map lookup problem");
  });
});

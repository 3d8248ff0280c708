/**
 * masquerade_domains in cleanup, with ADDRESS_REWRITING_README's examples:
 * subdomains stripped, `!` entries kept, masquerade_exceptions (names and
 * tables), masquerade_classes (the envelope recipient is left alone by
 * default), headers and envelope, and a check of the refused /file form.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { closeAllTables } from "../../../src/global/tables/open-table.ts";
import { cleanupSettings } from "../../../src/cleanup/settings.ts";
import { cleanupRemoteSubmission } from "../../../src/cleanup/remote-submission.ts";
import { prepareRewrites } from "../../../src/cleanup/address-rewrites.ts";
import { masquerade, masqueradeSettings } from "../../../src/cleanup/masquerade.ts";
import { refuseMasqueradeExceptionFiles } from "../../../src/global/config/value-checks.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-masq-");
afterAll(() => {
  closeAllTables();
  removeDir(dir);
});

const config = (o: Record<string, string>) =>
  defaultsOnlyConfig().withOverrides({ myhostname: "mx.example.com", mydomain: "example.com", myorigin: "example.com", mydestination: "example.com", ...o });

describe("masquerade_domains", () => {
  test("a subdomain is replaced by the listed domain; the domain itself and other domains stay", async () => {
    const s = masqueradeSettings(config({ masquerade_domains: "example.com" }))!;
    expect(await masquerade("joe@host.eng.example.com", "envelope_sender", s)).toBe("joe@example.com");
    expect(await masquerade("joe@example.com", "envelope_sender", s)).toBe("joe@example.com");
    expect(await masquerade("joe@example.net", "envelope_sender", s)).toBe("joe@example.net");
    expect(await masquerade("joe@notexample.com", "envelope_sender", s)).toBe("joe@notexample.com");
  });

  test("!sub.example.com, example.com: that subdomain is kept, the first matching entry decides", async () => {
    const s = masqueradeSettings(config({ masquerade_domains: "!sub.example.com, example.com" }))!;
    expect(await masquerade("joe@host.sub.example.com", "envelope_sender", s)).toBe("joe@host.sub.example.com");
    expect(await masquerade("joe@other.example.com", "envelope_sender", s)).toBe("joe@example.com");
    const nested = masqueradeSettings(config({ masquerade_domains: "eng.example.com, example.com" }))!;
    expect(await masquerade("joe@host.eng.example.com", "envelope_sender", nested)).toBe("joe@eng.example.com");
  });

  test("masquerade_exceptions: names and tables keep their addresses", async () => {
    const path = join(dir, "exceptions");
    writeFileSync(path, "admin  ok\n");
    const s = masqueradeSettings(config({ masquerade_domains: "example.com", masquerade_exceptions: `root, texthash:${path}` }))!;
    expect(await masquerade("root@host.example.com", "envelope_sender", s)).toBe("root@host.example.com");
    expect(await masquerade("admin@host.example.com", "envelope_sender", s)).toBe("admin@host.example.com");
    expect(await masquerade("joe@host.example.com", "envelope_sender", s)).toBe("joe@example.com");
  });

  test("masquerade_classes: by default not the envelope recipient; sender and recipient headers, the envelope sender", async () => {
    const s = cleanupSettings(config({ masquerade_domains: "example.com" }));
    const content = Buffer.from("From: joe@host.example.com\nTo: ann@dept.example.com\nSubject: x\n\nbody\n");
    const sub = { sender: "joe@host.example.com", recipients: [{ address: "ann@dept.example.com" }], content, rewriteContext: "local" as const };
    const rewrites = await prepareRewrites(sub, s);
    expect(rewrites.sender).toBe("joe@example.com");
    expect(rewrites.recipients[0]!.address).toBe("ann@dept.example.com");
    const out = cleanupRemoteSubmission({ ...sub, arrival: new Date(0), received: (id) => `Received: by mx id ${id}`, prepend: [], attributes: {}, rewrites }, s, "Q1");
    if (!("file" in out)) throw new Error("rejected");
    const head = Buffer.from(out.file.content).toString("latin1");
    expect(head).toContain("\nFrom: joe@example.com\n");
    expect(head).toContain("\nTo: ann@example.com\n");
    const withRcpt = await prepareRewrites(sub, cleanupSettings(config({ masquerade_domains: "example.com", masquerade_classes: "envelope_recipient" })));
    expect(withRcpt.recipients[0]!.address).toBe("ann@example.com");
    expect(withRcpt.sender).toBe("joe@host.example.com");
  });

  test("a /file in masquerade_exceptions is refused by check, not ignored", () => {
    expect(refuseMasqueradeExceptionFiles("root, /etc/postfix/exceptions")).toContain("postern does not read names from a file");
    expect(refuseMasqueradeExceptionFiles("root, hash:/etc/postfix/exceptions")).toBeUndefined();
  });
});

/**
 * smtp_generic_maps (generic(5)) in the SMTP client, with
 * ADDRESS_REWRITING_README's "Generic mapping for outgoing SMTP mail"
 * example: the lookup order (full address, user@domain without the
 * extension, the bare user for a local domain, @domain), one lookup and no
 * recursion, propagate_unmatched_extensions, the null sender, only the
 * primary sender and recipient headers, and the agent: MAIL FROM, RCPT TO
 * and headers rewritten on the wire, lmtp_generic_maps for LMTP, and a
 * table that cannot be read deferring the delivery with nothing sent.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { closeAllTables } from "../../../src/global/tables/open-table.ts";
import { GenericMapError, genericMapSettings, mapGeneric, mapGenericHeaders } from "../../../src/smtp/generic-maps.ts";
import { useAgentTests } from "../../helpers/smtp-client-bench.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-generic-");
afterAll(() => {
  closeAllTables();
  removeDir(dir);
});

let n = 0;
function table(text: string): string {
  const path = join(dir, `t${n++}`);
  writeFileSync(path, text);
  return `texthash:${path}`;
}

/** The README's example table. */
const README = "his@localdomain.local hisaccount@hisisp.example\nher@localdomain.local heraccount@herisp.example\n@localdomain.local hisaccount+local@hisisp.example\n";

const settings = (spec: string, o: Record<string, string> = {}) =>
  genericMapSettings(
    defaultsOnlyConfig().withOverrides({ myhostname: "mx.localdomain.local", mydomain: "localdomain.local", myorigin: "localdomain.local", mydestination: "localdomain.local", recipient_delimiter: "+", ...o }),
    [spec],
    false,
  );

describe("mapGeneric: Postfix's lookup order, one lookup", () => {
  test("the README's example: full address first, then @domain", async () => {
    const s = settings(table(README));
    expect(await mapGeneric("his@localdomain.local", s)).toBe("hisaccount@hisisp.example");
    expect(await mapGeneric("her@localdomain.local", s)).toBe("heraccount@herisp.example");
    expect(await mapGeneric("other@localdomain.local", s)).toBe("hisaccount+local@hisisp.example");
    expect(await mapGeneric("someone@elsewhere.example", s)).toBe("someone@elsewhere.example");
  });

  test("user+ext@domain falls back to user@domain; the extension is kept only with propagate_unmatched_extensions = generic", async () => {
    const t = table("joe@localdomain.local joe@isp.example\n");
    expect(await mapGeneric("joe+list@localdomain.local", settings(t))).toBe("joe@isp.example");
    expect(await mapGeneric("joe+list@localdomain.local", settings(t, { propagate_unmatched_extensions: "canonical, generic" }))).toBe("joe+list@isp.example");
  });

  test("a bare user key matches in a local domain only", async () => {
    const s = settings(table("joe joe@isp.example\n"));
    expect(await mapGeneric("joe@localdomain.local", s)).toBe("joe@isp.example");
    expect(await mapGeneric("joe@remote.example", s)).toBe("joe@remote.example");
  });

  test("@domain as the value keeps the user; the result is not looked up again", async () => {
    const s = settings(table("@localdomain.local @isp.example\n@isp.example @elsewhere.example\n"));
    expect(await mapGeneric("ann@localdomain.local", s)).toBe("ann@isp.example");
  });

  test("the null sender is never looked up; a multi-valued result uses its first address, with Postfix's warning", async () => {
    const s = settings(table("<> nobody@isp.example\nann@localdomain.local a1@isp.example, a2@isp.example\n"));
    expect(await mapGeneric("", s)).toBe("");
    const warnings: string[] = [];
    expect(await mapGeneric("ann@localdomain.local", s, warnings)).toBe("a1@isp.example");
    expect(warnings).toEqual(["multi-valued smtp_generic_maps result for ann@localdomain.local"]);
  });

  test("a table that cannot be read throws GenericMapError, naming the parameter and the address", async () => {
    const path = join(dir, "missing");
    const s = settings(`texthash:${path}`);
    const err = await mapGeneric("his@localdomain.local", s).catch((e) => e);
    expect(err).toBeInstanceOf(GenericMapError);
    expect((err as Error).message).toStartWith("smtp_generic_maps map lookup problem for his@localdomain.local");
  });

  test("no table: nothing to do", async () => {
    expect(genericMapSettings(defaultsOnlyConfig(), [], false)).toBeUndefined();
    expect(await mapGeneric("his@localdomain.local", undefined)).toBe("his@localdomain.local");
  });
});

describe("mapGenericHeaders: the primary sender and recipient headers", () => {
  const s = () => settings(table(README));
  test("From:, To:, Cc:, Reply-To: rewritten where they stand; other headers and the body untouched", async () => {
    const content =
      "Received: from his@localdomain.local\nFrom: His Name <his@localdomain.local>\nTo: her@localdomain.local,\n  friend@remote.example\nCc: other@localdomain.local (Other)\nReply-To: his@localdomain.local\nSubject: to his@localdomain.local\n\nFrom: his@localdomain.local\nbody\n";
    const out = Buffer.from(await mapGenericHeaders(Buffer.from(content), s())).toString("latin1");
    expect(out).toBe(
      "Received: from his@localdomain.local\nFrom: His Name <hisaccount@hisisp.example>\nTo: heraccount@herisp.example, friend@remote.example\nCc: hisaccount+local@hisisp.example (Other)\nReply-To: hisaccount@hisisp.example\nSubject: to his@localdomain.local\n\nFrom: his@localdomain.local\nbody\n",
    );
  });

  test("nothing to rewrite: the very same bytes", async () => {
    const content = Buffer.from("From: a@remote.example\nTo:   b@remote.example\n\nbody");
    expect(await mapGenericHeaders(content, s())).toBe(content);
  });

  test("a header table that cannot be read throws", async () => {
    const bad = settings(`texthash:${join(dir, "absent")}`);
    await expect(mapGenericHeaders(Buffer.from("From: his@localdomain.local\n\nx\n"), bad)).rejects.toBeInstanceOf(GenericMapError);
  });
});

describe("the SMTP client with smtp_generic_maps", () => {
  const { server, bench, scratch } = useAgentTests();

  test("MAIL FROM, RCPT TO and the address headers go out rewritten; the results are the queued recipients'", async () => {
    const s = server();
    const d = scratch();
    writeFileSync(join(d, "generic"), README);
    const b = bench({ mydomain: "localdomain.local", myorigin: "localdomain.local", smtp_generic_maps: `texthash:${join(d, "generic")}` });
    const results = await b.deliver({
      nexthop: `[127.0.0.1]:${s.port}`,
      sender: "his@localdomain.local",
      recipients: ["her@localdomain.local", "friend@remote.example"],
      content: "From: his@localdomain.local\nTo: her@localdomain.local, friend@remote.example\nSubject: hi\n\nbody\n",
    });
    expect(results.map((r) => [r.index, r.status])).toEqual([
      [0, "sent"],
      [1, "sent"],
    ]);
    expect(s.messages[0]).toMatchObject({
      sender: "hisaccount@hisisp.example",
      recipients: ["heraccount@herisp.example", "friend@remote.example"],
      data: "From: hisaccount@hisisp.example\r\nTo: heraccount@herisp.example, friend@remote.example\r\nSubject: hi\r\n\r\nbody\r\n",
    });
  });

  test("lmtp_generic_maps for LMTP; smtp_generic_maps does not apply there", async () => {
    const d = scratch();
    writeFileSync(join(d, "generic"), "his@localdomain.local lmtp-his@example.net\n");
    writeFileSync(join(d, "smtp-generic"), "his@localdomain.local smtp-his@example.net\n");
    const s = server({ lmtp: true });
    const b = bench({ lmtp_generic_maps: `texthash:${join(d, "generic")}`, smtp_generic_maps: `texthash:${join(d, "smtp-generic")}` }, { lmtp: true });
    const [r] = await b.deliver({ nexthop: `inet:127.0.0.1:${s.port}`, sender: "his@localdomain.local", recipients: ["his@localdomain.local"] });
    expect(r!.status).toBe("sent");
    expect(s.messages[0]).toMatchObject({ sender: "lmtp-his@example.net", recipients: ["lmtp-his@example.net"] });
    expect(s.messages[0]!.data).toStartWith("From: lmtp-his@example.net\r\n");
  });

  test("a table that cannot be read: every recipient deferred 4.3.0, no connection made", async () => {
    const s = server();
    const d = scratch();
    const b = bench({ smtp_generic_maps: `texthash:${join(d, "no-such-table")}` });
    const results = await b.deliver({ nexthop: `[127.0.0.1]:${s.port}`, sender: "his@localdomain.local", recipients: ["her@localdomain.local", "x@remote.example"] });
    for (const r of results) expect(r).toMatchObject({ status: "deferred", dsn: "4.3.0" });
    expect(results[0]!.reason).toContain("smtp_generic_maps map lookup problem for his@localdomain.local");
    expect(s.messages).toEqual([]);
    expect(s.commands).toEqual([]);
  });
});

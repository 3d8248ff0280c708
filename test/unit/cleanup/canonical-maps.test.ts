/**
 * canonical(5) mapping in cleanup, with ADDRESS_REWRITING_README's
 * examples, against texthash tables: envelope sender and recipients,
 * sender and recipient headers, the *_canonical_classes, the order
 * (sender/recipient maps before canonical_maps), propagate_unmatched_extensions,
 * and a table that cannot be read (deferred, never left unmapped).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig } from "../../../src/global/config/config.ts";
import { closeAllTables } from "../../../src/global/tables/open-table.ts";
import { cleanupSettings } from "../../../src/cleanup/settings.ts";
import { cleanupRemoteSubmission } from "../../../src/cleanup/remote-submission.ts";
import { CleanupDeferral, prepareRewrites } from "../../../src/cleanup/address-rewrites.ts";
import type { Recipient } from "../../../src/global/queue/format.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-canonical-");
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

const settings = (o: Record<string, string>) =>
  cleanupSettings(defaultsOnlyConfig().withOverrides({ myhostname: "mx.example.com", mydomain: "example.com", myorigin: "example.com", mydestination: "example.com, mx.example.com", recipient_delimiter: "+", ...o }));

const CONTENT = "From: wietse\nTo: Someone <someone@legacy.example>, wietse@example.com\nCc: joe\nSubject: x\n\nbody\n";

async function run(o: Record<string, string>, sender = "wietse", recipients: Recipient[] = [{ address: "someone@legacy.example" }], context: "local" | "remote" = "local") {
  const s = settings(o);
  const content = Buffer.from(CONTENT);
  const rewrites = await prepareRewrites({ sender, recipients, content, rewriteContext: context }, s);
  const out = cleanupRemoteSubmission(
    { arrival: new Date(0), sender, recipients, content, received: (id) => `Received: by mx id ${id}`, prepend: [], attributes: {}, rewriteContext: context, rewrites },
    s,
    "Q1",
  );
  if (!("file" in out)) throw new Error("rejected");
  const head = Buffer.from(out.file.content).toString("latin1").split("\n\n")[0]!;
  return { rewrites, file: out.file, head };
}

describe("canonical_maps (ADDRESS_REWRITING_README)", () => {
  test("wietse -> Wietse.Venema: the envelope sender and the From: header; a bare result gets @myorigin", async () => {
    const { file, head } = await run({ canonical_maps: table("wietse  Wietse.Venema\n") });
    expect(file.sender).toBe("Wietse.Venema@example.com");
    expect(head).toContain("\nFrom: Wietse.Venema@example.com\n");
    expect(head).toContain("To: Someone <someone@legacy.example>, Wietse.Venema@example.com");
  });

  test("@legacy.example @example.com: the recipient and the To: header; the original recipient is kept", async () => {
    const { file, head } = await run({ recipient_canonical_maps: table("@legacy.example  @example.com\n") });
    expect(file.recipients).toEqual([{ address: "someone@example.com", original: "someone@legacy.example", orcpt: "rfc822;someone@legacy.example" }]);
    expect(head).toContain("To: Someone <someone@example.com>,");
    expect(file.sender).toBe("wietse@example.com");
  });

  test("sender_canonical_classes = envelope_sender: the From: header is left alone", async () => {
    const { file, head } = await run({ sender_canonical_maps: table("wietse@example.com  wv@example.net\n"), sender_canonical_classes: "envelope_sender" });
    expect(file.sender).toBe("wv@example.net");
    expect(head).toContain("\nFrom: wietse@example.com\n");
  });

  test("the sender's own map first, then canonical_maps on its result", async () => {
    const { file } = await run({ sender_canonical_maps: table("wietse@example.com  w@example.com\n"), canonical_maps: table("w@example.com  final@example.net\n") });
    expect(file.sender).toBe("final@example.net");
  });

  test("an unmatched extension is copied to the result", async () => {
    const { file } = await run({ recipient_canonical_maps: table("joe@example.com  joe.public@example.net\n") }, "", [{ address: "joe+news@example.com" }]);
    expect(file.recipients[0]!.address).toBe("joe.public+news@example.net");
  });

  test("remote clients' headers are not mapped (no remote_header_rewrite_domain), the envelope is", async () => {
    const { file, head } = await run({ canonical_maps: table("wietse@example.com  Wietse.Venema@example.com\n") }, "wietse@example.com", [{ address: "a@example.net" }], "remote");
    expect(file.sender).toBe("Wietse.Venema@example.com");
    expect(head).toContain("\nFrom: wietse\n");
  });

  test("a multi-valued entry: the first address, and Postfix's warning", async () => {
    const { file, rewrites } = await run({ canonical_maps: table("wietse@example.com  a@example.net, b@example.net\n") }, "wietse@example.com", [{ address: "x@example.net" }]);
    expect(file.sender).toBe("a@example.net");
    expect(rewrites.warnings).toContain("multi-valued canonical_maps entry for wietse@example.com");
  });

  test("a table that cannot be read defers the message", async () => {
    const err = await run({ canonical_maps: `texthash:${join(dir, "missing")}` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CleanupDeferral);
    expect((err as CleanupDeferral).warning).toContain("canonical_maps map lookup problem for wietse@example.com");
  });
});

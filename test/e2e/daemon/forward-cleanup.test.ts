/**
 * Mail that local(8) forwards goes through cleanup again (issue 12, part 2),
 * as Postfix's local hands it to cleanup with CLEANUP_FLAG_MAP_OK: an alias
 * to an address of a virtual alias domain is expanded by virtual_alias_maps,
 * an alias to an address that recipient_canonical_maps maps arrives mapped,
 * and no always_bcc copy is made of the forwarded message (only of the
 * original). Seen at the next hop, a Python sink behind relayhost.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HOST, isRoot, message } from "../../helpers/mail-system.ts";
import { relayToSink, type RelayToSink } from "../../helpers/relay-sink.ts";
import type { SmtpdSystem } from "../../helpers/smtpd-system.ts";

describe.skipIf(!isRoot)("forwarded mail through cleanup", () => {
  let sys: SmtpdSystem;
  let bench: RelayToSink;

  beforeAll(async () => {
    bench = await relayToSink(
      {
        local_transport: "local",
        virtual_alias_domains: "hosted.test",
        alias_maps: "inline:{ {fwdva = moved@hosted.test}, {fwdrc = someone@old.example}, {fwdbcc = other@sink.example} }",
        always_bcc: "copies@sink.example",
      },
      (s) => ({
        virtual_alias_maps: `texthash:${s.etcFile("virtual", "moved@hosted.test far@sink.example\n")}`,
        recipient_canonical_maps: `texthash:${s.etcFile("recipient_canonical", "@old.example @sink.example\n")}`,
      }),
    );
    ({ sys } = bench);
  }, 60_000);

  afterAll(() => bench?.stop());

  const forwardedTo = async (subject: string) => {
    const all = () => bench.sink.messages().filter((m) => m.data.includes(`Subject: ${subject}`));
    await bench.atSink(subject);
    await sys.waitForEmptyQueue();
    return all();
  };

  test("an alias to a virtual alias address: the forwarded message is expanded by virtual_alias_maps", async () => {
    await sys.send([`fwdva@${HOST}`], message("fwd-virtual"));
    const got = await forwardedTo("fwd-virtual");
    const rcpts = got.flatMap((m) => m.rcpt_tos).sort();
    expect(rcpts).toEqual(["copies@sink.example", "far@sink.example"]);
    const forwarded = got.find((m) => m.rcpt_tos.includes("far@sink.example"))!;
    expect(forwarded.data).toContain(`Delivered-To: fwdva@${HOST}\r\n`);
    expect(sys.log()).not.toMatch(/User unknown in virtual alias table/);
  }, 60_000);

  test("an alias to an address recipient_canonical_maps maps: the forwarded recipient arrives mapped", async () => {
    await sys.send([`fwdrc@${HOST}`], message("fwd-canonical"));
    const got = await forwardedTo("fwd-canonical");
    expect(got.flatMap((m) => m.rcpt_tos).sort()).toEqual(["copies@sink.example", "someone@sink.example"]);
  }, 60_000);

  test("the forwarded message gets no second always_bcc copy", async () => {
    await sys.send([`fwdbcc@${HOST}`], message("fwd-bcc"));
    const got = await forwardedTo("fwd-bcc");
    expect(got.flatMap((m) => m.rcpt_tos).sort()).toEqual(["copies@sink.example", "other@sink.example"]);
  }, 60_000);
});

/**
 * The checks on receipt end to end (issue 15, part 2): SPF, DKIM, DMARC
 * through mailauth and postern's resolver, every name answered by the fake
 * DNS on 127.0.0.1. The client (127.0.0.1) is outside mynetworks on the
 * "smtp" and "enforce" services, inside on "inside".
 *
 * - pass: an SPF-permitted sender whose message carries a valid signature
 *   of its From: domain gets spf=pass, dkim=pass, dmarc=pass;
 * - fail: a sender whose domain publishes -all and p=reject, unsigned:
 *   accepted with spf=fail and dmarc=fail where nothing is enforced;
 *   refused at RCPT (smtpd_spf_reject) and at the end of DATA
 *   (smtpd_dmarc_reject) on the enforcing service;
 * - a DNS timeout gives temperror, never a rejection;
 * - Authentication-Results: headers that claim this host are removed
 *   before the server adds its own; another host's stay;
 * - a client in mynetworks is not checked.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { HOST, RawSmtp, SmtpdSystem, isRoot } from "../../helpers/smtpd-system.ts";
import { useFakeDns } from "../../helpers/fake-dns.ts";
import { dkimRecordText } from "../../../src/global/dkim/keys.ts";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { verifyArc } from "../../helpers/dkim-verify.ts";
import { dkimSignature } from "../../../src/global/dkim/sign.ts";
import { splitMessage } from "../../../src/global/message/header-split.ts";
import { Resolver } from "../../../src/global/dns/resolver.ts";
import { mailauthResolver } from "../../../src/global/dns/mailauth-resolver.ts";

const key = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;

describe.skipIf(!isRoot)("mail authentication on receipt", () => {
  const dns = useFakeDns({
    "good.example": { TXT: ["v=spf1 ip4:127.0.0.1 -all"], MX: [[10, "mx.good.example"]] },
    "sel._domainkey.good.example": { TXT: [dkimRecordText(key)] },
    "_dmarc.good.example": { TXT: ["v=DMARC1; p=reject"] },
    "bad.example": { TXT: ["v=spf1 -all"], MX: [[10, "mx.bad.example"]] },
    "_dmarc.bad.example": { TXT: ["v=DMARC1; p=reject"] },
    "arc._domainkey.forwarder.example": { TXT: [dkimRecordText(key)] },
    "slow.example": { TXT: ["v=spf1 -all"], drop: true },
    "_dmarc.slow.example": { TXT: ["v=DMARC1; p=reject"], drop: true },
  });
  let sys: SmtpdSystem;

  beforeAll(async () => {
    sys = new SmtpdSystem(
      { dns_servers: dns.server, dns_timeout: "1s", dns_attempts: 1 },
      {
        smtp: {},
        enforce: { smtpd_dmarc_reject: "yes", smtpd_spf_reject: "yes" },
        inside: { mynetworks: "127.0.0.0/8" },
        seal: { smtpd_arc_seal_key: "forwarder.example:arc" },
      },
    );
    // the sealing key, where postern dkim new-key puts keys (read as root at start)
    mkdirSync(join(sys.etc, "dkim"), { mode: 0o700 });
    writeFileSync(join(sys.etc, "dkim", "forwarder.example.arc.key"), key.export({ format: "pem", type: "pkcs8" }).toString(), { mode: 0o600 });
    await sys.start();
  }, 60_000);

  afterAll(() => sys?.cleanup());

  /** One transaction; returns the replies to RCPT and to the end of DATA. */
  async function send(service: string, sender: string, content: string): Promise<{ rcpt: string; data?: string }> {
    const c = await RawSmtp.connect(sys.ports[service]!);
    try {
      await c.reply();
      expect(await c.cmd("EHLO client.example")).toStartWith("250");
      expect(await c.cmd(`MAIL FROM:<${sender}>`)).toStartWith("250");
      const rcpt = await c.cmd(`RCPT TO:<root@${HOST}>`);
      if (!rcpt.startsWith("250")) return { rcpt };
      expect(await c.cmd("DATA")).toStartWith("354");
      c.send(`${content.replace(/\n/g, "\r\n")}.\r\n`);
      const data = await c.reply(30_000);
      await c.cmd("QUIT");
      return { rcpt, data };
    } finally {
      c.destroy();
    }
  }

  function signed(text: string): string {
    const content = Buffer.from(text, "latin1");
    const split = splitMessage(content, { lineLengthLimit: 1e9, headerSizeLimit: 1e9 });
    const sig = dkimSignature(split.headers, content.subarray(split.bodyOffset + 1), { domain: "good.example", selector: "sel", key }, {
      header: "relaxed",
      body: "relaxed",
      signedHeaders: ["From", "Subject", "To"],
      oversignedHeaders: ["From"],
      time: Math.floor(Date.now() / 1000),
    });
    return `${sig}\n${text}`;
  }

  /** The Authentication-Results: headers of the queued message, unfolded. */
  async function authResults(subject: string): Promise<string[]> {
    const m = await sys.message(subject);
    const head = m.text.slice(0, m.text.indexOf("\n\n"));
    return [...head.matchAll(/^Authentication-Results:.*(?:\n[ \t].*)*/gim)].map((x) => x[0].replace(/\n[ \t]+/g, " "));
  }

  test("pass: SPF, DKIM and DMARC pass for a permitted, signed sender", async () => {
    const r = await send("smtp", "alice@good.example", signed("From: alice@good.example\nTo: root\nSubject: auth-pass\n\nhello\n"));
    expect(r.data).toStartWith("250 2.0.0");
    const ar = await authResults("auth-pass");
    expect(ar).toHaveLength(1);
    expect(ar[0]).toStartWith(`Authentication-Results: ${HOST};`);
    expect(ar[0]).toMatch(/dkim=pass header\.i=@good\.example header\.s=sel/);
    expect(ar[0]).toMatch(/spf=pass [^;]*smtp\.mailfrom=alice@good\.example/);
    expect(ar[0]).toMatch(/dmarc=pass [^;]*header\.from=good\.example/);
  }, 60_000);

  test("fail: accepted with spf=fail and dmarc=fail where nothing is enforced", async () => {
    const r = await send("smtp", "mallory@bad.example", "From: boss@bad.example\nSubject: auth-fail\n\nsend money\n");
    expect(r.data).toStartWith("250 2.0.0");
    const ar = await authResults("auth-fail");
    expect(ar).toHaveLength(1);
    expect(ar[0]).toMatch(/spf=fail /);
    expect(ar[0]).toMatch(/dmarc=fail [^;]*header\.from=bad\.example/);
  }, 60_000);

  test("smtpd_spf_reject: an SPF fail is refused at RCPT", async () => {
    const r = await send("enforce", "mallory@bad.example", "");
    expect(r.rcpt).toStartWith(`550 5.7.23 <root@${HOST}>: Recipient address rejected: Message rejected due to: SPF fail - not authorized`);
    expect(sys.log()).toMatch(/NOQUEUE: reject: RCPT from [^:]+: 550 5.7.23 <root@mail\.example\.test>: Recipient address rejected/);
  }, 60_000);

  test("smtpd_dmarc_reject: a DMARC fail under p=reject is refused at the end of DATA", async () => {
    // SPF passes for the envelope (good.example), the From: domain is bad.example's: not aligned, unsigned
    const r = await send("enforce", "alice@good.example", "From: boss@bad.example\nSubject: auth-dmarc\n\nsend money\n");
    expect(r.data).toStartWith("550 5.7.1 Message rejected: DMARC policy of bad.example is reject");
    expect(sys.messagesContaining("auth-dmarc")).toEqual([]);
  }, 60_000);

  test("more header fields or signatures than are checked: permerror, and refused where DMARC is enforced (no way around the policy)", async () => {
    const many = "X-Pad: x\n".repeat(1001);
    const enforced = await send("enforce", "alice@good.example", `${many}From: boss@bad.example\nSubject: auth-many\n\nbody\n`);
    expect(enforced.data).toStartWith("550 5.7.1 Message rejected: more than 1000 header fields");
    const r = await send("smtp", "alice@good.example", `${many}From: boss@bad.example\nSubject: auth-many-ok\n\nbody\n`);
    expect(r.data).toStartWith("250 2.0.0");
    const ar = await authResults("auth-many-ok");
    expect(ar[0]).toMatch(/dkim=permerror \(more than 1000 header fields\); spf=pass .*; dmarc=permerror/);
    // each signature may cost a key lookup: more than 10 are not checked
    const sigs = "DKIM-Signature: v=1; a=rsa-sha256; d=slow.example; s=x; h=from; bh=; b=\n".repeat(11);
    const s11 = await send("smtp", "alice@good.example", `${sigs}From: boss@bad.example\nSubject: auth-sigs\n\nbody\n`);
    expect(s11.data).toStartWith("250 2.0.0");
    expect((await authResults("auth-sigs"))[0]).toMatch(/dkim=permerror \(more than 10 DKIM signatures\);/);
  }, 60_000);

  test("ARC: the chain of a forwarded message is validated (arc=pass)", async () => {
    // a forwarder added its footer, which breaks the author's signature, then checked and sealed the message
    // (mailauth, the fake DNS as its resolver): the chain vouches for what it saw
    const original = `${signed("From: alice@good.example\nTo: list@forwarder.example\nSubject: auth-arc\n\nhello\n")}-- \nthe list footer\n`;
    const { authenticate } = await import("mailauth");
    const sealed = await authenticate(Buffer.from(original.replace(/\n/g, "\r\n")), {
      ip: "127.0.0.1",
      helo: "client.example",
      sender: "alice@good.example",
      mta: "mx.forwarder.example",
      resolver: mailauthResolver(new Resolver(dns.resolverOptions())),
      seal: { signingDomain: "forwarder.example", selector: "arc", privateKey: key.export({ format: "pem", type: "pkcs8" }).toString() },
      disableBimi: true,
    });
    const forwarded = `${sealed.headers.replace(/\r\n/g, "\n")}${original}`;
    const r = await send("smtp", "list-bounces@bad.example", forwarded);
    expect(r.data).toStartWith("250 2.0.0");
    const ours = (await authResults("auth-arc")).filter((h) => h.startsWith(`Authentication-Results: ${HOST};`));
    expect(ours).toHaveLength(1);
    expect(ours[0]).toMatch(/arc=pass/);
    expect(ours[0]).toMatch(/dkim=neutral \(body hash did not verify\)/);
  }, 60_000);

  test("smtpd_arc_seal_key: checked mail is ARC-sealed; python3-dkim validates the chain", async () => {
    const r = await send("seal", "alice@good.example", signed(`From: alice@good.example\nTo: root@${HOST}\nSubject: auth-seal\n\nhello\n`));
    expect(r.data).toStartWith("250 2.0.0");
    const m = await sys.message("auth-seal");
    expect(m.text).toMatch(/^ARC-Seal: i=1; a=rsa-sha256; [\s\S]*\nARC-Message-Signature: i=1; [\s\S]*\nARC-Authentication-Results: i=1; mail\.example\.test;/);
    const v = verifyArc(Buffer.from(m.text.replace(/\n/g, "\r\n"), "latin1"), { "arc._domainkey.forwarder.example": dkimRecordText(key) });
    expect(v).toEqual({ cv: "pass", reason: expect.any(String) });
  }, 60_000);

  test("smtpd_arc_seal_key: a seal that cleanup's rewriting would break is left out, with a warning", async () => {
    // "To: root" is completed to root@mail.example.test (local header rewriting for this client): the seal covered "To: root"
    const r = await send("seal", "alice@good.example", "From: alice@good.example\nTo: root\nSubject: auth-seal-rewritten\n\nhello\n");
    expect(r.data).toStartWith("250 2.0.0");
    const m = await sys.message("auth-seal-rewritten");
    expect(m.text).not.toContain("ARC-Seal:");
    expect(m.text).toContain(`To: root@${HOST}`);
    await sys.waitForLog(new RegExp(`${m.id}: ARC seal left out: cleanup changed the header fields or the body it covers`));
  }, 60_000);

  test("a DNS timeout is temperror, never a fail: accepted even where enforcement is on", async () => {
    const r = await send("enforce", "joe@slow.example", "From: joe@slow.example\nSubject: auth-timeout\n\nhello\n");
    expect(r.rcpt).toStartWith("250");
    expect(r.data).toStartWith("250 2.0.0");
    const ar = await authResults("auth-timeout");
    expect(ar[0]).toMatch(/spf=temperror/);
    expect(ar[0]).toMatch(/dmarc=temperror/);
    expect(ar[0]).not.toMatch(/=(?:pass|fail)\b/);
  }, 60_000);

  test("Authentication-Results: headers that claim this host are removed; another host's stay", async () => {
    const forged = `Authentication-Results: ${HOST.toUpperCase()}; dkim=pass header.d=bad.example; spf=pass; dmarc=pass\nAuthentication-Results: (comment)\n ${HOST}; arc=pass\nAuthentication-Results: mx.other.example; spf=pass smtp.mailfrom=bad.example\n`;
    const r = await send("smtp", "mallory@bad.example", `${forged}From: boss@bad.example\nSubject: auth-forged\n\nbody\n`);
    expect(r.data).toStartWith("250 2.0.0");
    const ar = await authResults("auth-forged");
    expect(ar).toHaveLength(2);
    expect(ar[0]).toMatch(/spf=fail/);
    expect(ar[0]).not.toMatch(/dkim=pass/);
    expect(ar[1]).toBe("Authentication-Results: mx.other.example; spf=pass smtp.mailfrom=bad.example");
  }, 60_000);

  test("a client in mynetworks is not checked: no header added, none removed", async () => {
    const r = await send("inside", "alice@bad.example", `Authentication-Results: ${HOST}; spf=pass\nFrom: alice@bad.example\nSubject: auth-inside\n\nbody\n`);
    expect(r.data).toStartWith("250 2.0.0");
    expect(await authResults("auth-inside")).toEqual([`Authentication-Results: ${HOST}; spf=pass`]);
  }, 60_000);
});

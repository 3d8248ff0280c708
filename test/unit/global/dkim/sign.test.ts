/**
 * The DKIM signer against an independent verifier (python3-dkim): relaxed
 * and simple canonicalization, RSA and Ed25519, 8-bit bodies, folded and
 * oddly spaced headers, trailing blanks and empty lines at the end of the
 * body, over-signed From.
 */
import { describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { dkimSignature, canonicalBody, type Canonicalization } from "../../../../src/global/dkim/sign.ts";
import { dkimRecordText } from "../../../../src/global/dkim/keys.ts";
import { splitMessage } from "../../../../src/global/message/header-split.ts";
import { verifyDkim } from "../../../helpers/dkim-verify.ts";

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
const ed = generateKeyPairSync("ed25519").privateKey;

const MESSAGE = Buffer.concat([
  Buffer.from(
    "From: Alice <alice@example.test>\nTo: bob@example.org,\n\t  carol@example.org\nSubject:   a  subject\n   folded\tacross lines  \nDate: Mon, 7 Dec 2026 07:00:00 +0000\nMessage-Id: <x@example.test>\n\n",
    "latin1",
  ),
  Buffer.from("Grüße aus Köln  \n\ttabbed   line\t\n.leading dot\n\n\n\n", "utf8"),
]);

function sign(content: Buffer, key = rsa, header: Canonicalization = "relaxed", body: Canonicalization = "relaxed"): Buffer {
  const split = splitMessage(content, { lineLengthLimit: 1e9, headerSizeLimit: 1e9 });
  const sig = dkimSignature(split.headers, content.subarray(split.bodyOffset + 1), { domain: "example.test", selector: "s1", key }, {
    header,
    body,
    signedHeaders: ["From", "To", "Subject", "Date", "Message-Id", "Cc"],
    oversignedHeaders: ["From"],
    time: Math.floor(Date.now() / 1000),
  });
  // as the SMTP client sends it
  return Buffer.from(Buffer.concat([Buffer.from(`${sig}\n`, "latin1"), content]).toString("latin1").replace(/\n/g, "\r\n"), "latin1");
}

describe("DKIM signatures verified by python3-dkim", () => {
  for (const [h, b] of [
    ["relaxed", "relaxed"],
    ["simple", "simple"],
    ["relaxed", "simple"],
  ] as const) {
    test(`rsa-sha256 ${h}/${b}`, () => {
      const signed = sign(MESSAGE, rsa, h, b);
      expect(verifyDkim(signed, { "s1._domainkey.example.test": dkimRecordText(rsa) }).results).toEqual([true]);
    });
  }

  test("ed25519-sha256 (RFC 8463)", () => {
    const signed = sign(MESSAGE, ed);
    expect(signed.toString("latin1")).toContain("a=ed25519-sha256");
    expect(verifyDkim(signed, { "s1._domainkey.example.test": dkimRecordText(ed) }).results).toEqual([true]);
  });

  test("a changed body, or a From: header added on top, fails", () => {
    const signed = sign(MESSAGE).toString("latin1");
    const records = { "s1._domainkey.example.test": dkimRecordText(rsa) };
    expect(verifyDkim(Buffer.from(signed.replace("tabbed", "tabbeD"), "latin1"), records).results).toEqual([false]);
    expect(verifyDkim(Buffer.from(signed.replace("\r\nFrom:", "\r\nFrom: mallory@evil.example\r\nFrom:"), "latin1"), records).results).toEqual([false]);
    expect(signed).toMatch(/h=from:from:to:subject:date:message-id;/);
  });

  test("relaxed body canonicalization: blanks reduced, empty lines at the end dropped", () => {
    expect(canonicalBody(Buffer.from("a  b \t\nc\n\n\n"), "relaxed").toString()).toBe("a b\r\nc\r\n");
    expect(canonicalBody(Buffer.from(""), "relaxed").toString()).toBe("");
    expect(canonicalBody(Buffer.from(""), "simple").toString()).toBe("\r\n");
    expect(canonicalBody(Buffer.from("x"), "simple").toString()).toBe("x\r\n");
  });
});

import { describe, expect, test } from "bun:test";
import { generateKeyPairSync } from "node:crypto";
import { mailauthResolver } from "../../../../src/global/dns/mailauth-resolver.ts";
import { Resolver } from "../../../../src/global/dns/resolver.ts";
import { useFakeDns } from "../../../helpers/fake-dns.ts";

const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const DKIM_RECORD = `v=DKIM1; k=rsa; p=${publicKey.export({ type: "spki", format: "der" }).toString("base64")}`;

const dns = useFakeDns({
  "example.com": {
    A: ["192.0.2.1"],
    AAAA: ["2001:db8::1"],
    MX: [[10, "mx.example.com"]],
    TXT: ["v=spf1 ip4:192.0.2.0/24 -all", ["two ", "strings"]],
    NS: ["ns.example.com"],
    SOA: ["ns.example.com", "hostmaster.example.com", 7, 3600, 600, 86400, 300],
  },
  "www.example.com": { CNAME: "example.com" },
  "1.2.0.192.in-addr.arpa": { PTR: ["example.com"] },
  "nullmx.example": { MX: [[0, "."]] },
  "_25._tcp.mx.example.com": { TLSA: [[3, 1, 1, "c0ffee"]] },
  "s2048._domainkey.example.com": { TXT: [DKIM_RECORD] },
  "servfail.example": { rcode: "SERVFAIL" },
  "refused.example": { rcode: "REFUSED" },
  "timeout.example": { drop: true },
  "long-spf.example": { TXT: [`v=spf1 ${Array.from({ length: 30 }, (_, i) => `ip4:198.51.100.${i}`).join(" ")} ip4:203.0.113.9 -all`] },
});

const resolve = () => mailauthResolver(new Resolver(dns.resolverOptions({ timeoutMs: 200 })));
/** The same, typed as node's resolve() is used: rrtype optional, any answer shape. */
const resolveAny = () => resolve() as unknown as (name: string, rrtype?: string) => Promise<unknown>;

async function codeOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return "resolved";
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe("the mailauth resolver has dns.promises.resolve's shapes", () => {
  test("records", async () => {
    const r = resolveAny();
    expect(await r("example.com", "A")).toEqual(["192.0.2.1"]);
    expect(await r("example.com")).toEqual(["192.0.2.1"]);
    expect(await r("example.com", "AAAA")).toEqual(["2001:db8::1"]);
    expect(await r("example.com", "MX")).toEqual([{ exchange: "mx.example.com", priority: 10 }]);
    expect(await r("nullmx.example", "MX")).toEqual([{ exchange: "", priority: 0 }]);
    expect(await r("example.com", "TXT")).toEqual([["v=spf1 ip4:192.0.2.0/24 -all"], ["two ", "strings"]]);
    expect(await r("www.example.com", "CNAME")).toEqual(["example.com"]);
    expect(await r("example.com", "NS")).toEqual(["ns.example.com"]);
    expect(await r("1.2.0.192.in-addr.arpa", "PTR")).toEqual(["example.com"]);
    expect(await r("example.com", "SOA")).toEqual({ nsname: "ns.example.com", hostmaster: "hostmaster.example.com", serial: 7, refresh: 3600, retry: 600, expire: 86400, minttl: 300 });
    const tlsa = (await r("_25._tcp.mx.example.com", "TLSA")) as { certUsage: number; selector: number; match: number; data: ArrayBuffer }[];
    expect(tlsa.map((t) => [t.certUsage, t.selector, t.match, Buffer.from(t.data).toString("hex")])).toEqual([[3, 1, 1, "c0ffee"]]);
  });

  test("errors carry the codes mailauth reads, in node's shape", async () => {
    const r = resolveAny();
    expect(await codeOf(r("nonexistent.example.com", "TXT"))).toBe("ENOTFOUND");
    expect(await codeOf(r("example.com", "PTR"))).toBe("ENODATA");
    expect(await codeOf(r("servfail.example", "TXT"))).toBe("ESERVFAIL");
    expect(await codeOf(r("refused.example", "TXT"))).toBe("EREFUSED");
    expect(await codeOf(r("timeout.example", "TXT"))).toBe("ETIMEOUT");
    expect(await codeOf(r(`${"x".repeat(70)}.example`, "TXT"))).toBe("EBADNAME");
    expect(await codeOf(r("example.com", "HINFO"))).toBe("ENOTIMP");
    try {
      await r("nonexistent.example.com", "TXT");
    } catch (err) {
      expect(err).toMatchObject({ message: "queryTxt ENOTFOUND nonexistent.example.com", syscall: "queryTxt", hostname: "nonexistent.example.com" });
    }
  });
});

describe("mailauth with postern's resolver", () => {
  test("SPF: pass, fail, and temperror on SERVFAIL; a record longer than 255 bytes is read whole", async () => {
    const { spf } = await import("mailauth/lib/spf");
    const base = { helo: "mx.example.org", mta: "mx.postern.test", resolver: resolve() };
    expect((await spf({ ...base, sender: "a@example.com", ip: "192.0.2.55" })).status.result).toBe("pass");
    expect((await spf({ ...base, sender: "a@example.com", ip: "198.51.100.1" })).status.result).toBe("fail");
    expect((await spf({ ...base, sender: "a@servfail.example", ip: "192.0.2.55" })).status.result).toBe("temperror");
    expect((await spf({ ...base, sender: "a@long-spf.example", ip: "203.0.113.9" })).status.result).toBe("pass");
  });

  test("DKIM: a signature made with a 2048-bit key verifies against the key split over TXT strings", async () => {
    const { dkimSign } = await import("mailauth/lib/dkim/sign");
    const { dkimVerify } = await import("mailauth/lib/dkim/verify");
    const message = "From: a@example.com\r\nTo: b@example.org\r\nSubject: hello\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@example.com>\r\n\r\nHello.\r\n";
    const pem = privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    const sign = (selector: string) => dkimSign(message, { signatureData: [{ signingDomain: "example.com", selector, privateKey: pem }] } as never);
    const signed = await sign("s2048");
    expect(signed.signatures).toContain("DKIM-Signature:");
    const result = await dkimVerify(signed.signatures + message, { resolver: resolve() });
    expect(result.results.map((r: { status: { result: string } }) => r.status.result)).toEqual(["pass"]);
    // and a wrong selector finds no key
    const other = await sign("missing");
    const none = await dkimVerify(other.signatures + message, { resolver: resolve() });
    expect(none.results.map((r: { status: { result: string; comment?: string } }) => [r.status.result, r.status.comment])).toEqual([["neutral", "no key"]]);
  });
});

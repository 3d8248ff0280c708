/**
 * MTA-STS in the SMTP client (smtp_mta_sts_enable, RFC 8461): the policy is
 * found through the fake DNS server's `_mta-sts` TXT record and fetched from
 * an HTTPS server on 127.0.0.1 (smtp_mta_sts_policy_port) whose certificate
 * (mta-sts.sts.example) test/fixtures/test-ca/ca.crt issued; the MX server
 * presents mx.sts.example's certificate from the same CA, or the
 * self-signed localhost one where a test wants it untrusted.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { CERT, KEY, type Params, useAgentTests } from "../../helpers/smtp-client-bench.ts";
import { useFakeDns } from "../../helpers/fake-dns.ts";
import type { FakeSmtpOptions } from "../../helpers/smtp-server.ts";

const FIXTURES = join(import.meta.dir, "../../fixtures/test-ca");
const CA_FILE = join(FIXTURES, "ca.crt");
const read = (name: string) => readFileSync(join(FIXTURES, name), "utf8");
const MX_TLS = { cert: read("mx.sts.example.crt"), key: read("mx.sts.example.key") };

const dns = useFakeDns({
  "_mta-sts.sts.example": { TXT: ["v=STSv1; id=20261207T1;"] },
  "mta-sts.sts.example": { A: ["127.0.0.1"] },
  "sts.example": { MX: [[10, "mx.sts.example"]] },
  "mx.sts.example": { A: ["127.0.0.1"] },
});

let policyText = "";
let fetches = 0;
let https: ReturnType<typeof Bun.serve> | undefined;
beforeAll(() => {
  https = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    tls: { cert: read("mta-sts.sts.example.crt"), key: read("mta-sts.sts.example.key") },
    fetch(req) {
      fetches++;
      if (new URL(req.url).pathname !== "/.well-known/mta-sts.txt") return new Response("no", { status: 404 });
      return new Response(policyText, { headers: { "content-type": "text/plain" } });
    },
  });
});
afterAll(() => {
  https?.stop(true);
});

const tests = useAgentTests({ dns, server: { tls: MX_TLS, starttls: true } });

const policy = (mode: string, mx: string[] = ["mx.sts.example"]) => `version: STSv1\nmode: ${mode}\n${mx.map((m) => `mx: ${m}\n`).join("")}max_age: 86400\n`;

/** An MX server, and a bench with MTA-STS on whose cache lives in `cacheDir`. */
function setUp(mode: string, opts: { params?: Params; server?: FakeSmtpOptions; mx?: string[]; cacheDir?: string } = {}) {
  policyText = policy(mode, opts.mx);
  fetches = 0;
  const s = tests.server(opts.server ?? {});
  const cacheDir = opts.cacheDir ?? tests.scratch("postern-sts-");
  const b = tests.bench({
    smtp_tcp_port: s.port,
    smtp_mta_sts_enable: "yes",
    smtp_mta_sts_CAfile: CA_FILE,
    smtp_mta_sts_policy_port: String(https!.port),
    smtp_mta_sts_cache_file: join(cacheDir, "sts.json"),
    smtp_tls_CAfile: CA_FILE,
    smtp_tls_loglevel: 1,
    ...opts.params,
  });
  return { s, b, cacheDir };
}

const send = (b: ReturnType<typeof setUp>["b"]) => b.deliver({ nexthop: "sts.example", recipients: ["user@sts.example"] });

describe("MTA-STS enforce", () => {
  test("a named MX host with a certificate for its name: delivered over verified TLS", async () => {
    const { s, b } = setUp("enforce");
    const [r] = await send(b);
    expect(r).toMatchObject({ status: "sent", relay: `mx.sts.example[127.0.0.1]:${s.port}` });
    expect(s.messages[0]!.tls).toBe(true);
    expect(b.logLines().some((l) => l.includes(`Verified TLS connection established to mx.sts.example[127.0.0.1]:${s.port}`))).toBe(true);
    expect(fetches).toBe(1);
  });

  test("a certificate the trust store does not vouch for: deferred, nothing sent", async () => {
    const { s, b } = setUp("enforce", { server: { tls: { cert: CERT, key: KEY } } });
    const [r] = await send(b);
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: "Server certificate not trusted" });
    expect(s.transactions).toBe(0);
  });

  test("no STARTTLS: deferred, never in plaintext", async () => {
    const { s, b } = setUp("enforce", { server: { starttls: false } });
    const [r] = await send(b);
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.4" });
    expect(s.transactions).toBe(0);
  });

  test("an MX host the policy does not name is not used", async () => {
    const { s, b } = setUp("enforce", { mx: ["*.elsewhere.example"] });
    const [r] = await send(b);
    expect(r).toMatchObject({ status: "deferred", dsn: "4.7.5", reason: "MTA-STS policy for sts.example: no MX host matches the policy" });
    expect(s.connections).toBe(0);
    expect(b.logLines().some((l) => l.includes("MTA-STS policy for sts.example (enforce): MX host mx.sts.example is not named by the policy; not used"))).toBe(true);
  });

  test("a wildcard pattern names one label: *.sts.example takes mx.sts.example", async () => {
    const { s, b } = setUp("enforce", { mx: ["*.sts.example"] });
    const [r] = await send(b);
    expect(r!.status).toBe("sent");
    expect(s.messages).toHaveLength(1);
  });

  test("an smtp_tls_policy_maps entry for the destination is the administrator's word", async () => {
    const { s, b } = setUp("enforce", { server: { tls: { cert: CERT, key: KEY } }, params: { smtp_tls_policy_maps: "inline:{ sts.example=may }" } });
    const [r] = await send(b);
    expect(r!.status).toBe("sent");
    expect(s.messages).toHaveLength(1);
  });
});

describe("MTA-STS testing and none", () => {
  test("testing: what enforce would refuse is logged, and the mail goes as without a policy", async () => {
    const { s, b } = setUp("testing", { mx: ["mx.other.example"], server: { tls: { cert: CERT, key: KEY } } });
    const [r] = await send(b);
    expect(r!.status).toBe("sent");
    expect(s.messages).toHaveLength(1);
    expect(b.logLines().some((l) => l.includes("MTA-STS policy for sts.example (testing): MX host mx.sts.example is not named by the policy"))).toBe(true);
  });

  test("none: no policy", async () => {
    const { s, b } = setUp("none", { server: { tls: { cert: CERT, key: KEY } } });
    const [r] = await send(b);
    expect(r!.status).toBe("sent");
    expect(s.messages).toHaveLength(1);
  });
});

describe("the policy cache", () => {
  test("survives a restart: the next agent applies the cached policy without fetching; a new TXT id fetches again", async () => {
    const first = setUp("enforce");
    expect((await send(first.b))[0]!.status).toBe("sent");
    expect(fetches).toBe(1);
    const file = join(first.cacheDir, "sts.json");
    expect(existsSync(file)).toBe(true);
    expect(JSON.parse(readFileSync(file, "utf8"))).toEqual([expect.objectContaining({ domain: "sts.example", id: "20261207T1", mode: "enforce", mx: ["mx.sts.example"] })]);

    // a new agent (a restarted queue manager), the policy host now serving something else
    const second = setUp("none", { cacheDir: first.cacheDir, server: { tls: { cert: CERT, key: KEY } } });
    const [r] = await send(second.b);
    expect(fetches).toBe(0);
    expect(r).toMatchObject({ status: "deferred", reason: "Server certificate not trusted" });

    dns.set("_mta-sts.sts.example", { TXT: ["v=STSv1; id=20261207T2;"] });
    try {
      const third = setUp("none", { cacheDir: first.cacheDir, server: { tls: { cert: CERT, key: KEY } } });
      const [r3] = await send(third.b);
      expect(fetches).toBe(1);
      expect(r3!.status).toBe("sent");
    } finally {
      dns.set("_mta-sts.sts.example", { TXT: ["v=STSv1; id=20261207T1;"] });
    }
  });

  test("a policy host that cannot be trusted gives no policy (and no cache entry)", async () => {
    const { s, b, cacheDir } = setUp("enforce", { params: { smtp_mta_sts_CAfile: join(import.meta.dir, "../../fixtures/tls/localhost.crt") }, server: { tls: { cert: CERT, key: KEY } } });
    const [r] = await send(b);
    expect(r!.status).toBe("sent");
    expect(s.messages).toHaveLength(1);
    expect(existsSync(join(cacheDir, "sts.json"))).toBe(false);
    expect(b.logLines().some((l) => l.includes("MTA-STS: sts.example: cannot fetch the policy"))).toBe(true);
  });
});

/**
 * REDIRECT and BCC actions end to end (issue 14), from an access table and
 * from a policy server (check_policy_service, a server in this test): a
 * redirected message goes to the redirect address only, once, whatever its
 * recipients were; a BCC action adds a recipient the headers do not name.
 * The next hop is a Python sink.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { isRoot, message } from "../../helpers/mail-system.ts";
import { startPolicyServer, type PolicyServer } from "../../helpers/policy-server.ts";
import { relayToSink, type RelayToSink } from "../../helpers/relay-sink.ts";
import { RawSmtp } from "../../helpers/smtpd-system.ts";

async function submit(port: number, subject: string, recipients: string[]): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    expect(await c.reply()).toMatch(/^220 /);
    await c.cmd("EHLO client.example");
    expect(await c.cmd("MAIL FROM:<alice@client.example>")).toMatch(/^250 /);
    for (const r of recipients) expect(await c.cmd(`RCPT TO:<${r}>`)).toMatch(/^250 /);
    expect(await c.cmd("DATA")).toMatch(/^354 /);
    const r = await c.cmd(`${message(subject, "Hello.\n", `To: ${recipients.join(", ")}\n`).replace(/\n/g, "\r\n")}.`);
    expect(r).toMatch(/^250 /);
    return /queued as ([0-9A-F]+)/.exec(r)![1]!;
  } finally {
    await c.quit();
  }
}

describe.skipIf(!isRoot)("REDIRECT and BCC actions", () => {
  let bench: RelayToSink;
  let policy: PolicyServer;

  beforeAll(async () => {
    policy = await startPolicyServer((req) => {
      const rcpt = req.get("recipient");
      if (rcpt === "pol-redirect@remote.example") return "action=REDIRECT pol-target@remote.example\n\n";
      if (rcpt === "pol-bcc@remote.example") return "action=BCC pol-copy@remote.example\n\n";
      return "action=DUNNO\n\n";
    });
    bench = await relayToSink({
      mynetworks: "127.0.0.0/8",
      smtpd_recipient_restrictions:
        "check_recipient_access inline:{{redir@remote.example = REDIRECT target@remote.example}, {copied@remote.example = BCC archive@remote.example}}, " +
        `check_policy_service ${policy.address}, permit_mynetworks, reject`,
    });
  }, 90_000);

  afterAll(async () => {
    await bench?.stop();
    await policy?.stop();
  });

  const only = async (subject: string) => {
    const m = await bench.atSink(subject);
    await bench.sys.waitForEmptyQueue();
    expect(bench.sink.messages().filter((x) => x.data.includes(`Subject: ${subject}`)).length).toBe(1);
    return m;
  };

  test("access table REDIRECT: every recipient replaced by the redirect address, delivered once", async () => {
    const id = await submit(bench.sys.port, "act-redirect", ["redir@remote.example", "other@remote.example"]);
    const m = await only("act-redirect");
    expect(m.rcpt_tos).toEqual(["target@remote.example"]);
    expect(bench.sys.log()).toContain(`${id}: redirect: RCPT from `);
    expect(bench.sys.log()).toMatch(new RegExp(`${id}: to=<target@remote.example>, orig_to=<redir@remote.example>, .*status=sent`));
  }, 60_000);

  test("access table BCC: one more recipient, not named in the headers", async () => {
    await submit(bench.sys.port, "act-bcc", ["copied@remote.example"]);
    const m = await only("act-bcc");
    expect(m.rcpt_tos.sort()).toEqual(["archive@remote.example", "copied@remote.example"]);
    expect(m.data).not.toContain("archive@");
  }, 60_000);

  test("a policy server's REDIRECT and BCC", async () => {
    await submit(bench.sys.port, "pol-redirect", ["pol-redirect@remote.example", "x@remote.example"]);
    expect((await only("pol-redirect")).rcpt_tos).toEqual(["pol-target@remote.example"]);
    await submit(bench.sys.port, "pol-bcc", ["pol-bcc@remote.example"]);
    expect((await only("pol-bcc")).rcpt_tos.sort()).toEqual(["pol-bcc@remote.example", "pol-copy@remote.example"]);
    expect(policy.requests.some((r) => r.get("protocol_state") === "RCPT" && r.get("client_address") === "127.0.0.1")).toBe(true);
  }, 60_000);
});

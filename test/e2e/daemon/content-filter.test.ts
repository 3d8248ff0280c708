/**
 * After-queue content filters end to end (FILTER_README; issue 14, part 4):
 * the smtp service has `content_filter`, so the queue manager hands each
 * message to the filter instead of delivering it; the filter re-injects it
 * through a second listener whose override clears content_filter, and the
 * message reaches the next hop (a Python sink) once, with the filter's
 * header. When the filter is down, mail waits in the queue: never lost,
 * never delivered unfiltered. Also a FILTER action from an access table,
 * and a pipe(8) filter script that re-injects with `sendmail -G -i`.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { PasswdEntry } from "../../../src/util/passwd.ts";
import { startFilterProxy, type FilterProxy } from "../../helpers/filter-proxy.ts";
import { ensureMailOwner, isRoot, message, TestUsers } from "../../helpers/mail-system.ts";
import { startPythonSink, type PythonSink } from "../../helpers/python-sink.ts";
import { bin } from "../../helpers/run.ts";
import { freePort, RawSmtp, SmtpdSystem, waitFor } from "../../helpers/smtpd-system.ts";

const users = new TestUsers("pcf");

async function submit(port: number, subject: string, recipients: string[], sender = "alice@client.example"): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    expect(await c.reply()).toMatch(/^220 /);
    await c.cmd("EHLO client.example");
    expect(await c.cmd(`MAIL FROM:<${sender}>`)).toMatch(/^250 /);
    for (const r of recipients) expect(await c.cmd(`RCPT TO:<${r}>`)).toMatch(/^250 /);
    expect(await c.cmd("DATA")).toMatch(/^354 /);
    const r = await c.cmd(`${message(subject).replace(/\n/g, "\r\n")}.`);
    expect(r).toMatch(/^250 /);
    return /queued as ([0-9A-F]+)/.exec(r)![1]!;
  } finally {
    await c.quit();
  }
}

describe.skipIf(!isRoot)("content_filter (after queue)", () => {
  let sys: SmtpdSystem;
  let sink: PythonSink;
  let proxy: FilterProxy | undefined;
  let filterPort: number;
  let filterUser: PasswdEntry;

  const atSink = (subject: string) => sink.messages().filter((m) => m.data.includes(`Subject: ${subject}`));

  beforeAll(async () => {
    ensureMailOwner();
    sink = await startPythonSink();
    filterPort = freePort();
    const reinjectPort = freePort();
    const nofilterPort = freePort();
    sys = new SmtpdSystem(
      { default_transport: "smtp", relayhost: `[127.0.0.1]:${sink.port}`, mynetworks: "127.0.0.0/8" },
      {
        smtp: { content_filter: `smtp:[127.0.0.1]:${filterPort}` },
        // the re-injection listener: no content filter here, or the message would go round for ever
        reinject: { listen: `127.0.0.1:${reinjectPort}`, content_filter: "" },
        // a listener without content_filter whose access table sends some recipients to the filter
        nofilter: { listen: `127.0.0.1:${nofilterPort}`, smtpd_recipient_restrictions: `check_recipient_access inline:{{scan@remote.example = FILTER smtp:[127.0.0.1]:${filterPort}}}, permit_mynetworks, reject` },
        // a listener whose mail goes through the pipe(8) filter below
        piped: { content_filter: "pipefilter:dummy" },
      },
    );
    filterUser = users.add("f", join(sys.dir, "home"));
    // FILTER_README's simple filter: a script run by pipe(8) that re-injects with sendmail -G -i
    const script = join(sys.dir, "filter.sh");
    writeFileSync(
      script,
      `#!/bin/sh\n# FILTER_README's simple content filter: add a header, re-inject with sendmail\nsender="$2"; shift 3\n{ echo "X-Pipe-Filter: seen"; cat; } | ${bin("sendmail")} -C ${sys.etc} -G -i -f "$sender" -- "$@"\nexit $?\n`,
      { mode: 0o755 },
    );
    sys.servicesToml += `\n[services.pipefilter]\nrole = "pipe"\nflags = "Rq"\nuser = "${filterUser.name}"\nnull_sender = ""\nargv = "${script} -f \${sender} -- \${recipient}"\n`;
    sys.writeConfig();
    const check = await sys.postern(["check"]);
    expect(check.code).toBe(0);
    expect(check.stderr).not.toContain("content_filter");
    await sys.start();
  }, 90_000);

  afterAll(async () => {
    await proxy?.stop();
    await sys?.cleanup();
    sink?.stop();
    users.removeAll();
  });

  test("the message goes to the filter, comes back through the second listener, and is delivered once with the filter's header", async () => {
    proxy = await startFilterProxy(sys.ports.reinject!, "X-Content-Filter: scanned", filterPort);
    const id = await submit(sys.ports.smtp!, "cf-one", ["bob@remote.example", "carol@remote.example"]);
    const [m] = await waitFor("the filtered message at the sink", () => (atSink("cf-one").length ? atSink("cf-one") : undefined));
    // the re-injection listener's Received: on top, then the filter's header, then the first Received:
    expect(m!.data).toMatch(/^Received: from filter\.test [\s\S]*\r\nX-Content-Filter: scanned\r\nReceived: from client\.example /);
    expect(m!.rcpt_tos.sort()).toEqual(["bob@remote.example", "carol@remote.example"]);
    expect(m!.mail_from).toBe("alice@client.example");
    expect(proxy.received.find((r) => r.recipients.includes("bob@remote.example"))?.sender).toBe("alice@client.example");
    await sys.waitForEmptyQueue();
    expect(atSink("cf-one").length).toBe(1);
    // the original went to the filter's next hop, the copy it re-injected to the relay
    expect(sys.log()).toMatch(new RegExp(`${id}: to=<bob@remote.example>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${filterPort},.*status=sent`));
  }, 60_000);

  test("filter down: the message waits in the queue, then goes through the filter once it is back", async () => {
    await proxy?.stop();
    proxy = undefined;
    const id = await submit(sys.ports.smtp!, "cf-down", ["dave@remote.example"]);
    await sys.waitForLog(new RegExp(`${id}: to=<dave@remote.example>.*status=deferred`));
    expect(sys.queueIds("deferred").concat(sys.queueIds("active"), sys.queueIds("incoming"))).toContain(id);
    expect(atSink("cf-down")).toEqual([]);
    proxy = await startFilterProxy(sys.ports.reinject!, "X-Content-Filter: late", filterPort);
    const [m] = await waitFor("the filtered message at the sink", () => (atSink("cf-down").length ? atSink("cf-down") : undefined), 30_000);
    expect(m!.data).toContain("\r\nX-Content-Filter: late\r\n");
    await sys.waitForEmptyQueue();
    expect(atSink("cf-down").length).toBe(1);
  }, 60_000);

  test("a FILTER action of an access table sends that message to the filter; others are delivered directly", async () => {
    proxy ??= await startFilterProxy(sys.ports.reinject!, "X-Content-Filter: scanned", filterPort);
    const id = await submit(sys.ports.nofilter!, "cf-action", ["scan@remote.example"]);
    await sys.waitForLog(new RegExp(`${id}: filter: RCPT from .*: <scan@remote.example>: Recipient address triggers FILTER smtp:\\[127.0.0.1\\]:${filterPort}`));
    await submit(sys.ports.nofilter!, "cf-plain", ["plain@remote.example"]);
    const [m] = await waitFor("the filtered message", () => (atSink("cf-action").length ? atSink("cf-action") : undefined));
    expect(m!.data).toContain("\r\nX-Content-Filter: ");
    const [p] = await waitFor("the plain message", () => (atSink("cf-plain").length ? atSink("cf-plain") : undefined));
    expect(p!.data).not.toContain("X-Content-Filter");
    await sys.waitForEmptyQueue();
  }, 60_000);

  test("a pipe(8) filter script re-injects with sendmail -G -i; the message is delivered once, filtered", async () => {
    await submit(sys.ports.piped!, "cf-pipe", ["erin@remote.example", "frank@remote.example"]);
    const [m] = await waitFor("the filtered message at the sink", () => (atSink("cf-pipe").length ? atSink("cf-pipe") : undefined));
    expect(m!.data).toContain("X-Pipe-Filter: seen");
    expect(m!.rcpt_tos.sort()).toEqual(["erin@remote.example", "frank@remote.example"]);
    expect(m!.mail_from).toBe("alice@client.example");
    await sys.waitForEmptyQueue();
    expect(atSink("cf-pipe").length).toBe(1);
  }, 60_000);
});

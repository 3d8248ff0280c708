/**
 * smtp_generic_maps end to end (issue 12, part 2): mail relayed through
 * relayhost to the Python sink leaves with its envelope sender, envelope
 * recipients and From:/To:/Cc: headers mapped by the generic table
 * (ADDRESS_REWRITING_README's "Generic mapping for outgoing SMTP mail"),
 * while the queue and the log keep the local addresses. A generic table the
 * SMTP client cannot read defers the delivery (4.3.0, nothing sent, nothing
 * bounced); once it is readable, a flush delivers the message rewritten.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync } from "node:fs";
import { ensureMailOwner, HOST, isRoot, message, waitFor } from "../../helpers/mail-system.ts";
import { startPythonSink, type PythonSink } from "../../helpers/python-sink.ts";
import { relayToSink, type RelayToSink } from "../../helpers/relay-sink.ts";
import { SmtpdSystem } from "../../helpers/smtpd-system.ts";

const GENERIC = `his@${HOST}  hisaccount@hisisp.example\nher@${HOST}  heraccount@herisp.example\n@${HOST}  catchall+local@hisisp.example\n`;

describe.skipIf(!isRoot)("smtp_generic_maps", () => {
  let sys: SmtpdSystem;
  let sink: PythonSink;
  let bench: RelayToSink;
  let table: string;

  beforeAll(async () => {
    // every recipient is relayed: the host's own domain is not a local destination here
    bench = await relayToSink({ mynetworks: "127.0.0.0/8" }, (s) => {
      table = s.etcFile("generic", GENERIC);
      return { mydestination: "", smtp_generic_maps: `texthash:${table}` };
    });
    ({ sys, sink } = bench);
  }, 60_000);

  afterAll(() => bench?.stop());

  const atSink = (subject: string) => bench.atSink(subject);

  test("envelope sender, recipients and From:/To:/Cc: go out mapped; the log keeps the queued addresses", async () => {
    const headers = `From: His Name <his@${HOST}>\nTo: her@${HOST}, friend@remote.example\nCc: other@${HOST}\n`;
    await sys.send([`her@${HOST}`, "friend@remote.example"], `${headers}${message("generic-out")}`, { sender: `his@${HOST}` });
    const m = await atSink("generic-out");
    expect(m.mail_from).toBe("hisaccount@hisisp.example");
    expect([...m.rcpt_tos].sort()).toEqual(["friend@remote.example", "heraccount@herisp.example"]);
    expect(m.data).toContain("From: His Name <hisaccount@hisisp.example>\r\n");
    expect(m.data).toContain("To: heraccount@herisp.example, friend@remote.example\r\n");
    expect(m.data).toContain("Cc: catchall+local@hisisp.example\r\n");
    await sys.waitForLog(new RegExp(`to=<her@${HOST.replace(/\./g, "\\.")}>, relay=127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${sink.port}, .*status=sent`));
  }, 60_000);
});

describe.skipIf(!isRoot)("smtp_generic_maps that cannot be read", () => {
  let sys: SmtpdSystem;
  let sink: PythonSink;
  let table: string;

  beforeAll(async () => {
    ensureMailOwner();
    sink = await startPythonSink();
    sys = new SmtpdSystem({ default_transport: "smtp", relayhost: `[127.0.0.1]:${sink.port}`, mynetworks: "127.0.0.0/8" });
    table = sys.etcFile("generic", GENERIC);
    chmodSync(table, 0o000);
    sys.writeConfig({ mydestination: "", smtp_generic_maps: `texthash:${table}` });
    await sys.start();
  }, 60_000);

  afterAll(async () => {
    await sys?.cleanup();
    sink?.stop();
  });

  test("the delivery is deferred 4.3.0 with nothing sent; a flush once it is readable delivers it rewritten", async () => {
    await sys.send([`her@${HOST}`], `From: his@${HOST}\n${message("generic-unreadable")}`, { sender: `his@${HOST}` });
    await sys.waitForLog(new RegExp(`to=<her@${HOST.replace(/\./g, "\\.")}>, .*dsn=4\\.3\\.0, status=deferred .*smtp_generic_maps map lookup problem for his@`));
    expect(sink.messages()).toEqual([]);
    expect(sys.log()).not.toMatch(/status=bounced/);

    chmodSync(table, 0o644);
    const flush = await sys.postern(["flush"]);
    expect(flush.code).toBe(0);
    const m = await waitFor("the deferred message at the sink", () => sink.messages().find((x) => x.data.includes("Subject: generic-unreadable")));
    expect(m.mail_from).toBe("hisaccount@hisisp.example");
    expect(m.rcpt_tos).toEqual(["heraccount@herisp.example"]);
    expect(m.data).toContain("From: hisaccount@hisisp.example\r\n");
  }, 60_000);
});

/**
 * smtpd_milters in the SMTP session: the real milter client and chain
 * (SmtpdMilters) talking to a scripted milter over 127.0.0.1, inside the
 * protocol engine with a fake transport. Each milter action at each stage,
 * the negotiation of skipped steps, macros, several milters in order, and
 * milter_default_action when a milter is down, hangs or breaks the protocol.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { SmtpdMilters } from "../../../src/smtpd/milters.ts";
import { configMaker } from "../../helpers/config.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";
import { freePort } from "../../helpers/ports.ts";
import { R, ScriptedMilter, type MilterOptions } from "../../helpers/milter-server.ts";
import { start } from "./protocol/harness.ts";
import { waitFor } from "../../helpers/wait.ts";

const root = tempDir("postern-milters-unit-");
const configFrom = configMaker(root, 'myhostname = "mx.example.test"\n');
const servers: ScriptedMilter[] = [];
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  removeDir(root);
});

async function milter(opts: MilterOptions = {}): Promise<ScriptedMilter> {
  const m = await new ScriptedMilter(opts).start();
  servers.push(m);
  return m;
}

/** A session whose smtpd_milters is `list` (extra: more postern.toml lines). */
function session(list: string, extra = "") {
  const config = configFrom(`smtpd_milters = ${JSON.stringify(list)}\n${extra}`);
  const milters = new SmtpdMilters(config, "smtpd_milters", { localAddress: "192.0.2.25", localPort: 25 }, (t) => warnings.push(t));
  const warnings: string[] = [];
  const h = start({ milters });
  return { ...h, warnings, milters };
}

const MESSAGE = "From: a@example.org\r\nSubject: test\r\n\r\nbody line\r\n.\r\n";

/** Greeting, EHLO, MAIL, one RCPT, DATA and the message; returns the end-of-data reply. */
async function send(h: ReturnType<typeof session>, message = MESSAGE, rcpts = ["b@example.net"]): Promise<string> {
  expect(await h.t.reply()).toMatch(/^220 /);
  expect(await h.t.cmd("EHLO client.example")).toMatch(/^250/);
  expect(await h.t.cmd("MAIL FROM:<a@example.org> SIZE=100")).toMatch(/^250/);
  for (const r of rcpts) expect(await h.t.cmd(`RCPT TO:<${r}>`)).toMatch(/^250/);
  expect(await h.t.cmd("DATA")).toMatch(/^354/);
  h.t.send(message);
  return h.t.reply(10_000);
}

describe("events and macros", () => {
  test("each stage reaches the milter in order with Postfix's macros", async () => {
    const m = await milter();
    const h = session(m.address);
    expect(await send(h)).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await h.t.cmd("QUIT");
    await h.done;
    h.milters.quit();
    await waitFor("SMFIC_QUIT", () => m.of("Q").length === 1);
    expect(m.events.map((e) => e.code).join("")).toBe("CHMRTLLNBEQ");
    const [c, helo, mail, rcpt] = [m.of("C")[0]!, m.of("H")[0]!, m.of("M")[0]!, m.of("R")[0]!];
    expect(c.strings[0]).toBe("client.example.org");
    expect(c.data.subarray(c.data.indexOf(0) + 1, c.data.indexOf(0) + 2).toString()).toBe("4");
    expect(c.macros).toMatchObject({ j: "mx.example.test", "{daemon_name}": "mx.example.test", "{daemon_addr}": "192.0.2.25", _: "client.example.org [192.0.2.7]" });
    expect(c.macros.v).toMatch(/^postern /);
    expect(helo.strings).toEqual(["client.example"]);
    expect(mail.strings).toEqual(["<a@example.org>", "SIZE=100"]);
    expect(mail.macros).toMatchObject({ "{mail_addr}": "a@example.org", "{mail_host}": "example.org", "{mail_mailer}": "smtp" });
    expect(rcpt.strings).toEqual(["<b@example.net>"]);
    expect(rcpt.macros).toMatchObject({ "{rcpt_addr}": "b@example.net", "{rcpt_host}": "example.net", "{rcpt_mailer}": "smtp" });
    // headers: the leading space eaten (no SMFIP_HDR_LEADSPC); the body with CRLF
    expect(m.of("L").map((e) => e.strings)).toEqual([
      ["From", "a@example.org"],
      ["Subject", "test"],
    ]);
    expect(m.of("B")[0]!.data.toString()).toBe("body line\r\n");
  });

  test("steps the milter skips in the negotiation are not sent; no-reply steps are not waited for", async () => {
    // NOHELO, NORCPT, NOHDRS; no reply for MAIL and the body
    const m = await milter({ protocol: (1 << 1) | (1 << 3) | (1 << 5) | (1 << 14) | (1 << 19) });
    const h = session(m.address);
    expect(await send(h)).toMatch(/^250 2\.0\.0/);
    expect(m.events.map((e) => e.code).join("")).toBe("CMTNBE");
  });

  test("milter_protocol no_header_reply only offers SMFIP_NR_HDR: a milter that still answers each header stays in step", async () => {
    const m = await milter({ script: (e) => (e.code === "E" ? R.replycode("550 5.7.1 refused at the end") : undefined) });
    const h = session(m.address, 'milter_protocol = "6 no_header_reply"\n');
    expect(await send(h)).toBe("550 5.7.1 refused at the end\r\n");
  });

  test("a milter that asks for a step the protocol version does not have is refused", async () => {
    // SMFIP_NR_CONN with protocol 2
    const m = await milter({ protocol: 1 << 12 });
    const h = session(m.address, 'milter_protocol = "2"\n');
    expect(await h.t.reply()).toMatch(/^220/);
    expect(await h.t.cmd("HELO c")).toBe("451 4.7.1 Service unavailable - try again later\r\n");
    expect(h.warnings.join("\n")).toMatch(/requested protocol options 0x1000 are not supported/);
  });

  test("macro lists the milter asks for replace Postfix's defaults; milter_*_macros are read", async () => {
    const m = await milter({ macroLists: [[0, "{client_addr} {client_name}"]] });
    const h = session(m.address, 'milter_mail_macros = "{auth_authen} i"\n');
    expect(await send(h)).toMatch(/^250/);
    expect(m.of("C")[0]!.macros).toEqual({ "{client_addr}": "192.0.2.7", "{client_name}": "client.example.org" });
    // not authenticated, no queue ID yet: nothing to send
    expect(m.of("M")[0]!.macros).toEqual({});
  });
});

describe("addresses", () => {
  test("a milter on a unix socket (unix:/path)", async () => {
    const m = await milter({ path: join(root, "milter.sock"), script: (e) => (e.code === "R" ? R.replycode("550 5.1.1 No such user here") : undefined) });
    const h = session(m.address);
    expect(await h.t.reply()).toMatch(/^220/);
    await h.t.cmd("EHLO c");
    await h.t.cmd("MAIL FROM:<a@example.org>");
    expect(await h.t.cmd("RCPT TO:<b@example.net>")).toBe("550 5.1.1 No such user here\r\n");
    expect(m.address).toMatch(/^unix:\//);
  });
});

describe("verdicts", () => {
  test("reject at RCPT refuses that recipient only, with Postfix's text and log", async () => {
    const m = await milter({ script: (e) => (e.code === "R" && e.strings[0] === "<bad@example.net>" ? R.reject() : undefined) });
    const h = session(m.address);
    expect(await h.t.reply()).toMatch(/^220/);
    await h.t.cmd("EHLO c");
    await h.t.cmd("MAIL FROM:<a@example.org>");
    expect(await h.t.cmd("RCPT TO:<bad@example.net>")).toBe("550 5.7.1 Command rejected\r\n");
    expect(await h.t.cmd("RCPT TO:<good@example.net>")).toMatch(/^250 2\.1\.5/);
    expect(h.logs.join("\n")).toContain("NOQUEUE: milter-reject: RCPT from client.example.org[192.0.2.7]: 550 5.7.1 Command rejected; from=<a@example.org> to=<bad@example.net> proto=ESMTP helo=<c>");
  });

  test("tempfail at MAIL", async () => {
    const m = await milter({ script: (e) => (e.code === "M" ? R.tempfail() : undefined) });
    const h = session(m.address);
    expect(await h.t.reply()).toMatch(/^220/);
    expect(await h.t.cmd("HELO good")).toMatch(/^250/);
    expect(await h.t.cmd("MAIL FROM:<a@example.org>")).toBe("451 4.7.1 Service unavailable - try again later\r\n");
    expect(h.logs.join("\n")).toContain("NOQUEUE: milter-reject: MAIL from client.example.org[192.0.2.7]: 451 4.7.1 Service unavailable - try again later;");
  });

  test("a reply code at HELO refuses it, and (a connect-time event, as in Postfix) the rest of the session", async () => {
    const m = await milter({ script: (e) => (e.code === "H" ? R.replycode("550 5.7.0 Bad%% HELO%") : undefined) });
    const h = session(m.address);
    expect(await h.t.reply()).toMatch(/^220/);
    expect(await h.t.cmd("HELO bad")).toBe("550 5.7.0 Bad% HELO\r\n");
    expect(await h.t.cmd("HELO good")).toBe("550 5.7.0 Bad% HELO\r\n");
    expect(await h.t.cmd("MAIL FROM:<a@example.org>")).toBe("550 5.7.0 Bad% HELO\r\n");
    expect(m.of("H")).toHaveLength(1);
  });

  test("a multi-line reply code at the end of the message", async () => {
    const m = await milter({ script: (e) => (e.code === "E" ? R.replycode("554-5.7.1 first\r\n554 5.7.1 second") : undefined) });
    const h = session(m.address);
    expect(await send(h)).toBe("554-5.7.1 first\r\n554 5.7.1 second\r\n");
    expect(h.sink.messages).toHaveLength(0);
  });

  test("a reject at connect: Postfix's 554 greeting, and every later milter event refused", async () => {
    const m = await milter({ script: (e) => (e.code === "C" ? R.reject() : undefined) });
    const h = session(m.address);
    expect(await h.t.reply()).toBe("554 mx.example.test ESMTP not accepting connections\r\n");
    expect(await h.t.cmd("HELO c")).toBe("550 5.7.1 Command rejected\r\n");
    expect(await h.t.cmd("MAIL FROM:<a@example.org>")).toBe("550 5.7.1 Command rejected\r\n");
    expect(m.connections).toBe(1);
  });

  test("shutdown: 421 and the session ends", async () => {
    const m = await milter({ script: (e) => (e.code === "M" ? R.shutdown() : undefined) });
    const h = session(m.address);
    expect(await h.t.reply()).toMatch(/^220/);
    await h.t.cmd("EHLO c");
    expect(await h.t.cmd("MAIL FROM:<a@example.org>")).toBe("421 4.7.0 Server closing connection\r\n");
    expect(await h.t.closedAfter()).toBe(true);
  });

  test("discard: the client hears 250, nothing is queued", async () => {
    const m = await milter({ script: (e) => (e.code === "E" ? R.discard() : undefined) });
    const h = session(m.address);
    expect(await send(h)).toMatch(/^250 2\.0\.0 Ok/);
    expect(h.sink.messages[0]!.actions).toContainEqual(expect.objectContaining({ kind: "discard", label: "milter-discard", stage: "END-OF-MESSAGE" }));
  });

  test("accept at MAIL: no more events for this message (then SMFIC_ABORT, as Postfix sends); the next message gets them again", async () => {
    let n = 0;
    const m = await milter({ script: (e) => (e.code === "M" && n++ === 0 ? R.accept() : undefined) });
    const h = session(m.address);
    expect(await send(h)).toMatch(/^250 2\.0\.0/);
    expect(await h.t.cmd("MAIL FROM:<a@example.org>")).toMatch(/^250/);
    await h.t.cmd("RCPT TO:<b@example.net>");
    await h.t.cmd("DATA");
    h.t.send(MESSAGE);
    expect(await h.t.reply()).toMatch(/^250 2\.0\.0/);
    expect(m.events.map((e) => e.code).join("")).toBe("CHM" + "A" + "MRTLLNBE");
  });

  test("quarantine: the message is held with the milter's reason", async () => {
    const m = await milter({ script: (e) => (e.code === "E" ? [R.quarantine("looks like spam"), R.continue()] : undefined) });
    const h = session(m.address);
    expect(await send(h)).toMatch(/^250 2\.0\.0/);
    expect(h.sink.messages[0]!.actions).toContainEqual({ kind: "hold", reason: "looks like spam", stage: "END-OF-MESSAGE", subject: "b@example.net", label: "milter-hold" });
  });

  test("RSET after MAIL sends SMFIC_ABORT; progress replies keep the wait going", async () => {
    const m = await milter({ script: (e) => (e.code === "R" ? [R.progress(), R.progress(), R.continue()] : undefined) });
    const h = session(m.address);
    expect(await h.t.reply()).toMatch(/^220/);
    await h.t.cmd("EHLO c");
    await h.t.cmd("MAIL FROM:<a@example.org>");
    expect(await h.t.cmd("RCPT TO:<b@example.net>")).toMatch(/^250/);
    expect(await h.t.cmd("RSET")).toMatch(/^250/);
    await h.t.cmd("NOOP");
    expect(m.events.map((e) => e.code).join("")).toBe("CHMRA");
  });
});

describe("modifications at the end of the message", () => {
  test("headers added, inserted, changed and deleted with Postfix's index rules", async () => {
    const m = await milter({
      script: (e) =>
        e.code === "E"
          ? [
              R.addheader("X-Added", "at the end"),
              R.insheader(0, "X-Top", "above Received"),
              R.insheader(1, "X-First", "first of the content"),
              R.chgheader(1, "Subject", "changed"),
              R.chgheader(2, "X-Dup", ""),
              R.chgheader(1, "X-Missing", "added because missing"),
              R.continue(),
            ]
          : undefined,
    });
    const h = session(m.address);
    expect(await send(h, "From: a@example.org\r\nX-Dup: one\r\nSubject: test\r\nX-Dup: two\r\n\r\nbody\r\n.\r\n")).toMatch(/^250/);
    const msg = h.sink.messages[0]!;
    expect(msg.content.toString()).toBe("X-First: first of the content\nFrom: a@example.org\nX-Dup: one\nSubject: changed\nX-Added: at the end\nX-Missing: added because missing\n\nbody\n");
    expect(msg.actions).toContainEqual({ kind: "prepend", header: "X-Top: above Received" });
  });

  test("body replaced; sender changed; recipients added and deleted", async () => {
    const m = await milter({
      script: (e) =>
        e.code === "E"
          ? [R.replbody("new\r\nbody\r\n"), R.chgfrom("<bounce@example.org>"), R.addrcpt("<added@example.net>"), R.addrcptPar("<par@example.net>", "NOTIFY=NEVER"), R.delrcpt("<b@example.net>"), R.continue()]
          : undefined,
    });
    const h = session(m.address);
    expect(await send(h, MESSAGE, ["b@example.net", "c@example.net"])).toMatch(/^250/);
    const msg = h.sink.messages[0]!;
    expect(msg.content.toString()).toBe("From: a@example.org\nSubject: test\n\nnew\nbody\n");
    expect(msg.sender).toBe("bounce@example.org");
    expect(msg.recipients.map((r) => r.address)).toEqual(["c@example.net", "added@example.net", "par@example.net"]);
  });

  test("several milters in order: the second sees the first one's changes", async () => {
    const first = await milter({ script: (e) => (e.code === "E" ? [R.addheader("X-First", "1"), R.continue()] : undefined) });
    const second = await milter();
    const h = session(`${first.address}, ${second.address}`);
    expect(await send(h)).toMatch(/^250/);
    expect(second.of("L").map((e) => e.strings[0])).toEqual(["From", "Subject", "X-First"]);
    expect(h.sink.messages[0]!.content.toString()).toContain("X-First: 1\n");
  });

  test("a header name that is not one, or an envelope address with a line break, is refused with a temporary error", async () => {
    for (const bad of [R.addheader("Bad Name", "x"), R.addrcpt("<a@b>\r\nRCPT TO:<c@d>")]) {
      const m = await milter({ script: (e) => (e.code === "E" ? [bad, R.continue()] : undefined) });
      const h = session(m.address);
      expect(await send(h)).toBe("451 4.3.5 Server configuration problem - try again later\r\n");
      expect(h.sink.messages).toHaveLength(0);
    }
  });

  test("a modification outside the end of the message is a protocol error", async () => {
    const m = await milter({ script: (e) => (e.code === "M" ? [R.addheader("X", "y"), R.continue()] : undefined) });
    const h = session(m.address);
    expect(await h.t.reply()).toMatch(/^220/);
    await h.t.cmd("EHLO c");
    expect(await h.t.cmd("MAIL FROM:<a@example.org>")).toBe("451 4.7.1 Service unavailable - try again later\r\n");
    expect(h.warnings.join("\n")).toMatch(/milter inet:127\.0\.0\.1:\d+: protocol error in mail event: unexpected modification "addheader"/);
  });
});

describe("milter_default_action", () => {
  const down = () => `inet:127.0.0.1:${freePort()}`;

  test("tempfail (the default): a milter that is down gets 451 4.7.1 at MAIL, after a normal greeting", async () => {
    const h = session(down());
    expect(await h.t.reply()).toMatch(/^220 /);
    expect(await h.t.cmd("HELO c")).toBe("451 4.7.1 Service unavailable - try again later\r\n");
    expect(await h.t.cmd("MAIL FROM:<a@example.org>")).toBe("451 4.7.1 Service unavailable - try again later\r\n");
    expect(h.warnings.join("\n")).toMatch(/milter inet:127\.0\.0\.1:\d+: error in connect event/);
  });

  test("accept: the milter is left out", async () => {
    const h = session(down(), 'milter_default_action = "accept"\n');
    expect(await send(h)).toMatch(/^250 2\.0\.0/);
  });

  test("reject, and the per-milter { name, default_action=... } form overriding the global one", async () => {
    const h = session(`{ ${down()}, default_action=reject }`, 'milter_default_action = "accept"\n');
    expect(await h.t.reply()).toBe("554 mx.example.test ESMTP not accepting connections\r\n");
    expect(await h.t.cmd("MAIL FROM:<a@example.org>")).toBe("550 5.5.0 Service unavailable\r\n");
  });

  test("quarantine: mail is accepted and held", async () => {
    const h = session(down(), 'milter_default_action = "quarantine"\n');
    expect(await send(h)).toMatch(/^250 2\.0\.0/);
    expect(h.sink.messages[0]!.actions).toContainEqual(expect.objectContaining({ kind: "hold", reason: "default_action", label: "milter-hold" }));
  });

  test("a milter that does not answer in milter_command_timeout gets the default action", async () => {
    const m = await milter({ script: (e) => (e.code === "M" ? "silence" : undefined) });
    const h = session(`{ ${m.address}, command_timeout=1s }`);
    expect(await h.t.reply()).toMatch(/^220/);
    await h.t.cmd("EHLO c");
    h.t.send("MAIL FROM:<a@example.org>\r\n");
    expect(await h.t.reply(5000)).toBe("451 4.7.1 Service unavailable - try again later\r\n");
    expect(h.warnings.join("\n")).toMatch(/timeout while reading a reply for mail event/);
  });

  test("a milter that does not answer the end of the message in milter_content_timeout gets the default action", async () => {
    const m = await milter({ script: (e) => (e.code === "E" ? "silence" : undefined) });
    const h = session(`{ ${m.address}, content_timeout=1s, command_timeout=60s }`);
    expect(await send(h)).toBe("451 4.7.1 Service unavailable - try again later\r\n");
    expect(h.warnings.join("\n")).toMatch(/timeout while reading a reply for end of message event/);
  });

  test("a milter that goes away mid-session gets the default action for the rest of it", async () => {
    const m = await milter({ script: (e) => (e.code === "M" ? R.raw(Buffer.alloc(0)) : undefined) });
    const h = session(m.address);
    expect(await h.t.reply()).toMatch(/^220/);
    await h.t.cmd("EHLO c");
    h.t.send("MAIL FROM:<a@example.org>\r\n");
    await waitFor("the MAIL event", () => m.of("M").length === 1);
    await m.stop();
    expect(await h.t.reply()).toBe("451 4.7.1 Service unavailable - try again later\r\n");
    expect(await h.t.cmd("MAIL FROM:<b@example.org>")).toBe("451 4.7.1 Service unavailable - try again later\r\n");
  });

  test("a reply packet longer than the bound is refused without reading it", async () => {
    const huge = Buffer.alloc(5);
    huge.writeUInt32BE(0x7fffffff, 0);
    huge[4] = "y".charCodeAt(0);
    const m = await milter({ script: (e) => (e.code === "M" ? R.raw(huge) : undefined) });
    const h = session(m.address);
    expect(await h.t.reply()).toMatch(/^220/);
    await h.t.cmd("EHLO c");
    expect(await h.t.cmd("MAIL FROM:<a@example.org>")).toBe("451 4.7.1 Service unavailable - try again later\r\n");
    expect(h.warnings.join("\n")).toMatch(/packet too long: 2147483647/);
  });
});

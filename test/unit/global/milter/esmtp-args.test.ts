/**
 * A milter's ESMTP arguments (SMFIR_CHGFROM, SMFIR_ADDRCPT_PAR) as Postfix's
 * cleanup reads them: the parser alone, then a chain against a scripted
 * milter whose end-of-message edits carry arguments, and one whose
 * addresses are in external form (display names, quotes, several).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { MilterChain, type MessageOutcome } from "../../../../src/global/milter/chain.ts";
import { addrcptArgs, chgfromArgs, MAX_ARGS } from "../../../../src/global/milter/esmtp-args.ts";
import { parseMilterList } from "../../../../src/global/milter/spec.ts";
import { atEndOfMessage, R, ScriptedMilter } from "../../../helpers/milter-server.ts";

function collect(): { warn: (t: string) => void; lines: string[] } {
  const lines: string[] = [];
  return { warn: (t) => lines.push(t), lines };
}

describe("SMFIR_CHGFROM arguments", () => {
  test("RET and ENVID are applied, ENVID decoded from xtext", () => {
    const w = collect();
    expect(chgfromArgs("RET=hdrs ENVID=a+2Bb", w.warn)).toEqual({ ret: "HDRS", envid: "a+b" });
    expect(w.lines).toEqual([]);
  });

  test("anything else, or a bad value, gets Postfix's warning and is skipped", () => {
    const w = collect();
    expect(chgfromArgs("SIZE=10 RET=ALL ENVID=a+2 ENVID=+00 RET=FULL", w.warn)).toEqual({ ret: "FULL" });
    expect(w.lines).toEqual([
      'Ignoring bad ESMTP parameter "SIZE=10" in SMFI_CHGFROM request',
      'Ignoring bad ESMTP parameter "RET=ALL" in SMFI_CHGFROM request',
      'Ignoring bad ESMTP parameter "ENVID=a+2" in SMFI_CHGFROM request',
      'Ignoring bad ESMTP parameter "ENVID=+00" in SMFI_CHGFROM request',
    ]);
  });

  test("bounded: at most MAX_ARGS arguments read, a long one cut in the log", () => {
    const w = collect();
    chgfromArgs(`X=${"a".repeat(500)} ${"Y ".repeat(MAX_ARGS + 5)}`, w.warn);
    expect(w.lines[0]).toBe(`Ignoring bad ESMTP parameter "X=${"a".repeat(98)}" in SMFI_CHGFROM request`);
    expect(w.lines).toHaveLength(MAX_ARGS + 1);
    expect(w.lines.at(-1)).toBe("Ignoring 6 more ESMTP parameters in SMFI_CHGFROM request");
  });
});

describe("SMFIR_ADDRCPT_PAR arguments", () => {
  test("NOTIFY and ORCPT (xtext, or RFC 6533 for utf-8) are applied", () => {
    const w = collect();
    expect(addrcptArgs("NOTIFY=success,delay ORCPT=rfc822;a+2Bb@example.org", "ABC", w.warn)).toEqual({ notify: ["SUCCESS", "DELAY"], orcpt: "rfc822;a+b@example.org" });
    expect(addrcptArgs("ORCPT=utf-8;j\\x{F6}rg@example.org", "ABC", w.warn)).toEqual({ orcpt: "utf-8;jörg@example.org" });
    expect(w.lines).toEqual([]);
  });

  test("a bad or second NOTIFY/ORCPT and any other argument get Postfix's warnings", () => {
    const w = collect();
    const out = addrcptArgs("NOTIFY=NEVER,SUCCESS NOTIFY=FAILURE NOTIFY=DELAY ORCPT=nosemicolon ORCPT=rfc822;x@y ORCPT=rfc822;z@y SIZE=1", "ABC", w.warn);
    expect(out).toEqual({ notify: ["FAILURE"], orcpt: "rfc822;x@y" });
    expect(w.lines).toEqual([
      'ABC: Bad NOTIFY parameter from Milter or header/body_checks: "NOTIFY=NEVER,SUCCESS"',
      'ABC: Bad NOTIFY parameter from Milter or header/body_checks: "NOTIFY=DELAY"',
      'ABC: Bad ORCPT parameter from Milter or header/body_checks: "ORCPT=nosemicolon"',
      'ABC: Bad ORCPT parameter from Milter or header/body_checks: "ORCPT=rfc822;z@y"',
      'ABC: ignoring ESMTP argument from Milter or header/body_checks: "SIZE=1"',
    ]);
  });

  test("an ORCPT with a NUL or past the bound is refused", () => {
    const w = collect();
    expect(addrcptArgs("ORCPT=rfc822;a+00b", "", w.warn)).toEqual({});
    expect(addrcptArgs(`ORCPT=rfc822;${"a".repeat(501)}`, "", w.warn)).toEqual({});
    expect(w.lines.map((l) => l.slice(0, 30))).toEqual(["Bad ORCPT parameter from Milte", "Bad ORCPT parameter from Milte"]);
  });
});

/** A chain of the one scripted milter `m`, a transaction from <old@example.org> to <rcpt@example.net>, and its end-of-message outcome. */
async function outcome(m: ScriptedMilter, warn: (t: string) => void, queueId: string): Promise<MessageOutcome> {
  const specs = parseMilterList(m.address, { connectTimeoutMs: 5000, commandTimeoutMs: 5000, contentTimeoutMs: 5000, protocol: 6, noHeaderReply: false, defaultAction: "tempfail" });
  const chain = new MilterChain(specs, {
    macros: new Map(),
    defaults: new Map(),
    lookup: () => undefined,
    warn,
    packetLimit: 1 << 20,
    limits: { lineLengthLimit: 2048, headerSizeLimit: 102400 },
  });
  try {
    await chain.connect("client.example", "127.0.0.1", 25);
    await chain.mail(["<old@example.org>"]);
    await chain.rcpt(["<rcpt@example.net>"]);
    await chain.data();
    return await chain.message(Buffer.from("Subject: x\n\nbody\n"), queueId);
  } finally {
    chain.quit();
  }
}

describe("a milter chain's envelope edits with arguments", () => {
  let m: ScriptedMilter;
  beforeAll(async () => {
    m = await new ScriptedMilter({
      script: atEndOfMessage(
        R.chgfrom("<new@example.org>", "RET=HDRS ENVID=id+3D1 SIZE=5"),
        R.addrcptPar("<added@example.net>", "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;orig+2Bx@example.net FOO=bar"),
        R.addrcpt("<plain@example.net>"),
      ),
    }).start();
  });
  afterAll(async () => {
    await m?.stop();
  });

  test("the outcome carries RET/ENVID and each added recipient's NOTIFY/ORCPT; unknown arguments are warned about", async () => {
    const w = collect();
    const out = await outcome(m, w.warn, "4ABC");
    expect(out.verdict).toBeUndefined();
    expect(out.sender).toBe("new@example.org");
    expect(out.senderDsn).toEqual({ ret: "HDRS", envid: "id=1" });
    expect(out.addRecipients).toEqual([{ address: "added@example.net", notify: ["SUCCESS", "FAILURE"], orcpt: "rfc822;orig+x@example.net" }, { address: "plain@example.net" }]);
    expect(w.lines).toEqual([
      'Ignoring bad ESMTP parameter "SIZE=5" in SMFI_CHGFROM request',
      '4ABC: ignoring ESMTP argument from Milter or header/body_checks: "FOO=bar"',
    ]);
  });
});

describe("a milter's addresses, read as Postfix's cleanup reads them (the first address, in internal form)", () => {
  let m: ScriptedMilter;
  beforeAll(async () => {
    m = await new ScriptedMilter({
      script: atEndOfMessage(
        R.chgfrom("Sender Name <new@example.org>, second@example.org"),
        R.addrcpt('"a b"@example.net'),
        R.addrcpt("Joe <joe@example.net>, other@example.net"),
        R.addrcpt("<>"),
        R.delrcpt("Someone (comment) <rcpt@example.net>"),
      ),
    }).start();
  });
  afterAll(async () => {
    await m?.stop();
  });

  test("display names, quotes and comments are taken off; more than one address warns; a null recipient is ignored", async () => {
    const w = collect();
    const out = await outcome(m, w.warn, "5DEF");
    expect(out.verdict).toBeUndefined();
    expect(out.sender).toBe("new@example.org");
    expect(out.addRecipients).toEqual([{ address: "a b@example.net" }, { address: "joe@example.net" }]);
    expect(out.deleteRecipients).toEqual(["rcpt@example.net"]);
    expect(w.lines).toEqual([
      '5DEF: Milter request to add multi-sender: "Sender Name <new@example.org>, second@example.org"',
      '5DEF: Milter or header/body_checks request to add multi-recipient: "Joe <joe@example.net>, other@example.net"',
      "5DEF: ignoring attempt from Milter to add null recipient",
    ]);
  });
});

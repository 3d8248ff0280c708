/**
 * The milter codec: every command packet we send, every reply a milter may
 * send, the negotiation, and the bounds on what we read.
 */
import { describe, expect, test } from "bun:test";
import {
  ALL_ACTIONS,
  connectPacket,
  cstrings,
  encodePacket,
  macroPacket,
  MAX_PACKET,
  MilterProtocolError,
  optnegPacket,
  PacketReader,
  parseOptneg,
  parseReply,
  protocolMask,
  SMFIC,
  SMFIP,
  validSmtpReply,
} from "../../../../src/global/milter/protocol.ts";

const hex = (b: Buffer) => b.toString("hex");
const packet = (code: string, data: Buffer | string = "") => ({ code, data: Buffer.isBuffer(data) ? data : Buffer.from(data, "latin1") });
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n, 0);
  return b;
};

describe("command packets", () => {
  test("a packet is a 4-byte length counting the code, the code, the data", () => {
    expect(hex(encodePacket(SMFIC.QUIT))).toBe("0000000151");
    expect(hex(encodePacket(SMFIC.ABORT))).toBe("0000000141");
    expect(hex(encodePacket(SMFIC.EOH))).toBe("000000014e");
    expect(hex(encodePacket(SMFIC.BODYEOB))).toBe("0000000145");
    expect(hex(encodePacket(SMFIC.DATA))).toBe("0000000154");
    expect(encodePacket(SMFIC.BODY, Buffer.from("hi\r\n"))).toEqual(Buffer.from("\0\0\0\x05Bhi\r\n", "latin1"));
  });

  test("SMFIC_OPTNEG: version, actions, protocol steps", () => {
    const p = optnegPacket(6, ALL_ACTIONS, protocolMask(6));
    expect(p.readUInt32BE(0)).toBe(13);
    expect(String.fromCharCode(p[4]!)).toBe("O");
    expect(p.readUInt32BE(5)).toBe(6);
    expect(p.readUInt32BE(9)).toBe(0x1ff);
    expect(p.readUInt32BE(13)).toBe(0x1fffff);
    expect(protocolMask(2)).toBe(0x7f);
    expect(protocolMask(3)).toBe(0x17f);
    expect(protocolMask(4)).toBe(0x37f);
  });

  test("SMFIC_CONNECT for IPv4, IPv6 and an unknown address", () => {
    expect(connectPacket("mx.example", "192.0.2.1", 25)).toEqual(Buffer.concat([u32(25), Buffer.from("Cmx.example\x004\x00\x19192.0.2.1\x00", "latin1")]));
    const v6 = connectPacket("h", "2001:db8::1", 587);
    expect(v6.subarray(5).toString("latin1")).toBe("h\x006\x02\x4b2001:db8::1\x00");
    expect(connectPacket("h", "", 0).subarray(5).toString("latin1")).toBe("h\x00U");
  });

  test("SMFIC_HELO, MAIL, RCPT, HEADER, UNKNOWN carry NUL-terminated strings", () => {
    expect(encodePacket(SMFIC.HELO, cstrings("client.example")).subarray(4).toString("latin1")).toBe("Hclient.example\0");
    expect(encodePacket(SMFIC.MAIL, cstrings("<a@b>", "SIZE=10")).subarray(4).toString("latin1")).toBe("M<a@b>\0SIZE=10\0");
    expect(encodePacket(SMFIC.RCPT, cstrings("<c@d>")).subarray(4).toString("latin1")).toBe("R<c@d>\0");
    expect(encodePacket(SMFIC.HEADER, cstrings("Subject", "hi")).subarray(4).toString("latin1")).toBe("LSubject\0hi\0");
    expect(encodePacket(SMFIC.UNKNOWN, cstrings("XYZZY 1")).subarray(4).toString("latin1")).toBe("UXYZZY 1\0");
  });

  test("SMFIC_MACRO: the command it belongs to, then name/value pairs", () => {
    const p = macroPacket(SMFIC.CONNECT, [["j", "mx.example"], ["{daemon_name}", "mx"]]);
    expect(p.subarray(4).toString("latin1")).toBe("DCj\0mx.example\0{daemon_name}\0mx\0");
    expect(p.readUInt32BE(0)).toBe(p.length - 4);
  });
});

describe("reply packets", () => {
  test("replies without data", () => {
    for (const [code, name] of [
      ["c", "continue"],
      ["a", "accept"],
      ["d", "discard"],
      ["r", "reject"],
      ["t", "tempfail"],
      ["4", "shutdown"],
      ["p", "progress"],
      ["s", "skip"],
      ["f", "connfail"],
    ] as const) {
      expect(parseReply(packet(code))).toEqual({ code: name } as never);
      expect(() => parseReply(packet(code, "x"))).toThrow(MilterProtocolError);
    }
  });

  test("SMFIR_REPLYCODE and SMFIR_QUARANTINE", () => {
    expect(parseReply(packet("y", "550 5.7.1 no\0"))).toEqual({ code: "replycode", text: "550 5.7.1 no" });
    expect(parseReply(packet("q", "virus\0"))).toEqual({ code: "quarantine", reason: "virus" });
    expect(() => parseReply(packet("y", "550 no"))).toThrow(/null byte/);
  });

  test("header changes", () => {
    expect(parseReply(packet("h", "X-A\0one\0"))).toEqual({ code: "addheader", name: "X-A", value: "one" });
    expect(parseReply(packet("i", Buffer.concat([u32(1), Buffer.from("X-B\0two\0")])))).toEqual({ code: "insheader", index: 1, name: "X-B", value: "two" });
    expect(parseReply(packet("m", Buffer.concat([u32(2), Buffer.from("Subject\0\0")])))).toEqual({ code: "chgheader", index: 2, name: "Subject", value: "" });
    expect(() => parseReply(packet("m", "ab"))).toThrow(/32-bit/);
    expect(() => parseReply(packet("h", "X-A\0one\0extra"))).toThrow(MilterProtocolError);
  });

  test("body and envelope changes", () => {
    expect(parseReply(packet("b", "new body\r\n"))).toEqual({ code: "replbody", chunk: Buffer.from("new body\r\n") });
    expect(parseReply(packet("e", "<x@y>\0"))).toEqual({ code: "chgfrom", sender: "<x@y>", args: "" });
    expect(parseReply(packet("e", "<x@y>\0SIZE=1\0"))).toEqual({ code: "chgfrom", sender: "<x@y>", args: "SIZE=1" });
    expect(parseReply(packet("+", "<r@y>\0"))).toEqual({ code: "addrcpt", recipient: "<r@y>", args: "" });
    expect(parseReply(packet("2", "<r@y>\0NOTIFY=NEVER\0"))).toEqual({ code: "addrcpt", recipient: "<r@y>", args: "NOTIFY=NEVER" });
    expect(parseReply(packet("-", "<r@y>\0"))).toEqual({ code: "delrcpt", recipient: "<r@y>" });
  });

  test("SMFIR_SETSYMLIST and an unknown code", () => {
    expect(parseReply(packet("l", Buffer.concat([u32(2), Buffer.from("{mail_addr} i\0")])))).toEqual({ code: "setsymlist", stage: 2, macros: ["{mail_addr}", "i"] });
    expect(() => parseReply(packet("Z"))).toThrow(/unknown reply code 0x5a/);
  });

  test("the negotiation reply, with the macro lists a milter asks for", () => {
    const data = Buffer.concat([u32(6), u32(SMFIF_ADDHDRS), u32(SMFIP.NOHELO | SMFIP.NR_HDR), u32(0), Buffer.from("j {client_addr}\0"), u32(5), Buffer.from("i\0")]);
    const n = parseOptneg(data);
    expect(n).toMatchObject({ version: 6, actions: 1, protocol: SMFIP.NOHELO | SMFIP.NR_HDR });
    expect([...n.macros]).toEqual([
      [0, ["j", "{client_addr}"]],
      [5, ["i"]],
    ]);
    expect(() => parseOptneg(u32(6))).toThrow(MilterProtocolError);
  });
});
const SMFIF_ADDHDRS = 1;

describe("reading packets", () => {
  test("packets split across reads and several in one read", () => {
    const r = new PacketReader();
    const bytes = Buffer.concat([encodePacket("c"), encodePacket("h", cstrings("X", "y")), encodePacket("a")]);
    for (const b of bytes.subarray(0, 7)) r.push(Buffer.from([b]));
    expect(r.next()).toEqual({ code: "c", data: Buffer.alloc(0) });
    expect(r.next()).toBeUndefined();
    r.push(bytes.subarray(7));
    expect(r.next()?.code).toBe("h");
    expect(r.next()?.code).toBe("a");
    expect(r.next()).toBeUndefined();
    expect(r.buffered).toBe(0);
  });

  test("a packet longer than Postfix's limit is refused before its data arrives", () => {
    expect(MAX_PACKET).toBe(1073741823);
    const r = new PacketReader();
    r.push(u32(MAX_PACKET + 1));
    expect(() => r.next()).toThrow(/packet too long: 1073741824 > 1073741823/);
    const ok = new PacketReader();
    ok.push(u32(MAX_PACKET));
    expect(ok.next()).toBeUndefined();
  });

  test("a packet longer than the caller's bound, and a zero length, are refused", () => {
    const r = new PacketReader(100);
    r.push(u32(101));
    expect(() => r.next()).toThrow(/packet too long/);
    const zero = new PacketReader();
    zero.push(u32(0));
    expect(() => zero.next()).toThrow(/bad packet length/);
  });
});

describe("a milter's SMTP reply text (SMFIR_REPLYCODE)", () => {
  test("valid and invalid replies", () => {
    expect(validSmtpReply("550 5.7.1 Go away")).toBe(true);
    expect(validSmtpReply("451 Try later")).toBe(true);
    expect(validSmtpReply("550-5.7.1 one\r\n550 5.7.1 two")).toBe(true);
    expect(validSmtpReply("250 ok")).toBe(false);
    expect(validSmtpReply("550 4.7.1 mixed class")).toBe(false);
    expect(validSmtpReply("550-one\r\n451 two")).toBe(false);
    expect(validSmtpReply("550 bad\nline")).toBe(false);
    expect(validSmtpReply("hello")).toBe(false);
  });
});

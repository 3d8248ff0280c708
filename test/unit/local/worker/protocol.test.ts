/**
 * The frames between the local delivery agent and its workers
 * (src/local/worker/protocol.ts): whole, split at every byte, and a large
 * payload in many chunks, which the reader joins once.
 */
import { describe, expect, test } from "bun:test";
import { encodeFrame, FrameReader } from "../../../../src/local/worker/protocol.ts";

const bytes = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff);

describe("FrameReader", () => {
  test("frames in one chunk, split at every byte, and several in one chunk come out whole and in order", () => {
    const frames = [encodeFrame({ id: 1, job: { type: "stat" } }, bytes(300, 1)), encodeFrame({ id: 2, result: { ok: true } }), encodeFrame({ id: 3 }, bytes(10, 2))];
    const stream = Buffer.concat(frames);
    for (const size of [stream.length, 1, 2, 7, 64]) {
      const reader = new FrameReader();
      const got = [];
      for (let at = 0; at < stream.length; at += size) got.push(...reader.push(stream.subarray(at, at + size)));
      expect(got.map((f) => f.header.id)).toEqual([1, 2, 3]);
      expect(got.map((f) => Buffer.from(f.payload))).toEqual([Buffer.from(bytes(300, 1)), Buffer.alloc(0), Buffer.from(bytes(10, 2))]);
    }
  });

  test("a 4 MiB payload in 4 KiB chunks: one frame with every byte, nothing before its last chunk", () => {
    const payload = bytes(4 << 20, 3);
    const stream = encodeFrame({ id: 9 }, payload);
    const reader = new FrameReader();
    let early = 0;
    const got = [];
    for (let at = 0; at < stream.length; at += 4096) {
      const out = reader.push(stream.subarray(at, at + 4096));
      if (at + 4096 < stream.length) early += out.length;
      got.push(...out);
    }
    expect(early).toBe(0);
    expect(got).toHaveLength(1);
    expect(Buffer.from(got[0]!.payload).equals(Buffer.from(payload))).toBe(true);
  });

  test("a header line over 1 MiB and a bad payload length are protocol errors", () => {
    expect(() => new FrameReader().push(new Uint8Array((1 << 20) + 2).fill(0x61))).toThrow("header line too long");
    const r = new FrameReader();
    for (let i = 0; i < 16; i++) r.push(new Uint8Array(1 << 16).fill(0x61));
    expect(() => r.push(new Uint8Array(10).fill(0x61))).toThrow("header line too long");
    expect(() => new FrameReader().push(Buffer.from('{"bytes":-1}\n'))).toThrow("bad payload length");
  });

  test("the parent's reader of replies (at most 0 payload bytes) refuses a frame that announces more, before any of it arrives", () => {
    const replies = new FrameReader(0);
    expect(replies.push(Buffer.from('{"id":1,"result":{"ok":true},"bytes":0}\n'))).toHaveLength(1);
    // a worker (the recipient's account) announcing 1 GiB: refused from the header alone
    expect(() => new FrameReader(0).push(Buffer.from(`{"id":2,"result":{},"bytes":${2 ** 30}}\n`))).toThrow("at most 0 may come");
    expect(new FrameReader().push(Buffer.from('{"id":3,"bytes":2}\nok'))[0]!.payload).toHaveLength(2);
  });
});

/**
 * DKIM signatures (RFC 6376) over a message in the queue's form (LF line
 * ends, header text as latin1 strings), with relaxed or simple
 * canonicalization and rsa-sha256 or ed25519-sha256 (RFC 8463).
 *
 * Synchronous on purpose: cleanup signs inside the queue-file build step,
 * after the queue ID is known (the Message-Id cleanup adds carries it) and
 * before a single byte is written, so every copy of the message carries
 * the signature. mailauth's signer is a stream and async; node:crypto's
 * sign() is not.
 *
 * The message is signed as the SMTP client will send it: LF becomes CRLF,
 * a last line without LF gets one. Lines longer than the client's
 * smtp_line_length_limit must have been broken before (long-lines.ts);
 * the client would otherwise break them after signing.
 *
 * Runs in pickup and smtpd (mail_owner) with keys read as root before the
 * drop (keys.ts). The message is untrusted; nothing in it can make this
 * code read or write anything but the bytes given.
 */
import { createHash, sign, type KeyObject } from "node:crypto";
import type { HeaderField } from "../message/header-split.ts";

export type Canonicalization = "relaxed" | "simple";

export interface DkimSigner {
  /** d= */
  domain: string;
  /** s= */
  selector: string;
  key: KeyObject;
}

export interface SignOptions {
  header: Canonicalization;
  body: Canonicalization;
  /** Header names to sign, in order (any case); each present instance is signed. */
  signedHeaders: readonly string[];
  /** Names signed once more than they occur, so that one added later breaks the signature. */
  oversignedHeaders: readonly string[];
  /** t=, seconds since the epoch. */
  time: number;
}

const WSP_RUN = /[ \t]+/g;

const CRLF = Buffer.from("\r\n");

/** Whether relaxed canonicalization leaves the line as it is: no tab, no two spaces, no space at the end. */
function relaxedClean(line: Uint8Array): boolean {
  let prevSpace = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === 9 || (c === 32 && prevSpace)) return false;
    prevSpace = c === 32;
  }
  return !prevSpace;
}

/**
 * Feeds the body as the client sends it, canonicalized (RFC 6376 3.4.3,
 * 3.4.4), to `emit` line by line: no copy of the whole body is made, so a
 * 10 MB message does not hold up the process's other sessions for long.
 */
function canonicalizeBody(body: Uint8Array, canon: Canonicalization, emit: (chunk: Uint8Array) => void): void {
  const buf = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  // empty lines are held back: those at the end of the body are dropped
  let pendingEmpty = 0;
  let emitted = false;
  let pos = 0;
  while (pos < buf.length) {
    let nl = buf.indexOf(10, pos);
    const next = nl < 0 ? buf.length : nl + 1;
    if (nl < 0) nl = buf.length;
    // a CR before the LF is part of the line end, as the client sends it
    let line: Uint8Array = buf.subarray(pos, nl > pos && buf[nl - 1] === 13 ? nl - 1 : nl);
    pos = next;
    if (canon === "relaxed" && !relaxedClean(line)) {
      line = Buffer.from(Buffer.from(line).toString("latin1").replace(WSP_RUN, " ").replace(/ $/, ""), "latin1");
    }
    if (line.length === 0) {
      pendingEmpty++;
      continue;
    }
    for (; pendingEmpty > 0; pendingEmpty--) emit(CRLF);
    emit(line);
    emit(CRLF);
    emitted = true;
  }
  // an empty body is "" relaxed and one CRLF simple
  if (!emitted && canon === "simple") emit(CRLF);
}

/** The canonicalized body as one buffer (tests, small bodies). */
export function canonicalBody(body: Uint8Array, canon: Canonicalization): Buffer {
  const parts: Uint8Array[] = [];
  canonicalizeBody(body, canon, (c) => parts.push(c));
  return Buffer.concat(parts);
}

/** One header canonicalized, with its CRLF (`text` is "Name:value" with "\n" between folded lines). */
export function canonicalHeader(raw: string, canon: Canonicalization): string {
  // a CR before a line end is part of the line end, as the client sends it
  const text = raw.replace(/\r(?=\n|$)/g, "");
  if (canon === "simple") return `${text.replace(/\n/g, "\r\n")}\r\n`;
  const colon = text.indexOf(":");
  const name = text.slice(0, colon).replace(/[ \t]+$/, "").toLowerCase();
  const value = text
    .slice(colon + 1)
    .replace(/\n/g, "")
    .replace(WSP_RUN, " ")
    // only WSP: String.trim() would also take latin1's no-break space (0xA0)
    .replace(/^ | $/g, "");
  return `${name}:${value}\r\n`;
}

/** The header instances to sign, bottom-up for each name, and the h= list (RFC 6376 5.4.2). */
function pickHeaders(headers: readonly HeaderField[], opts: SignOptions): { names: string[]; fields: HeaderField[] } {
  const byName = new Map<string, HeaderField[]>();
  for (const h of headers) {
    const n = h.name.toLowerCase();
    byName.set(n, [...(byName.get(n) ?? []), h]);
  }
  const over = new Set(opts.oversignedHeaders.map((n) => n.toLowerCase()));
  const names: string[] = [];
  const fields: HeaderField[] = [];
  const seen = new Set<string>();
  for (const raw of opts.signedHeaders) {
    const n = raw.toLowerCase();
    if (seen.has(n) || n === "dkim-signature" || !/^[!-9;-~]+$/.test(n)) continue;
    seen.add(n);
    const present = [...(byName.get(n) ?? [])].reverse();
    for (const f of present) {
      names.push(n);
      fields.push(f);
    }
    if (over.has(n)) names.push(n);
  }
  return { names, fields };
}

/** Folds a tag list into header lines of at most about 78 characters. */
function foldTags(first: string, tags: string[]): string {
  let out = first;
  let lineLength = first.length;
  for (const [i, tag] of tags.entries()) {
    const piece = `${tag}${i < tags.length - 1 ? ";" : ""}`;
    if (lineLength + 1 + piece.length > 78) {
      out += `\n\t${piece}`;
      lineLength = 1 + piece.length;
    } else {
      out += ` ${piece}`;
      lineLength += 1 + piece.length;
    }
  }
  return out;
}

/** Breaks base64 into pieces folded with "\n\t". */
function foldBase64(value: string, width: number): string {
  const parts: string[] = [];
  for (let i = 0; i < value.length; i += width) parts.push(value.slice(i, i + width));
  return parts.join("\n\t");
}

/** The h= list, folded between names (FWS is allowed around the colons, never inside a name). */
function foldNames(names: readonly string[], width: number): string {
  let out = "";
  let lineLength = 0;
  for (const [i, n] of names.entries()) {
    const piece = i === 0 ? n : `:${n}`;
    if (i > 0 && lineLength + piece.length > width) {
      out += "\n\t";
      lineLength = 0;
    }
    out += piece;
    lineLength += piece.length;
  }
  return out;
}

/**
 * The DKIM-Signature header ("DKIM-Signature: ...", folded with LF, no
 * final newline) for a message whose headers and body are given.
 */
export function dkimSignature(headers: readonly HeaderField[], body: Uint8Array, signer: DkimSigner, opts: SignOptions): string {
  const ed25519 = signer.key.asymmetricKeyType === "ed25519";
  const algorithm = ed25519 ? "ed25519-sha256" : "rsa-sha256";
  const hasher = createHash("sha256");
  canonicalizeBody(body, opts.body, (c) => hasher.update(c));
  const bodyHash = hasher.digest("base64");
  const { names, fields } = pickHeaders(headers, opts);
  const tags = ["v=1", `a=${algorithm}`, `c=${opts.header}/${opts.body}`, `d=${signer.domain}`, `s=${signer.selector}`, `t=${opts.time}`, `h=${foldNames(names, 70)}`, `bh=${bodyHash}`];
  // b= comes last, empty while signing; its value may be folded anywhere (a verifier drops it whole)
  const unsigned = `${foldTags("DKIM-Signature:", tags)};\n\tb=`;
  const data = fields.map((f) => canonicalHeader(f.text, opts.header)).join("") + canonicalHeader(unsigned, opts.header).replace(/\r\n$/, "");
  const input = Buffer.from(data, "latin1");
  const signature = ed25519 ? sign(null, createHash("sha256").update(input).digest(), signer.key) : sign("sha256", input, signer.key);
  return `${unsigned}${foldBase64(signature.toString("base64"), 72)}`;
}

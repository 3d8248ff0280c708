/**
 * A message as milters see and change it: the headers above our own
 * Received: header (a milter's SMFIR_INSHEADER at index 0), the headers as
 * received, and the body; and the milters' header and body modifications
 * applied with Postfix's (and Sendmail's) index rules:
 *
 * - SMFIR_CHGHEADER index n: the n-th header of that name in the content as
 *   received (our Received: header hidden; 0 counts as 1); an empty value
 *   deletes it; a header not found is added at the end.
 * - SMFIR_INSHEADER index n: the position in the content as delivered, our
 *   Received: header included: 0 goes above it, 1 just below it.
 * - SMFIR_ADDHEADER: after the last header.
 * - SMFIR_REPLBODY: the chunks together replace the body.
 *
 * Pure code; runs in smtpd and cleanup as mail_owner. The milter's names and
 * values are untrusted: a name must be a header name, line ends are made LF.
 */
import { extractAddresses } from "../address/parse.ts";
import { splitMessage } from "../message/header-split.ts";
import type { MilterEdit } from "./client.ts";

export interface MilterMessage {
  /** Headers to put above our Received: header (full text, LF folding). */
  above: string[];
  /** Headers as received (full text "Name: value", LF folding). */
  headers: string[];
  /** The body after the empty line that ends the headers, LF line ends. */
  body: Buffer;
}

export class MilterEditError extends Error {}

const HEADER_NAME = /^[\x21-\x39\x3b-\x7e]+$/;

/** Splits content (LF line ends) into headers and body. */
export function milterMessage(content: Buffer, limits: { lineLengthLimit: number; headerSizeLimit: number }): MilterMessage {
  const split = splitMessage(content, limits);
  let body = content.subarray(split.bodyOffset);
  if (split.endedBy === "blank") body = body.subarray(body[0] === 13 ? 2 : 1);
  return { above: [], headers: split.headers.map((h) => h.text), body };
}

/** Header name and value as the milter protocol sends them (value: everything after the colon). */
export function headerParts(text: string): { name: string; value: string } {
  const colon = text.indexOf(":");
  return { name: text.slice(0, colon).replace(/[ \t]+$/, ""), value: text.slice(colon + 1) };
}

/** The body with CRLF line ends, as milters get it. */
export function crlfBody(body: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = body.indexOf(10); i >= 0; i = body.indexOf(10, i + 1)) {
    const end = i > 0 && body[i - 1] === 13 ? i - 1 : i;
    parts.push(body.subarray(start, end), CRLF);
    start = i + 1;
  }
  parts.push(body.subarray(start));
  return Buffer.concat(parts);
}
const CRLF = Buffer.from("\r\n");

/** CRLF to LF (a milter's body and header values). */
function toLf(b: Buffer): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  for (let i = b.indexOf(13); i >= 0; i = b.indexOf(13, i + 1)) {
    if (b[i + 1] === 10) {
      parts.push(b.subarray(start, i));
      start = i + 1;
    }
  }
  parts.push(b.subarray(start));
  return Buffer.concat(parts);
}

function headerText(name: string, value: string, space: string): string {
  if (!HEADER_NAME.test(name)) throw new MilterEditError(`bad header name "${name.slice(0, 100)}"`);
  // a value must not end the headers early: every line after the first is a continuation
  const lines = value.replace(/\r\n/g, "\n").split("\n");
  const folded = lines.map((l, i) => (i === 0 || /^[ \t]/.test(l) ? l : `\t${l}`)).join("\n");
  return `${name}:${space}${folded}`;
}

/** Applies one milter's modifications in the order they came. `space`: "" when the milter negotiated SMFIP_HDR_LEADSPC, else " ". */
export function applyHeaderBodyEdits(msg: MilterMessage, edits: readonly MilterEdit[], space: (edit: MilterEdit) => string): MilterMessage {
  let { above, headers, body } = { above: [...msg.above], headers: [...msg.headers], body: msg.body };
  let newBody: Buffer[] | undefined;
  for (const e of edits) {
    switch (e.code) {
      case "addheader":
        headers.push(headerText(e.name, e.value, space(e)));
        break;
      case "insheader": {
        const text = headerText(e.name, e.value, space(e));
        if (e.index === 0) above = [...above, text];
        else headers.splice(Math.min(e.index - 1, headers.length), 0, text);
        break;
      }
      case "chgheader": {
        const want = e.name.toLowerCase();
        let n = Math.max(e.index, 1);
        const at = headers.findIndex((h) => headerParts(h).name.toLowerCase() === want && --n === 0);
        if (at < 0) {
          if (e.value !== "") headers.push(headerText(e.name, e.value, space(e)));
        } else if (e.value === "") headers.splice(at, 1);
        else headers[at] = headerText(e.name, e.value, space(e));
        break;
      }
      case "replbody":
        newBody ??= [];
        newBody.push(e.chunk);
        break;
      default:
        break;
    }
  }
  if (newBody) body = toLf(Buffer.concat(newBody));
  return { above, headers, body };
}

/** The content again (LF line ends), without the `above` headers (they go above our Received:). */
export function contentOf(msg: MilterMessage): Buffer {
  const head = msg.headers.map((h) => `${h}\n`).join("");
  return Buffer.concat([Buffer.from(head, "latin1"), Buffer.from("\n"), msg.body]);
}

/**
 * A milter's address (external form: `<a@b>`, `Name <a@b>`, a quoted local
 * part) in internal form, as Postfix's cleanup reads it: the first address
 * the text names (undefined for none), and whether it names more (the
 * caller warns, and only the first counts).
 */
export function milterAddress(text: string): { address?: string; more: boolean } {
  const all = extractAddresses(text);
  return { address: all[0], more: all.length > 1 };
}

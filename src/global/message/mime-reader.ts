/**
 * A message read as Postfix's MIME state machine (mime_state.c) reads it,
 * for header_checks and body_checks: one event per logical header, per body
 * line, each with the class Postfix gives it.
 *
 * - Primary headers, then the body. In the body, a line `--BOUNDARY` of an
 *   enclosing multipart starts a part whose headers are "mime" headers;
 *   `--BOUNDARY--` closes that multipart (and any inside it). A
 *   message/rfc822 part (or a part of multipart/digest) starts with the
 *   headers of an attached message: "nested" headers.
 * - MIME headers (Content-*, MIME-Version) are "mime" wherever they are.
 * - A logical header holds its continuation lines joined by "\n" (folding
 *   is kept, as Postfix keeps it); once it holds header_size_limit bytes the
 *   rest is dropped (`truncated`). Lines longer than line_length_limit are
 *   read in pieces of that size, as Postfix's queue records: a body piece
 *   that does not end a line has `eol: false`, and a boundary is only looked
 *   for at the start of a line.
 * - Primary headers ended by a line that is not a header get an empty line
 *   before it (`synthetic`), as Postfix inserts one.
 * - More nested multiparts than mime_nesting_limit: the deeper boundaries
 *   are not followed and `nestingExceeded` is set.
 *
 * Body events carry `offset`: where the line starts in its body part
 * (Postfix's body offset, for body_checks_size_limit). Text is latin1
 * ("binary") so every byte survives. Runs in cleanup (smtpd, pickup) and the
 * SMTP client; the content is untrusted and every buffer is bounded.
 */
import { headerNameLength } from "./header-split.ts";

export type HeaderKind = "primary" | "mime" | "nested";

export type MimeEvent =
  | { kind: "header"; cls: HeaderKind; text: string; truncated: boolean }
  | { kind: "body"; text: string; eol: boolean; offset: number; synthetic?: boolean };

export interface MimeLimits {
  lineLengthLimit: number;
  headerSizeLimit: number;
  /** mime_nesting_limit. */
  nestingLimit: number;
  /** mime_boundary_length_limit. */
  boundaryLengthLimit: number;
}

export interface MimeReadState {
  nestingExceeded: boolean;
  /** The start of the Content-Type header that went too deep. */
  nestingText?: string;
}

/** Headers Postfix marks HDR_OPT_MIME. */
const MIME_HEADERS = new Set(["content-description", "content-disposition", "content-id", "content-transfer-encoding", "content-type", "mime-version"]);

type ContentType = "text" | "message/rfc822" | "message" | "multipart" | "other";

interface Boundary {
  text: string;
  /** Default content type of its parts (message/rfc822 for multipart/digest). */
  partType: ContentType;
}

const BOUNDARY_PARAM = /(?:^|;)\s*boundary\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;()<>@,:\\"/[\]?=]+))/gi;

function parseContentType(text: string, limits: MimeLimits): { type: ContentType; boundaries: Boundary[] } {
  const value = text.slice(text.indexOf(":") + 1).replace(/\n/g, "").replace(/\([^()]*\)/g, " ").trim();
  const m = /^([^\s/;]+)\s*(?:\/\s*([^\s;]+))?/.exec(value);
  const main = m?.[1]?.toLowerCase() ?? "";
  const sub = m?.[2]?.toLowerCase() ?? "";
  if (main === "text") return { type: "text", boundaries: [] };
  if (main === "message") return { type: sub === "rfc822" || sub === "global" ? "message/rfc822" : "message", boundaries: [] };
  if (main !== "multipart") return { type: "other", boundaries: [] };
  const partType: ContentType = sub === "digest" ? "message/rfc822" : "text";
  const boundaries: Boundary[] = [];
  for (const b of value.slice(m![0].length).matchAll(BOUNDARY_PARAM)) {
    const raw = b[1] !== undefined ? b[1].replace(/\\(.)/g, "$1") : (b[2] ?? "");
    if (raw !== "") boundaries.push({ text: raw.slice(0, limits.boundaryLengthLimit), partType });
  }
  return { type: "multipart", boundaries };
}

/** The events of `content` (LF line ends), in order. `state` reports what the reader noticed. */
export function* readMime(content: Uint8Array, limits: MimeLimits, state: MimeReadState = { nestingExceeded: false }): Generator<MimeEvent> {
  const buf = Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const piece = Math.max(1, limits.lineLengthLimit);
  let mode: HeaderKind | "body" = "primary";
  let ctype: ContentType = "text";
  const stack: Boundary[] = [];
  let header: { text: string; truncated: boolean; cls: HeaderKind } | undefined;
  let bodyOffset = 0;

  const flushHeader = function* (): Generator<MimeEvent> {
    if (!header) return;
    const h = header;
    header = undefined;
    const nameLength = headerNameLength(h.text);
    const name = h.text.slice(0, nameLength).toLowerCase();
    if (name === "content-type") {
      const parsed = parseContentType(h.text, limits);
      ctype = parsed.type;
      for (const b of parsed.boundaries) {
        if (stack.length >= limits.nestingLimit) {
          state.nestingExceeded = true;
          state.nestingText ??= h.text.slice(0, 100);
        } else stack.push(b);
      }
    }
    yield { kind: "header", cls: MIME_HEADERS.has(name) ? "mime" : h.cls, text: h.text, truncated: h.truncated };
  };
  const body = (text: string, eol: boolean, synthetic = false): MimeEvent => {
    const event: MimeEvent = { kind: "body", text, eol, offset: bodyOffset, ...(synthetic ? { synthetic } : {}) };
    bodyOffset += text.length + 1;
    return event;
  };

  let pos = 0;
  while (pos < buf.length) {
    const nl = buf.indexOf(10, pos);
    const lineEnd = nl < 0 ? buf.length : nl;
    const next = nl < 0 ? buf.length : nl + 1;
    const hasEol = nl >= 0;
    for (let off = pos; off < lineEnd || off === pos; off += piece) {
      const end = Math.min(lineEnd, off + piece);
      const text = buf.toString("latin1", off, end);
      const continued = off > pos;
      const last = end >= lineEnd;
      const eol = last && hasEol;
      if (mode !== "body") {
        if (header && continued) {
          if (header.text.length < limits.headerSizeLimit) header.text += text;
          else header.truncated = true;
          if (last) break;
          continue;
        }
        if (header && (text.startsWith(" ") || text.startsWith("\t"))) {
          if (header.text.length < limits.headerSizeLimit) header.text += `\n${text}`;
          else header.truncated = true;
          if (last) break;
          continue;
        }
        yield* flushHeader();
        const nameLength = headerNameLength(text);
        if (nameLength > 0 && !continued) {
          // "Name  :value" is read as "Name:value"
          const rest = text.slice(nameLength).replace(/^[ \t]+/, "");
          header = { text: text.slice(0, nameLength) + rest, truncated: false, cls: mode };
          if (last) break;
          continue;
        }
        // the end of a header block
        const wasPrimary = mode === "primary";
        bodyOffset = 0;
        if (text === "" && !continued) {
          if (ctype === "message/rfc822") {
            mode = "nested";
            ctype = "text";
          } else mode = "body";
        } else {
          mode = "body";
          if (wasPrimary) yield body("", true, true);
        }
        if (mode === "body" && ctype === "multipart") ctype = "other";
      }
      // body text (the line that ended a header block included, as Postfix has it)
      if (!continued && stack.length > 0 && text.startsWith("--")) {
        for (let i = stack.length - 1; i >= 0; i--) {
          const b = stack[i]!;
          if (!text.startsWith(b.text, 2)) continue;
          stack.length = i + 1;
          if (text.startsWith("--", 2 + b.text.length)) {
            stack.pop();
            mode = "body";
            ctype = "other";
          } else {
            mode = "mime";
            ctype = b.partType;
          }
          bodyOffset = 0;
          break;
        }
      }
      yield body(text, eol);
    }
    pos = next;
  }
  yield* flushHeader();
}

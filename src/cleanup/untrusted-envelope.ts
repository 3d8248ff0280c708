/**
 * The envelope of an untrusted maildrop file, screened before cleanup: every
 * record is checked like the field it feeds, as Postfix's postdrop and
 * cleanup check what a local user hands them. maildrop/ is writable by every
 * local user, so the file need not come from sendmail at all.
 *
 * - The sender, each recipient and its `original=` address feed SMTP
 *   commands, Return-Path:, X-Original-To:, Delivered-To: and log lines: no
 *   control characters (a line break would forge headers in a mailbox), at
 *   most line_length_limit bytes (Postfix's pickup refuses longer records).
 *   A bad one refuses the whole file.
 * - `orcpt=` is checked like smtpd's ORCPT parameter (addr-type;address,
 *   decoded): it must read back as it is from the form the SMTP client would
 *   send (so no NUL, at most 500 characters of address), and, stricter than
 *   smtpd (which takes an encoded control as Postfix does), hold no control
 *   character: a local user has no reason to send one, and it would only
 *   ever reach a delivery report's Original-Recipient field. A bad one
 *   refuses the file.
 * - `notify=` must be a DSN NOTIFY value (NEVER alone, or SUCCESS, FAILURE,
 *   DELAY, a repeat counted once); a malformed one is dropped with a warning,
 *   as Postfix's cleanup ignores a malformed DSN notify record.
 * - Attributes: only those sendmail writes are kept, each checked for its
 *   form. A bad `envid` or `ret` refuses the file (Postfix's cleanup:
 *   "message rejected: bad DSN ... record"); any other attribute that is
 *   unknown or malformed is dropped with a warning, as postdrop ignores it.
 *   `uid` and `login` always come from the file's owner (envelope.ts).
 * - Recipients marked finished (a `D` record) are never in a submission:
 *   the file is refused.
 * - The arrival time is not screened here: pickup ignores the file's `T`
 *   record and sets the time itself (src/pickup/pickup.ts).
 *
 * Runs in pickup as mail_owner. Files the queue owner wrote (postsuper -r)
 * are trusted and do not come here. sendmail screens its own file the same
 * way before it commits it, so what it accepts (exit 0) pickup never refuses.
 */
import { printable } from "../util/printable.ts";
import { encodeOrcpt, parseNotify, parseOrcpt, validEnvid } from "../global/message/dsn-params.ts";
import type { QueueFile, Recipient } from "../global/queue/format.ts";
import type { CleanupSettings } from "./settings.ts";

export type Screening = { refused: string } | { file: QueueFile; warnings: string[] };

/** The settings screening reads; sendmail passes them too, to refuse at once what pickup would refuse. */
export type ScreenSettings = Pick<CleanupSettings, "lineLengthLimit" | "verpFilter">;

/** Bytes of a value as it is stored (UTF-8). */
const byteLength = (s: string) => Buffer.byteLength(s, "utf8");

// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f]/;

/** A value quoted for a log line: control characters shown as "?", at most 200 characters (Postfix's %.200s). */
export function logValue(value: string): string {
  return printable(value.slice(0, 200), true);
}

/** What is wrong with an envelope address, or undefined when it may go into headers, SMTP commands and logs. */
export function addressProblem(address: string, settings: Pick<CleanupSettings, "lineLengthLimit">): string | undefined {
  if (CONTROL.test(address)) return "a control character";
  if (byteLength(address) > settings.lineLengthLimit) return `more than ${settings.lineLengthLimit} bytes`;
  return undefined;
}

/** A stored ORCPT ("type;address", decoded) is valid when smtpd would have accepted its xtext form as is. */
export function validOrcpt(orcpt: string, settings: Pick<CleanupSettings, "lineLengthLimit">): boolean {
  if (byteLength(orcpt) > settings.lineLengthLimit || /[\x00-\x1f\x7f]/.test(orcpt)) return false;
  const semi = orcpt.indexOf(";");
  if (semi <= 0) return false;
  const type = orcpt.slice(0, semi);
  const address = orcpt.slice(semi + 1);
  // encoded as the SMTP client would send it, it must read back as it is
  return parseOrcpt(encodeOrcpt(orcpt)) === (type.toLowerCase() === "rfc822" ? `rfc822;${address}` : orcpt);
}

type AttributeCheck = (value: string, settings: ScreenSettings) => boolean;

/** The attributes sendmail writes, and the form each must have (a Map: names such as "constructor" must find nothing). */
export const SUBMISSION_ATTRIBUTES: ReadonlyMap<string, AttributeCheck> = new Map<string, AttributeCheck>([
  ["full_name", (v, s) => byteLength(v) <= s.lineLengthLimit],
  ["rewrite_context", (v) => v === "local" || v === "remote"],
  ["envid", (v) => validEnvid(v)],
  ["ret", (v) => v === "FULL" || v === "HDRS"],
  ["encoding", (v) => v === "7BIT" || v === "8BITMIME"],
  ["verp", (v, s) => v.length === 2 && [...v].every((c) => s.verpFilter.includes(c))],
  ["verify", (v) => v === "yes"],
  ["record", (v) => v === "yes"],
]);

/** Attributes whose bad value refuses the whole message, as Postfix's cleanup rejects bad DSN ENVID and RET records. */
const REFUSE_WHEN_BAD = new Set(["envid", "ret"]);

function screenRecipient(r: Recipient, i: number, settings: ScreenSettings, warnings: string[]): Recipient | string {
  if (r.done) return `unexpected delivery status record for recipient ${i}`;
  const bad = addressProblem(r.address, settings);
  if (bad) return `malformed recipient address (${bad}): ${logValue(r.address)}`;
  const out: Recipient = { address: r.address };
  if (r.original !== undefined) {
    const badOriginal = addressProblem(r.original, settings);
    if (badOriginal) return `malformed original recipient (${badOriginal}): ${logValue(r.original)}`;
    out.original = r.original;
  }
  if (r.orcpt !== undefined) {
    if (!validOrcpt(r.orcpt, settings)) return `bad DSN original recipient: ${logValue(r.orcpt)}`;
    out.orcpt = r.orcpt;
  }
  if (r.notify !== undefined) {
    const notify = parseNotify(r.notify.join(","));
    if (notify === undefined) warnings.push(`ignoring malformed DSN notify record <${logValue(r.notify.join(","))}>`);
    else out.notify = notify;
  }
  return out;
}

/** Screens an untrusted file: the refusal reason, or the file with what may be kept and the warnings to log. */
export function screenUntrustedFile(file: QueueFile, settings: ScreenSettings): Screening {
  const warnings: string[] = [];
  const badSender = addressProblem(file.sender, settings);
  if (badSender) return { refused: `malformed sender address (${badSender}): ${logValue(file.sender)}` };
  const recipients: Recipient[] = [];
  for (const [i, r] of file.recipients.entries()) {
    const screened = screenRecipient(r, i, settings, warnings);
    if (typeof screened === "string") return { refused: screened };
    recipients.push(screened);
  }
  const attributes: Record<string, string> = {};
  for (const [name, value] of Object.entries(file.attributes)) {
    // sendmail writes origin=sendmail; envelope.ts sets it (and uid, login) again
    if (name === "origin" && value === "sendmail") continue;
    const check = SUBMISSION_ATTRIBUTES.get(name);
    if (check?.(value, settings)) attributes[name] = value;
    else if (check && REFUSE_WHEN_BAD.has(name)) return { refused: `bad DSN ${name === "envid" ? "envelope ID" : "RET"} record: ${logValue(value)}` };
    else warnings.push(`ignoring attribute record: ${logValue(name)}=${logValue(value)}`);
  }
  return { file: { ...file, recipients, attributes }, warnings };
}

/**
 * What postern knows about message header names, as Postfix's header
 * table: which headers carry sender or recipient addresses (rewritten by
 * cleanup), which ones `sendmail -t` extracts recipients from, and which
 * belong to a Resent- block. Names are compared case-insensitively.
 */

export interface HeaderClass {
  /** The preferred spelling, e.g. "Message-Id". */
  name: string;
  /** Holds sender addresses (rewritten like the envelope sender). */
  sender?: boolean;
  /** Holds recipient addresses (rewritten like envelope recipients). */
  recipient?: boolean;
  /** `sendmail -t` takes recipients from it. */
  extract?: boolean;
  /** A Resent- header: its presence makes added headers Resent- ones. */
  resent?: boolean;
}

const CLASSES: HeaderClass[] = [
  { name: "Apparently-To", recipient: true },
  { name: "Bcc", recipient: true, extract: true },
  { name: "Cc", recipient: true, extract: true },
  { name: "Content-Length" },
  { name: "Date" },
  { name: "Delivered-To" },
  { name: "Disposition-Notification-To", sender: true },
  { name: "Errors-To", sender: true },
  { name: "From", sender: true },
  { name: "Mail-Followup-To", sender: true },
  { name: "Message-Id" },
  { name: "Received" },
  { name: "Reply-To", sender: true },
  { name: "Resent-Bcc", recipient: true, extract: true, resent: true },
  { name: "Resent-Cc", recipient: true, extract: true, resent: true },
  { name: "Resent-Date", resent: true },
  { name: "Resent-From", sender: true, resent: true },
  { name: "Resent-Message-Id", resent: true },
  { name: "Resent-Reply-To", recipient: true, resent: true },
  { name: "Resent-Sender", sender: true, resent: true },
  { name: "Resent-To", recipient: true, extract: true, resent: true },
  { name: "Return-Path", sender: true },
  { name: "Return-Receipt-To", sender: true },
  { name: "Sender", sender: true },
  { name: "To", recipient: true, extract: true },
];

/** Built on the first question: sendmail loads this file but asks only with -t. */
let byName: Map<string, HeaderClass> | undefined;

export function headerClass(name: string): HeaderClass | undefined {
  byName ??= new Map(CLASSES.map((c) => [c.name.toLowerCase(), c]));
  return byName.get(name.toLowerCase());
}

export function isAddressHeader(name: string): boolean {
  const c = headerClass(name);
  return !!(c?.sender || c?.recipient);
}

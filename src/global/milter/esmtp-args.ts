/**
 * The ESMTP arguments a milter gives with SMFIR_CHGFROM and
 * SMFIR_ADDRCPT_PAR, read as Postfix's cleanup reads them
 * (cleanup_milter.c):
 *
 * - SMFIR_CHGFROM: RET= and ENVID= (what the queue file keeps with the
 *   sender) are applied; anything else, or a bad value, is logged
 *   `Ignoring bad ESMTP parameter "..." in SMFI_CHGFROM request` and skipped.
 * - SMFIR_ADDRCPT_PAR: NOTIFY= and ORCPT= go with the added recipient; a bad
 *   one or a second one is logged `Bad NOTIFY parameter from Milter or
 *   header/body_checks` (ORCPT alike) and skipped; any other argument
 *   `ignoring ESMTP argument from Milter or header/body_checks`.
 *
 * The values are decoded and checked by the one DSN decoder smtpd's MAIL
 * and RCPT use (message/dsn-params.ts), so a milter can queue nothing an
 * SMTP client could not. Pure code; runs in smtpd and pickup as mail_owner.
 * The arguments are a milter's and untrusted: at most MAX_ARGS of them are
 * read, each shown in a log line cut to 100 characters with its control
 * characters made "?".
 */
import { decodeXtext, type NotifyWord, parseNotify, parseOrcpt, validEnvid } from "../message/dsn-params.ts";

/** The DSN attributes a milter gave the new sender. */
export interface SenderDsn {
  ret?: "FULL" | "HDRS";
  envid?: string;
}

/** A recipient a milter added, with its DSN parameters. */
export interface AddedRecipient {
  address: string;
  notify?: NotifyWord[];
  orcpt?: string;
}

/** The most arguments read from one request (Postfix reads them all; a milter has no use for more). */
export const MAX_ARGS = 32;

/** An argument as a log line shows it: at most 100 characters, no control characters. */
export function shown(arg: string): string {
  return arg.slice(0, 100).replace(/[\x00-\x1f\x7f]/g, "?");
}

/** The arguments as Postfix's argv_split(args, " ") makes them, at most MAX_ARGS; `more`: how many were left unread. */
function split(args: string): { list: string[]; more: number } {
  const all = args.split(" ").filter((a) => a !== "");
  return { list: all.slice(0, MAX_ARGS), more: Math.max(all.length - MAX_ARGS, 0) };
}

const startsWith = (arg: string, name: string) => arg.slice(0, name.length).toUpperCase() === name;

/** SMFIR_CHGFROM's arguments: RET and ENVID applied, anything else warned about and skipped. */
export function chgfromArgs(args: string, warn: (text: string) => void): SenderDsn {
  const out: SenderDsn = {};
  const { list, more } = split(args);
  const bad = (arg: string) => warn(`Ignoring bad ESMTP parameter "${shown(arg)}" in SMFI_CHGFROM request`);
  for (const arg of list) {
    if (startsWith(arg, "RET=")) {
      const v = arg.slice(4).toUpperCase();
      if (v === "FULL" || v === "HDRS") out.ret = v;
      else bad(arg);
    } else if (startsWith(arg, "ENVID=")) {
      const v = decodeXtext(arg.slice(6));
      if (v !== undefined && validEnvid(v)) out.envid = v;
      else bad(arg);
    } else bad(arg);
  }
  if (more) warn(`Ignoring ${more} more ESMTP parameters in SMFI_CHGFROM request`);
  return out;
}

/** SMFIR_ADDRCPT_PAR's arguments: NOTIFY and ORCPT applied once each; `id`: the queue id the warnings start with ("" for none). */
export function addrcptArgs(args: string, id: string, warn: (text: string) => void): Omit<AddedRecipient, "address"> {
  const out: Omit<AddedRecipient, "address"> = {};
  const { list, more } = split(args);
  const prefix = id ? `${id}: ` : "";
  for (const arg of list) {
    if (startsWith(arg, "NOTIFY=")) {
      const v = out.notify ? undefined : parseNotify(arg.slice(7));
      if (v) out.notify = v;
      else warn(`${prefix}Bad NOTIFY parameter from Milter or header/body_checks: "${shown(arg)}"`);
    } else if (startsWith(arg, "ORCPT=")) {
      const v = out.orcpt !== undefined ? undefined : parseOrcpt(arg.slice(6));
      if (v !== undefined) out.orcpt = v;
      else warn(`${prefix}Bad ORCPT parameter from Milter or header/body_checks: "${shown(arg)}"`);
    } else warn(`${prefix}ignoring ESMTP argument from Milter or header/body_checks: "${shown(arg)}"`);
  }
  if (more) warn(`${prefix}ignoring ${more} more ESMTP arguments from Milter`);
  return out;
}

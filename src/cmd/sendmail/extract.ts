/**
 * `sendmail -t`: the recipients named in the message's primary headers.
 * To:, Cc: and Bcc: give them, unless the message has been resent: then
 * only the first Resent- block counts (the headers from the first Resent-
 * header through the ones that follow it directly), its Resent-To:,
 * Resent-Cc: and Resent-Bcc:, so the earlier recipients do not get the
 * message again. Command-line recipients are added by the caller, as with
 * Postfix.
 *
 * Runs as the submitting user over untrusted content.
 */
import { extractAddresses } from "../../global/address/parse.ts";
import { headerClass } from "../../global/message/header-names.ts";
import type { HeaderField } from "../../global/message/header-split.ts";

function isResent(name: string): boolean {
  return name.toLowerCase().startsWith("resent-");
}

/** Internal-form recipient addresses, in header order (latin1 header text decoded as UTF-8). */
export function extractRecipients(headers: readonly HeaderField[]): string[] {
  const first = headers.findIndex((h) => isResent(h.name));
  let pool: readonly HeaderField[] = headers;
  if (first >= 0) {
    let end = first;
    while (end < headers.length && isResent(headers[end]!.name)) end++;
    const block = headers.slice(first, end);
    if (block.some((h) => headerClass(h.name)?.extract)) pool = block;
    else pool = headers.filter((h) => !isResent(h.name));
  }
  const out: string[] = [];
  for (const h of pool) {
    const cls = headerClass(h.name);
    if (!cls?.extract) continue;
    const value = h.text.slice(h.text.indexOf(":") + 1);
    for (const a of extractAddresses(value)) out.push(Buffer.from(a, "latin1").toString("utf8"));
  }
  return out;
}

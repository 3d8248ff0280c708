/**
 * Whether an ARC set smtpd made over the message as received still holds
 * after cleanup: its ARC-Message-Signature covers the header fields its h=
 * names and the body, and cleanup may rewrite headers (canonical_maps,
 * masquerading, local header rewriting) or stray CRs. A seal that would
 * not verify is worse than none, so cleanup leaves it out then.
 *
 * Runs in smtpd (mail_owner) inside cleanup's build step; the headers are
 * untrusted, the h= list is smtpd's own (mailauth made it).
 */
import { canonicalHeader } from "../global/dkim/sign.ts";
import type { HeaderField } from "../global/message/header-split.ts";

function fieldName(text: string): string {
  return text.slice(0, text.indexOf(":")).trim().toLowerCase();
}

/** The relaxed forms of the fields named in `names`, per name, in message order. */
function covered(texts: readonly string[], names: ReadonlySet<string>): string {
  return texts
    .filter((t) => names.has(fieldName(t)))
    .map((t) => canonicalHeader(t, "relaxed"))
    .join("");
}

/** True when the fields the ARC-Message-Signature covers are the same before and after cleanup. */
export function arcHeadersIntact(arc: readonly string[], before: readonly HeaderField[], after: readonly string[]): boolean {
  const ams = arc.find((h) => /^ARC-Message-Signature:/i.test(h));
  const h = ams ? /[;\s]h=([^;]*)/.exec(ams.replace(/\n[ \t]+/g, " ")) : null;
  if (!h) return false;
  const names = new Set(
    h[1]!
      .split(":")
      .map((n) => n.trim().toLowerCase())
      .filter((n) => n !== ""),
  );
  return covered(
    before.map((f) => f.text),
    names,
  ) === covered(after, names);
}

/**
 * Where a virtual mailbox is, from the virtual_mailbox_maps result: the
 * result is relative to virtual_mailbox_base (Postfix joins them with "/",
 * so a result starting with "/" is still below the base); a result ending
 * in "/" is a Maildir, anything else an mbox file.
 *
 * Postfix refuses a result whose path holds "/../". postern refuses every
 * ".." component (a trailing one as well), an empty result or one that
 * names the base itself, and control characters: the path must name
 * something strictly inside the base.
 *
 * Pure; runs in the virtual agent. The table result is untrusted (a table
 * may be edited by a domain's administrator, or be SQL).
 */

export type MailboxPlace = { ok: true; kind: "maildir" | "mbox"; path: string } | { ok: false; why: string };

export function virtualMailboxPath(base: string, result: string): MailboxPlace {
  if (!base.startsWith("/")) return { ok: false, why: "virtual_mailbox_base is not an absolute path" };
  if (result === "" || /[\x00-\x1f\x7f]/.test(result)) return { ok: false, why: "bad mailbox path" };
  const parts = result.split("/");
  if (parts.some((p) => p === "..")) return { ok: false, why: "bad mailbox path" };
  const inner = parts.filter((p) => p !== "" && p !== ".");
  if (inner.length === 0) return { ok: false, why: "bad mailbox path" };
  const top = base === "/" ? "" : base.replace(/\/+$/, "");
  const maildir = result.endsWith("/");
  const path = `${top}/${inner.join("/")}${maildir ? "/" : ""}`;
  return { ok: true, kind: maildir ? "maildir" : "mbox", path };
}

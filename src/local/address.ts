/**
 * Address pieces local delivery works with: the local part split into user
 * and extension at `recipient_delimiter` (Postfix's split_addr, with its
 * exceptions for postmaster, MAILER-DAEMON, owner-x and x-request), the
 * canonical form of an address found in an alias or .forward file, and
 * whether its domain is delivered here.
 *
 * Runs in the local delivery agent; every address is untrusted text from
 * the envelope, an alias database or a user's .forward file.
 */

export interface AddressParts {
  /** The whole address, lower case. */
  address: string;
  /** The local part (left of the rightmost @), lower case. */
  local: string;
  /** The domain, lower case; "" when the address has none. */
  domain: string;
  /** The local part without its extension. */
  user: string;
  /** The extension, when recipient_delimiter split one off. */
  extension?: string;
  /** The delimiter character that split it off. */
  delimiter?: string;
  /** An extension was there but held a "/", so it was not split off. */
  illegalExtension?: boolean;
}

export interface SplitOptions {
  /** recipient_delimiter: every character is a delimiter. */
  delimiters: string;
  ownerRequestSpecial: boolean;
  /** The double-bounce sender local part, which is never split. */
  doubleBounceSender?: string;
}

/** Postfix's split_addr: the extension of `local`, or undefined when it must not be split. */
export function splitExtension(local: string, opts: SplitOptions): { user: string; extension: string; delimiter: string } | undefined {
  if (!opts.delimiters) return undefined;
  const lower = local.toLowerCase();
  if (lower === "postmaster" || lower === "mailer-daemon" || lower === (opts.doubleBounceSender ?? "double-bounce").toLowerCase()) return undefined;
  if (opts.delimiters.includes("-") && opts.ownerRequestSpecial) {
    if (lower.startsWith("owner-")) return undefined;
    if (lower.length > 8 && lower.endsWith("-request")) return undefined;
  }
  let at = -1;
  for (let i = 0; i < local.length; i++) {
    if (opts.delimiters.includes(local[i]!)) {
      at = i;
      break;
    }
  }
  if (at <= 0) return undefined;
  return { user: local.slice(0, at), extension: local.slice(at + 1), delimiter: local[at]! };
}

export function addressParts(address: string, opts: SplitOptions): AddressParts {
  const lower = address.toLowerCase();
  const at = lower.lastIndexOf("@");
  const local = at < 0 ? lower : lower.slice(0, at);
  const domain = at < 0 ? "" : lower.slice(at + 1);
  const split = splitExtension(local, opts);
  // an extension with a slash could walk out of a directory in forward_path
  if (split && !split.extension.includes("/")) {
    return { address: lower, local, domain, user: split.user, extension: split.extension, delimiter: split.delimiter };
  }
  return { address: lower, local, domain, user: local, ...(split ? { illegalExtension: true } : {}) };
}

/** Canonical form, as Postfix's rewrite does it for local delivery: an address without a domain gets @myorigin. */
export function canonicalAddress(address: string, myorigin: string): string {
  if (address === "") return address;
  return address.includes("@") ? address : `${address}@${myorigin}`;
}

/** The address with the unmatched extension put back before the @ (Postfix's extension propagation). */
export function withExtension(address: string, extension: string | undefined, delimiter: string): string {
  if (!extension) return address;
  const at = address.lastIndexOf("@");
  if (at < 0) return `${address}${delimiter}${extension}`;
  return `${address.slice(0, at)}${delimiter}${extension}${address.slice(at)}`;
}

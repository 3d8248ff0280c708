/**
 * Values of parameters postern acts on that nevertheless ask for something
 * it does not do: each function takes the expanded value and returns why it
 * is refused (with the fix), or undefined when postern honours it. The
 * registry attaches them with refusing() (param-def.ts); support.ts calls
 * them for `postern check`, start and reload.
 *
 * Pure functions of the configuration text: no file system, no network.
 */
import { parseIpAddress } from "../../util/net/cidr-match.ts";
import { splitList } from "./value-text.ts";

const CLIENT_TLS_LEVELS = ["none", "may", "encrypt", "verify", "secure", "fingerprint", "dane", "dane-only"];

/** What a value check may know of the rest of the configuration. */
export interface CheckContext {
  transports?: readonly string[];
  /** The expanded value of another parameter (as the same service sees it). */
  str?: (name: string) => string;
}

/**
 * smtp_tls_security_level, lmtp_tls_security_level. DANE believes the AD bit of the resolver only when
 * told to (`*_dns_support_level = dnssec`, Postfix's rule): without it "dane" would silently be "may"
 * and "dane-only" would defer everything, so both are refused.
 */
export function clientTlsLevelCheck(prefix: "smtp" | "lmtp"): (value: string, context?: CheckContext) => string | undefined {
  return (value, context) => {
    const level = value.trim().toLowerCase();
    if (!CLIENT_TLS_LEVELS.includes(level) && level !== "") return `unknown TLS security level "${level}"; use one of ${CLIENT_TLS_LEVELS.join(", ")}`;
    if ((level === "dane" || level === "dane-only") && context?.str) {
      const support = context.str(`${prefix}_dns_support_level`).trim().toLowerCase();
      const disabled = support === "disabled" || (support === "" && /^(yes|true|on|1)$/i.test(context.str("disable_dns_lookups").trim()));
      if (support !== "dnssec" || disabled) {
        return `TLS level "${level}" needs DNSSEC-validated DNS answers: set ${prefix}_dns_support_level = dnssec, with a validating resolver you trust (on this host, or named in dns_servers)`;
      }
    }
    return undefined;
  };
}

/** smtp_dns_support_level, lmtp_dns_support_level. */
export function refuseDnsSupportLevel(value: string): string | undefined {
  const v = value.trim().toLowerCase();
  if (v === "" || v === "disabled" || v === "enabled" || v === "dnssec") return undefined;
  return `unknown DNS support level "${v}"; use disabled, enabled or dnssec`;
}

/** smtp_tls_dane_insecure_mx_policy. */
export function refuseInsecureMxPolicy(value: string): string | undefined {
  const v = value.trim().toLowerCase();
  if (v === "may" || v === "encrypt" || v === "dane") return undefined;
  return `unknown insecure MX policy "${v}"; use may, encrypt or dane`;
}

/** tls_dane_digests: the TLSA matching types postern can compute. */
export function refuseDaneDigests(value: string): string | undefined {
  const bad = splitList(value).filter((w) => !/^(sha256|sha512)(=\d+)?$/i.test(w));
  if (bad.length === 0) return undefined;
  return `postern's DANE knows the digests sha256 and sha512 only, not "${bad.join(", ")}"`;
}

/** smtpd_tls_security_level. */
export function refuseServerTlsLevel(value: string): string | undefined {
  const level = value.trim().toLowerCase();
  if (level === "" || level === "none" || level === "may" || level === "encrypt") return undefined;
  return `unknown server TLS security level "${level}"; use none, may or encrypt`;
}

/** mailbox_transport, fallback_transport: "transport[:nexthop]" naming a transport postern has, not local itself. */
export function refusePassTransport(value: string, context?: TransportContext): string | undefined {
  const v = value.trim();
  if (v === "") return undefined;
  const transport = v.split(":")[0]!.toLowerCase();
  if (transport === "local") return `local delivery cannot pass mail to the local transport itself ("${v}")`;
  return refuseUnknownTransport(v, context);
}

/** The built-in transports the queue manager can hand mail to (src/qmgr/agents.ts). */
export const POSTERN_TRANSPORTS = ["local", "virtual", "smtp", "relay", "lmtp", "error", "discard", "retry"];

/** What a transport check knows of the configuration: its pipe services add transports of their own. */
export interface TransportContext {
  /** Every transport name: POSTERN_TRANSPORTS plus the configured pipe services. */
  transports?: readonly string[];
}

/** The transports of a configuration: the built-in ones and the names of its enabled pipe services. */
export function configuredTransports(pipeServiceNames: Iterable<string>): string[] {
  return [...POSTERN_TRANSPORTS, ...pipeServiceNames];
}

/** local_transport, default_transport, relay_transport: "transport[:nexthop]". */
export function refuseUnknownTransport(value: string, context?: TransportContext): string | undefined {
  const v = value.trim();
  if (v === "") return undefined;
  const transport = v.split(":")[0]!;
  const known = context?.transports ?? POSTERN_TRANSPORTS;
  if (known.includes(transport) || POSTERN_TRANSPORTS.includes(transport.toLowerCase())) return undefined;
  return `transport "${transport}" is not one postern has (${known.join(", ")}); define it as a [services.${transport}] table with role = "pipe", or name another transport`;
}

/** virtual_mailbox_base: virtual(8) stops at a relative one ("do not specify relative pathname"). */
export function refuseRelativeDirectory(value: string): string | undefined {
  const v = value.trim();
  if (v === "" || v.startsWith("/")) return undefined;
  return `do not specify relative pathname: "${v}"; write the absolute directory`;
}

/** virtual_mailbox_lock: fcntl, flock and dotlock, at least one. */
export function refuseMailboxLock(value: string): string | undefined {
  const words = splitList(value);
  const unknown = words.filter((w) => !["fcntl", "flock", "dotlock"].includes(w.toLowerCase()));
  if (unknown.length) return `unknown locking method ${unknown.map((w) => `"${w}"`).join(", ")}; use fcntl, flock or dotlock`;
  if (words.length === 0) return "no mailbox locking method; use fcntl, flock or dotlock";
  return undefined;
}

/** myorigin: Postfix reads a value starting with "/" from that file (Debian's /etc/mailname); postern does not. */
export function refuseFileValue(value: string): string | undefined {
  const v = value.trim();
  if (!v.startsWith("/")) return undefined;
  return `postern does not read this value from a file; write the domain itself (the content of ${v})`;
}

/**
 * inet_interfaces, proxy_interfaces: addresses, `all` or `loopback-only` (inet_interfaces only).
 * Postfix also takes host names and resolves them at start; postern's listeners, its own-address
 * check for user@[address] and its mail loop detection all need the addresses themselves, so a
 * name is refused here instead of failing at start or being passed over.
 */
export function refuseInterfaceNames(value: string): string | undefined {
  const names = splitList(value).filter((w) => {
    const lower = w.toLowerCase();
    if (lower === "all" || lower === "loopback-only" || lower === "localhost") return false;
    return !parseIpAddress(w.replace(/^\[|\]$/g, ""));
  });
  if (names.length === 0) return undefined;
  return `host names are not supported here (${names.map((n) => `"${n}"`).join(", ")}); write the addresses they stand for, or all / loopback-only`;
}

/** masquerade_exceptions: names and type:table entries; a /file entry postern does not read. */
export function refuseMasqueradeExceptionFiles(value: string): string | undefined {
  const files = splitList(value).filter((w) => w.replace(/^!+/, "").startsWith("/"));
  if (files.length === 0) return undefined;
  return `postern does not read names from a file in this list ("${files.join(", ")}"); list the names, or use a table (texthash:${files[0]!.replace(/^!+/, "")})`;
}

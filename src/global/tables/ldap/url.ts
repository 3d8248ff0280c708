/**
 * LDAP URLs (RFC 4516) as the ldap: table meets them: server_host entries
 * (`ldap://host:port`, `ldaps://host`, `ldapi://%2Frun%2Fslapd%2Fldapi`, or a
 * bare `host` / `host:port`), and the values of special_result_attribute
 * (`ldap:///dn?attrs?scope?filter`). Percent-escapes are decoded; anything
 * else malformed gives undefined.
 *
 * The text comes from the table's configuration file (trusted) or from the
 * directory (untrusted values of special_result_attribute).
 */

export type Scope = 0 | 1 | 2;
export const SCOPES: Record<string, Scope> = { base: 0, one: 1, sub: 2 };

export interface LdapUrl {
  scheme: "ldap" | "ldaps" | "ldapi";
  /** Host name or address (without brackets); empty for ldapi: and for "this server". */
  host: string;
  port: number;
  /** ldapi: socket path. */
  path: string;
  dn: string;
  attributes: string[];
  scope: Scope | undefined;
  filter: string | undefined;
}

const DEFAULT_LDAPI = "/var/run/ldapi";

function decode(text: string): string | undefined {
  try {
    return decodeURIComponent(text);
  } catch {
    return undefined;
  }
}

export function isLdapUrl(text: string): boolean {
  return /^ldap[si]?:\/\//i.test(text);
}

/** Parses an LDAP URL; `defaultPort` for ldap:// without a port (ldaps: defaults to 636). */
export function parseLdapUrl(text: string, defaultPort = 389): LdapUrl | undefined {
  const m = /^(ldaps?|ldapi):\/\/([^/?]*)(?:\/([^?]*)(?:\?([^?]*)(?:\?([^?]*)(?:\?([^?]*)(?:\?(.*))?)?)?)?)?$/i.exec(text);
  if (!m) return undefined;
  const scheme = m[1]!.toLowerCase() as LdapUrl["scheme"];
  let host = "";
  let port = scheme === "ldaps" ? 636 : defaultPort;
  let path = "";
  const hostport = m[2]!;
  if (scheme === "ldapi") {
    const p = decode(hostport);
    if (p === undefined) return undefined;
    path = p || DEFAULT_LDAPI;
  } else if (hostport) {
    const hp = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+))(?::(\d{1,5}))?$/.exec(hostport);
    if (!hp) return undefined;
    host = hp[1] ?? decode(hp[2]!) ?? "";
    if (hp[3] !== undefined) port = Number(hp[3]);
    if (port < 1 || port > 65535 || host === "") return undefined;
  }
  const dn = decode(m[3] ?? "");
  const attrs = decode(m[4] ?? "");
  const filter = m[6] ? decode(m[6]) : undefined;
  if (dn === undefined || attrs === undefined || (m[6] && filter === undefined)) return undefined;
  let scope: Scope | undefined;
  if (m[5]) {
    scope = SCOPES[m[5].toLowerCase()];
    if (scope === undefined) return undefined;
  }
  return { scheme, host, port, path, dn, attributes: attrs.split(",").filter(Boolean), scope, filter };
}

/** A server_host entry: an LDAP URL, or `host` / `host:port` (with server_port as the default). */
export function parseServerHost(entry: string, serverPort: number): LdapUrl | undefined {
  if (isLdapUrl(entry)) return parseLdapUrl(entry, serverPort);
  return parseLdapUrl(`ldap://${entry}`, serverPort);
}

export function describeUrl(u: LdapUrl): string {
  if (u.scheme === "ldapi") return `ldapi://${encodeURIComponent(u.path)}`;
  return `${u.scheme}://${u.host.includes(":") ? `[${u.host}]` : u.host}:${u.port}`;
}

/**
 * Next-hop destinations as relayhost, transport_maps, smtp_fallback_relay
 * and the LMTP transports write them (Postfix's smtp(8) and lmtp(8)):
 *
 *   domain            MX lookup (SMTP), else the host's addresses
 *   domain:port       the same, at another port (a number or a service name)
 *   [host]            no MX lookup; also [192.0.2.1], [2001:db8::1], [ipv6:2001:db8::1]
 *   [host]:port
 *   unix:/path        LMTP over a unix-domain socket (relative to queue_directory)
 *   inet:host:port    LMTP over TCP (the "inet:" is optional)
 *
 * A next hop may list several destinations separated by commas or white
 * space; they are tried in order. The text comes from the configuration
 * and from lookup tables: it is checked, and a bad one is a problem to
 * report (the mail is deferred), never a crash.
 */
import { isAbsolute, join } from "node:path";

/** Postfix's known_tcp_ports. */
const KNOWN_PORTS: Record<string, number> = { lmtp: 24, smtp: 25, smtps: 465, submissions: 465, submission: 587 };

export interface Destination {
  /** As written, e.g. "[smtp.example.com]:587" (the key for SASL passwords and TLS policies). */
  text: string;
  /** The host or domain, without brackets, "ipv6:" or port. */
  host: string;
  port: number;
  /** Whether the host is a domain to look MX records up for. */
  mx: boolean;
  /** Written in brackets. */
  bracketed: boolean;
  /** LMTP over a unix-domain socket: the absolute path. */
  unix?: string;
}

export function parsePort(text: string): number | undefined {
  const lower = text.toLowerCase();
  if (KNOWN_PORTS[lower] !== undefined) return KNOWN_PORTS[lower];
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n > 0 && n < 65536 ? n : undefined;
}

export interface ParseOptions {
  lmtp: boolean;
  defaultPort: number;
  /** For relative unix: paths. */
  queueDirectory: string;
}

/** Splits a list and parses each destination; the first bad one is the problem. */
export function parseDestinations(text: string, opts: ParseOptions): Destination[] | { problem: string } {
  const out: Destination[] = [];
  for (const word of text.split(/[\s,]+/).filter(Boolean)) {
    const d = parseDestination(word, opts);
    if ("problem" in d) return d;
    out.push(d);
  }
  if (out.length === 0) return { problem: `empty next-hop destination "${text}"` };
  return out;
}

export function parseDestination(text: string, opts: ParseOptions): Destination | { problem: string } {
  let rest = text;
  if (opts.lmtp) {
    if (rest.startsWith("unix:")) {
      const path = rest.slice(5);
      if (!path) return { problem: `missing socket path in destination "${text}"` };
      return { text, host: path, port: 0, mx: false, bracketed: false, unix: isAbsolute(path) ? path : join(opts.queueDirectory, path) };
    }
    if (rest.startsWith("inet:")) rest = rest.slice(5);
  }
  let host: string;
  let portText: string | undefined;
  let bracketed = false;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) return { problem: `missing "]" in destination "${text}"` };
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (after) {
      if (!after.startsWith(":")) return { problem: `garbage after "]" in destination "${text}"` };
      portText = after.slice(1);
    }
    bracketed = true;
    if (/^ipv6:/i.test(host)) host = host.slice(5);
  } else {
    const colon = rest.lastIndexOf(":");
    if (colon >= 0) {
      if (rest.indexOf(":") !== colon) return { problem: `an IPv6 address must be in brackets in destination "${text}"` };
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    } else host = rest;
  }
  if (!host) return { problem: `missing host in destination "${text}"` };
  if (/[\s<>()@;\\"]/.test(host)) return { problem: `bad host name in destination "${text}"` };
  let port = opts.defaultPort;
  if (portText !== undefined) {
    const n = parsePort(portText);
    if (n === undefined) return { problem: `unknown service "${portText}" in destination "${text}"` };
    port = n;
  }
  return { text, host: host.toLowerCase().replace(/\.$/, ""), port, mx: !opts.lmtp && !bracketed, bracketed };
}

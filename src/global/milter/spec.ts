/**
 * The milter lists (smtpd_milters, non_smtpd_milters) read into one
 * settings object per milter: its address (`inet:host:port`,
 * `unix:/path`, or a bare path for unix), the timeouts, the protocol
 * version, the default action, with Postfix's per-milter overrides
 * `{ inet:host:port, default_action=accept, command_timeout=10s, ... }`.
 *
 * Pure code; runs in smtpd, cleanup and `postern check`. The list comes from
 * the administrator's configuration; a bad entry is a configuration error.
 */
import type { Config } from "../config/config.ts";
import { splitList } from "../config/value-text.ts";
import { parseTime } from "../../util/duration.ts";

export const DEFAULT_ACTIONS = ["accept", "reject", "tempfail", "quarantine", "shutdown"] as const;
export type DefaultAction = (typeof DEFAULT_ACTIONS)[number];

export type MilterAddress = { kind: "inet"; host: string; port: number } | { kind: "unix"; path: string };

export interface MilterSpec {
  /** As written in the list ("inet:127.0.0.1:8891"): log lines name the milter so. */
  name: string;
  address: MilterAddress;
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  contentTimeoutMs: number;
  /** Protocol version offered (2, 3, 4 or 6). */
  protocol: number;
  /** milter_protocol "no_header_reply": ask the milter not to answer each header. */
  noHeaderReply: boolean;
  defaultAction: DefaultAction;
}

export class MilterSpecError extends Error {}

export function parseMilterAddress(name: string): MilterAddress {
  if (name.startsWith("inet:")) {
    const m = /^inet:(.+):(\d{1,5})$/.exec(name);
    const host = m?.[1]?.replace(/^\[(.*)\]$/, "$1") ?? "";
    const port = Number(m?.[2] ?? 0);
    if (!host || port < 1 || port > 65535) throw new MilterSpecError(`bad milter address "${name}": expected inet:host:port`);
    return { kind: "inet", host, port };
  }
  if (name.startsWith("unix:") || name.startsWith("local:")) {
    const path = name.slice(name.indexOf(":") + 1);
    if (!path) throw new MilterSpecError(`bad milter address "${name}": empty path`);
    return { kind: "unix", path };
  }
  if (name.startsWith("/")) return { kind: "unix", path: name };
  throw new MilterSpecError(`bad milter address "${name}": expected inet:host:port or unix:/path`);
}

/** milter_protocol: a version (2, 3, 4, 6), optionally with "no_header_reply". */
export function parseMilterProtocol(text: string): { protocol: number; noHeaderReply: boolean } {
  const words = text.split(/[\s,]+/).filter(Boolean);
  let protocol = 6;
  let noHeaderReply = false;
  for (const w of words) {
    if (w === "no_header_reply") noHeaderReply = true;
    else if (/^[2346]$/.test(w)) protocol = Number(w);
    else throw new MilterSpecError(`bad milter_protocol "${text}": expected 2, 3, 4 or 6, optionally with no_header_reply`);
  }
  return { protocol, noHeaderReply };
}

function defaultAction(text: string, where: string): DefaultAction {
  const v = text.trim().toLowerCase();
  if (!(DEFAULT_ACTIONS as readonly string[]).includes(v)) throw new MilterSpecError(`bad ${where} "${text}": expected accept, reject, tempfail, quarantine or shutdown`);
  return v as DefaultAction;
}

function timeMs(text: string, where: string): number {
  const s = parseTime(text, "s");
  if (s === undefined || s < 0) throw new MilterSpecError(`bad ${where} "${text}"`);
  return s * 1000;
}

/** The milters of a list parameter, with the global milter_* settings and each entry's overrides. */
export function milterSpecs(config: Config, listParam: string): MilterSpec[] {
  return parseMilterList(config.str(listParam), {
    connectTimeoutMs: config.time("milter_connect_timeout") * 1000,
    commandTimeoutMs: config.time("milter_command_timeout") * 1000,
    contentTimeoutMs: config.time("milter_content_timeout") * 1000,
    ...parseMilterProtocol(config.str("milter_protocol")),
    defaultAction: defaultAction(config.str("milter_default_action"), "milter_default_action"),
  });
}

export function parseMilterList(text: string, base: Omit<MilterSpec, "name" | "address">): MilterSpec[] {
  const out: MilterSpec[] = [];
  for (const entry of splitList(text)) {
    if (!entry.startsWith("{")) {
      out.push({ ...base, name: entry, address: parseMilterAddress(entry) });
      continue;
    }
    if (!entry.endsWith("}")) throw new MilterSpecError(`milter service syntax error: missing "}" in "${entry}"`);
    const words = splitList(entry.slice(1, -1));
    const name = words.shift();
    if (!name) throw new MilterSpecError(`empty milter definition: "${entry}"`);
    const spec: MilterSpec = { ...base, name, address: parseMilterAddress(name) };
    for (const w of words) {
      const eq = w.indexOf("=");
      if (eq < 1) throw new MilterSpecError(`milter ${name}: bad attribute "${w}": expected name=value`);
      const key = w.slice(0, eq).trim();
      const value = w.slice(eq + 1).trim();
      switch (key) {
        case "connect_timeout":
          spec.connectTimeoutMs = timeMs(value, `${key} of ${name}`);
          break;
        case "command_timeout":
          spec.commandTimeoutMs = timeMs(value, `${key} of ${name}`);
          break;
        case "content_timeout":
          spec.contentTimeoutMs = timeMs(value, `${key} of ${name}`);
          break;
        case "default_action":
          spec.defaultAction = defaultAction(value, `${key} of ${name}`);
          break;
        case "protocol":
          Object.assign(spec, parseMilterProtocol(value));
          break;
        default:
          throw new MilterSpecError(`milter ${name}: unknown attribute "${key}"`);
      }
    }
    out.push(spec);
  }
  return out;
}

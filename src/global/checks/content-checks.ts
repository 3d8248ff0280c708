/**
 * The engine of header_checks(5) and body_checks, shared by cleanup and the
 * SMTP client as Postfix shares header_body_checks.c: the message is read
 * with the MIME reader (global/message/mime-reader.ts); each logical header
 * is looked up in the tables of its class (header, mime or nested), each
 * body line in the body tables while it starts within
 * body_checks_size_limit bytes of its body part; a value found goes to the
 * caller's actor, which says what becomes of the line (kept, dropped,
 * replaced, another line before it). The message is rebuilt only when a line
 * changed.
 *
 * Empty lines are never looked up (Postfix: "empty lines never match").
 * A table that cannot be read throws its TableError: the caller defers.
 * Runs in smtpd, pickup and the queue manager's SMTP client as mail_owner;
 * the content is untrusted, the tables are the administrator's.
 */
import type { Config } from "../config/config.ts";
import { headerNameLength } from "../message/header-split.ts";
import { readMime, type HeaderKind, type MimeLimits, type MimeReadState } from "../message/mime-reader.ts";
import { lookupInTables, openTables } from "../tables/open-table.ts";
import type { Table } from "../tables/table.ts";

export interface CheckTables {
  /** Tables per header class, and for body lines; a class without tables is absent. */
  header?: Table[];
  mime?: Table[];
  nested?: Table[];
  body?: Table[];
  /** The parameter names, for warnings ("header_checks", "smtp_body_checks", ...). */
  names: Record<HeaderKind | "body", string>;
  limits: MimeLimits;
  /** body_checks_size_limit (0: no limit). */
  bodySizeLimit: number;
}

/** What becomes of a line: kept as it is, dropped, or replaced by this text. */
export type LineFate = "keep" | "drop" | { replace: string };

export interface CheckActor {
  /** False once a decision ends the inspection (REJECT, DISCARD, ...). */
  readonly active: boolean;
  /**
   * A table gave `value` for `line` ("header" or "body" says which), from
   * the table named `mapClass`. `prepend` puts a line before it.
   */
  act(where: "header" | "body", line: string, value: string, mapClass: string, prepend: (text: string) => void): LineFate;
}

export interface CheckedContent {
  /** The message after the actions (the input itself when nothing changed). */
  content: Uint8Array;
  changed: boolean;
  /** The message had more nested multiparts than mime_nesting_limit: the start of the header that went too deep. */
  nestingExceeded?: string;
}

/** The four parameters of cleanup and of each client protocol. */
const clientNames = (p: "smtp" | "lmtp") => ({ primary: `${p}_header_checks`, mime: `${p}_mime_header_checks`, nested: `${p}_nested_header_checks`, body: `${p}_body_checks` });
const PARAM_NAMES = {
  cleanup: { primary: "header_checks", mime: "mime_header_checks", nested: "nested_header_checks", body: "body_checks" },
  smtp: clientNames("smtp"),
  lmtp: clientNames("lmtp"),
};

/** The tables named by the four parameters of `user` (cleanup, the SMTP or LMTP client), or undefined when none is set. */
export function openCheckTables(config: Config, user: "cleanup" | "smtp" | "lmtp"): CheckTables | undefined {
  const names = PARAM_NAMES[user];
  const specs = { primary: config.list(names.primary), mime: config.list(names.mime), nested: config.list(names.nested), body: config.list(names.body) };
  if (!specs.primary.length && !specs.mime.length && !specs.nested.length && !specs.body.length) return undefined;
  const open = (list: string[]) => (list.length ? openTables(list, config) : undefined);
  const header = open(specs.primary);
  const mime = open(specs.mime);
  const nested = open(specs.nested);
  const body = open(specs.body);
  return {
    ...(header ? { header } : {}),
    ...(mime ? { mime } : {}),
    ...(nested ? { nested } : {}),
    ...(body ? { body } : {}),
    names,
    limits: {
      lineLengthLimit: config.int("line_length_limit"),
      headerSizeLimit: config.int("header_size_limit"),
      nestingLimit: config.int("mime_nesting_limit"),
      boundaryLengthLimit: config.int("mime_boundary_length_limit"),
    },
    bodySizeLimit: config.int("body_checks_size_limit"),
  };
}

/** Splits a table value into its command and optional text ("REJECT  go away" is REJECT and "go away"). */
/** What a line action needs from its caller: where the line is, how to log, warn and prepend. */
export interface LineActionContext {
  where: "header" | "body";
  line: string;
  mapClass: string;
  /** Postfix's "ACTION: header LINE: TEXT" info line. */
  log: (action: string, where: string, line: string, text: string) => void;
  warn: (text: string) => void;
  prepend: (text: string) => void;
}

/**
 * The line actions cleanup and the SMTP client have alike (Postfix's header_body_checks.c): WARN, INFO,
 * REPLACE, PREPEND, STRIP, IGNORE, DUNNO and OK. Undefined for any other command, which is the caller's.
 */
export function commonLineAction(command: string, text: string, c: LineActionContext): LineFate | undefined {
  switch (command) {
    case "WARN":
      c.log("warning", c.where, c.line, text);
      return "keep";
    case "INFO":
      c.log("info", c.where, c.line, text);
      return "keep";
    case "REPLACE":
    case "PREPEND": {
      const what = command;
      if (text === "") c.warn(`${what} action without text in ${c.mapClass} map`);
      else if (c.where === "header" && headerNameLength(text) === 0) c.warn(`bad ${what} header text "${text}" in ${c.mapClass} map -- need "headername: headervalue"`);
      else if (what === "REPLACE") {
        c.log("replace", c.where, c.line, text);
        return { replace: text };
      } else {
        c.log("prepend", c.where, c.line, text);
        c.prepend(text);
      }
      return "keep";
    }
    case "STRIP":
      c.log("strip", c.where, c.line, text);
      return "drop";
    case "IGNORE":
      return "drop";
    case "DUNNO":
    case "OK":
      return "keep";
    default:
      return undefined;
  }
}

export function splitAction(value: string): { command: string; text: string } {
  const m = /^(\S*)\s*([\s\S]*)$/.exec(value)!;
  return { command: m[1]!.toUpperCase(), text: m[2]! };
}

/**
 * The lines one header becomes: the lines its action puts before it, then
 * the header itself, replaced or not, unless it was dropped.
 */
export async function checkHeader(text: string, cls: HeaderKind, tables: CheckTables, actor: CheckActor): Promise<{ lines: string[]; changed: boolean }> {
  const list = cls === "primary" ? tables.header : cls === "mime" ? tables.mime : tables.nested;
  if (!actor.active || !list || text === "") return { lines: [text], changed: false };
  const value = await lookupInTables(list, text);
  if (value === undefined) return { lines: [text], changed: false };
  const lines: string[] = [];
  const fate = actor.act("header", text, value, tables.names[cls], (line) => lines.push(line));
  if (fate === "keep") lines.push(text);
  else if (fate !== "drop") lines.push(fate.replace);
  return { lines, changed: fate !== "keep" || lines.length > 1 };
}

export async function runContentChecks(content: Uint8Array, tables: CheckTables, actor: CheckActor): Promise<CheckedContent> {
  const state: MimeReadState = { nestingExceeded: false };
  const out: string[] = [];
  let changed = false;
  for (const ev of readMime(content, tables.limits, state)) {
    if (ev.kind === "header") {
      if (ev.truncated) changed = true;
      const header = await checkHeader(ev.text, ev.cls, tables, actor);
      if (header.changed) changed = true;
      for (const line of header.lines) out.push(`${line}\n`);
      continue;
    }
    let fate: LineFate = "keep";
    const before: string[] = [];
    if (ev.synthetic) changed = true;
    const list = tables.body;
    if (actor.active && list && !ev.synthetic && ev.text !== "" && (tables.bodySizeLimit <= 0 || ev.offset < tables.bodySizeLimit)) {
      const value = await lookupInTables(list, ev.text);
      if (value !== undefined) fate = actor.act("body", ev.text, value, tables.names.body, (line) => before.push(line));
    }
    const end = ev.eol ? "\n" : "";
    for (const line of before) out.push(`${line}\n`);
    if (fate === "keep") out.push(ev.text + end);
    else if (fate !== "drop") out.push(fate.replace + end);
    if (fate !== "keep" || before.length > 0) changed = true;
  }
  const nesting = state.nestingExceeded ? { nestingExceeded: state.nestingText ?? "" } : {};
  if (!changed) return { content, changed: false, ...nesting };
  return { content: Buffer.from(out.join(""), "latin1"), changed: true, ...nesting };
}

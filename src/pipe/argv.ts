/**
 * pipe(8)'s command-line expansion, as Postfix's expand_argv(): each argv
 * word is expanded once, or, when it names a per-recipient macro
 * (${recipient}, ${original_recipient}, ${user}, ${extension}, ${mailbox},
 * ${domain}), once per recipient, each result its own argv word. Macros
 * are `$name`, `${name}` and `$(name)`; `$$` is a literal `$`. Expansion
 * is not recursive (an address holding `$` stays as it is) and never goes
 * through a shell. An unknown macro name is a configuration error (Postfix
 * defers with 4.3.5 and warns).
 *
 * Runs in the local service (root) before the command is handed to a
 * worker running as the pipe service's user. The addresses are untrusted;
 * they only ever become whole argv words (or parts of one).
 */
import { splitExtension } from "../global/tables/address-lookup.ts";

/** The values every word may name. */
export interface PipeMessageValues {
  sender: string;
  nexthop: string;
  size: string;
  queue_id: string;
  client_address: string;
  client_hostname: string;
  client_port: string;
  client_protocol: string;
  client_helo: string;
  sasl_method: string;
  sasl_username: string;
  sasl_sender: string;
  envid: string;
}

export interface PipeRecipient {
  address: string;
  /** The address before rewriting; the address itself when unknown. */
  original: string;
}

const PER_RECIPIENT = new Set(["recipient", "original_recipient", "user", "extension", "mailbox", "domain"]);
const PER_MESSAGE = new Set(["sender", "nexthop", "size", "queue_id", "client_address", "client_hostname", "client_port", "client_protocol", "client_helo", "sasl_method", "sasl_username", "sasl_sender", "envid"]);

export class MacroError extends Error {}

type Piece = { text: string } | { name: string };

/** Splits a word into text and macro names; throws MacroError on bad syntax or an unknown name. */
export function parseWord(word: string): Piece[] {
  const out: Piece[] = [];
  let text = "";
  for (let i = 0; i < word.length; ) {
    const c = word[i]!;
    if (c !== "$") {
      text += c;
      i++;
      continue;
    }
    const next = word[i + 1];
    if (next === "$") {
      text += "$";
      i += 2;
      continue;
    }
    let name: string;
    if (next === "{" || next === "(") {
      const close = word.indexOf(next === "{" ? "}" : ")", i + 2);
      if (close < 0) throw new MacroError(`missing '${next === "{" ? "}" : ")"}' in "${word}"`);
      name = word.slice(i + 2, close);
      i = close + 1;
    } else {
      const m = /^[A-Za-z0-9_]+/.exec(word.slice(i + 1));
      if (!m) throw new MacroError(`bad macro syntax in "${word}"`);
      name = m[0];
      i += 1 + name.length;
    }
    if (!PER_RECIPIENT.has(name) && !PER_MESSAGE.has(name)) throw new MacroError(`unknown macro name: "${name}"`);
    if (text) out.push({ text });
    text = "";
    out.push({ name });
  }
  if (text) out.push({ text });
  return out;
}

/** Flags h, u, q: fold the domain, fold the local part, quote the local part (pipe.c's morph_recipient). */
export interface Morph {
  foldHost?: boolean;
  foldUser?: boolean;
  /** quote_822_local, given by the caller; undefined: no quoting. */
  quote?: (address: string) => string;
}

/** fold_addr(): lower-case the local part and/or the domain (the part after the rightmost @). */
export function foldAddress(address: string, m: Morph): string {
  const at = address.lastIndexOf("@");
  const local = at < 0 ? address : address.slice(0, at);
  const domain = at < 0 ? "" : address.slice(at);
  return (m.foldUser ? local.toLowerCase() : local) + (m.foldHost ? domain.toLowerCase() : domain);
}

/** Per-recipient values, as pipe.c derives them: quoting only for the two addresses, folding for all. */
export function recipientValues(r: PipeRecipient, recipientDelimiter: string, m: Morph = {}): Record<string, string> {
  const morph = (a: string) => foldAddress(m.quote ? m.quote(a) : a, m);
  const folded = foldAddress(r.address, m);
  const at = folded.lastIndexOf("@");
  const mailbox = at < 0 ? folded : folded.slice(0, at);
  const domain = at < 0 ? "" : folded.slice(at + 1);
  // split_addr(): the extension delimiter splits the local part; Postfix's special names keep theirs
  const split = splitExtension(mailbox, recipientDelimiter);
  return { recipient: morph(r.address), original_recipient: morph(r.original), mailbox, domain, user: split ? split.user : mailbox, extension: split ? split.extension : "" };
}

/** The expanded argument vector. Throws MacroError for a configuration error. */
export function expandPipeArgv(argv: readonly string[], message: PipeMessageValues, recipients: readonly PipeRecipient[], recipientDelimiter: string, morph: Morph = {}): string[] {
  const perRecipient = recipients.map((r) => recipientValues(r, recipientDelimiter, morph));
  const values = message as unknown as Record<string, string>;
  const result: string[] = [];
  for (const word of argv) {
    const pieces = parseWord(word);
    const render = (own: Record<string, string>) => pieces.map((p) => ("text" in p ? p.text : (own[p.name] ?? values[p.name] ?? ""))).join("");
    if (pieces.some((p) => "name" in p && PER_RECIPIENT.has(p.name))) for (const own of perRecipient) result.push(render(own));
    else result.push(render({}));
  }
  return result;
}

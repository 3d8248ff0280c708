/**
 * DKIM signing in cleanup: which key signs a message, and the signature
 * put on top of the finished message before its queue file is written, so
 * that every copy (every recipient, every retry) carries the same one.
 *
 * - The key is chosen by the author domain, the domain of the (first)
 *   address of the From: header as cleanup leaves it (after canonical and
 *   masquerade rewrites), since that is the domain DMARC aligns with.
 *   dkim_sign_maps is looked up with the domain, then with each parent
 *   domain as ".parent" (Postfix's table convention); the value is
 *   SELECTOR (signing domain: the domain that matched, without the dot)
 *   or SIGNING_DOMAIN:SELECTOR. A domain no table lists signs with
 *   dkim_default_key when it is set. The key is
 *   $dkim_key_directory/SIGNING_DOMAIN.SELECTOR.key, read at start (keys.ts).
 * - Table lookups are asynchronous and the message is built in a
 *   synchronous step (its queue ID comes from the file's inode), so the
 *   lookups are made beforehand, for each domain the From: header can end
 *   up with: those written (and completed with $mydomain), those canonical
 *   maps rewrite to, the envelope sender's and $myorigin's (cleanup may add
 *   a From: header).
 * - Lines longer than smtp_line_length_limit are broken first, as the SMTP
 *   client would break them on the wire, so the signature covers what is
 *   sent.
 * - A message that cannot be signed (no key loaded, no From: domain) is
 *   queued unsigned with a warning: no mail is refused for want of a key.
 *
 * Runs in pickup and smtpd as mail_owner with keys loaded before the drop.
 * The message and its From: header are untrusted: they choose a key only
 * through the tables the administrator wrote.
 */
import { extractAddresses } from "../global/address/parse.ts";
import type { Config } from "../global/config/config.ts";
import { dkimSignature, type Canonicalization, type DkimSigner, type SignOptions } from "../global/dkim/sign.ts";
import { isDkimName, keyFileName, type DkimKeyring } from "../global/dkim/keys.ts";
import { breakLongLines } from "../global/message/long-lines.ts";
import { findHeaders, headerValue, splitMessage } from "../global/message/header-split.ts";
import { openTables, lookupInTables } from "../global/tables/open-table.ts";
import type { Table } from "../global/tables/table.ts";

/** A table's answer for a domain: the signer, or why it cannot sign. */
export type SignerEntry = { signer: DkimSigner } | { problem: string };

/** The entries found for the domains a message's From: header can have (undefined: that domain is not signed). */
export type SignerChoice = ReadonlyMap<string, SignerEntry | undefined>;

/** What a submission carries to be signed. */
export interface DkimRequest {
  signing: DkimSigning;
  choice: SignerChoice;
}

export interface SignResult {
  content: Buffer;
  /** "DKIM-Signature field added (s=SELECTOR, d=DOMAIN)", as OpenDKIM logs it. */
  log?: string;
  warning?: string;
}

const MAX_CANDIDATES = 20;

function domainOf(address: string): string | undefined {
  const at = address.lastIndexOf("@");
  if (at < 0) return undefined;
  const d = address
    .slice(at + 1)
    .toLowerCase()
    .replace(/\.$/, "");
  return d && isDkimName(d) ? d : undefined;
}

/** The From: domains of a message's headers (the first address of each From: header). */
function fromDomains(content: Buffer, lineLengthLimit: number, headerSizeLimit: number): string[] {
  const split = splitMessage(content, { lineLengthLimit, headerSizeLimit });
  const out: string[] = [];
  for (const h of findHeaders(split.headers, "from")) {
    const first = extractAddresses(headerValue(h), 100)[0];
    const d = first === undefined ? undefined : domainOf(first);
    if (d) out.push(d);
  }
  return out;
}

export class DkimSigning {
  readonly #keys: DkimKeyring;
  readonly #tables: Table[];
  readonly #defaultKey: string;
  readonly #options: Omit<SignOptions, "time">;
  readonly #lineLimit: number;
  readonly #myorigin: string;
  readonly #mydomain: string;
  readonly #lineLengthLimit: number;
  readonly #headerSizeLimit: number;

  constructor(config: Config, keys: DkimKeyring) {
    this.#keys = keys;
    this.#tables = openTables(config.list("dkim_sign_maps"), config);
    this.#defaultKey = config.str("dkim_default_key").trim();
    const [header, body] = config.str("dkim_canonicalization").toLowerCase().trim().split("/") as [Canonicalization, Canonicalization | undefined];
    this.#options = {
      header,
      body: body ?? "simple",
      signedHeaders: config.list("dkim_signed_headers"),
      oversignedHeaders: config.list("dkim_oversigned_headers"),
    };
    this.#lineLimit = config.int("smtp_line_length_limit");
    this.#myorigin = config.str("myorigin").toLowerCase();
    this.#mydomain = config.str("mydomain").toLowerCase();
    this.#lineLengthLimit = config.int("line_length_limit");
    this.#headerSizeLimit = config.int("header_size_limit");
  }

  /** Whether anything is to be signed at all. */
  get enabled(): boolean {
    return this.#tables.length > 0 || this.#defaultKey !== "";
  }

  /**
   * Looks up the signer of each domain the From: header can end up with.
   * `rewritten` are the addresses canonical maps give for header addresses.
   * Throws TableError when a table cannot be read (the caller defers).
   */
  async choose(content: Buffer, sender: string, rewritten: Iterable<string>): Promise<SignerChoice> {
    const domains = new Set<string>();
    for (const d of fromDomains(content, this.#lineLengthLimit, this.#headerSizeLimit)) {
      domains.add(d);
      // append_dot_mydomain: cleanup completes "user@host" to "user@host.$mydomain"
      if (!d.includes(".") && isDkimName(`${d}.${this.#mydomain}`)) domains.add(`${d}.${this.#mydomain}`);
    }
    for (const a of rewritten) {
      const d = domainOf(a);
      if (d) domains.add(d);
    }
    const s = domainOf(sender);
    if (s) domains.add(s);
    if (isDkimName(this.#myorigin)) domains.add(this.#myorigin);
    const out = new Map<string, SignerEntry | undefined>();
    for (const d of [...domains].slice(0, MAX_CANDIDATES)) out.set(d, await this.#signerFor(d));
    return out;
  }

  async #signerFor(domain: string): Promise<SignerEntry | undefined> {
    let value: string | undefined;
    let matched = domain;
    if (this.#tables.length > 0) {
      value = await lookupInTables(this.#tables, domain);
      const labels = domain.split(".");
      for (let i = 1; value === undefined && i < labels.length; i++) {
        matched = labels.slice(i).join(".");
        value = await lookupInTables(this.#tables, `.${matched}`);
      }
    }
    if (value === undefined) {
      if (!this.#defaultKey) return undefined;
      value = this.#defaultKey;
      matched = "";
    }
    const parts = value.trim().split(":");
    const [signingDomain, selector] = parts.length === 2 ? [parts[0]!.toLowerCase(), parts[1]!] : [matched, parts[0]!];
    if (parts.length > 2 || !signingDomain || !isDkimName(signingDomain) || !isDkimName(selector)) {
      return { problem: `bad signing entry "${value}" for ${domain}: need SELECTOR or DOMAIN:SELECTOR` };
    }
    const key = this.#keys.get(signingDomain, selector);
    if (!key) return { problem: `no key ${this.#keys.directory}/${keyFileName(signingDomain, selector)} was loaded at start` };
    return { signer: { domain: signingDomain, selector, key } };
  }

  /** The message with its signature on top, per `choice`; unchanged (with a warning) when it cannot be signed. */
  sign(message: Buffer, choice: SignerChoice, now: Date): SignResult {
    const domains = fromDomains(message, this.#lineLengthLimit, this.#headerSizeLimit);
    const author = domains[0];
    if (author === undefined) return { content: message };
    if (!choice.has(author)) return { content: message, warning: `DKIM: the author domain ${author} was not looked up: message not signed` };
    const entry = choice.get(author);
    if (!entry) return { content: message };
    if ("problem" in entry) return { content: message, warning: `DKIM: ${entry.problem}: message not signed` };
    const { signer } = entry;
    const content = breakLongLines(message, this.#lineLimit);
    const split = splitMessage(content, { lineLengthLimit: Number.MAX_SAFE_INTEGER, headerSizeLimit: Number.MAX_SAFE_INTEGER });
    // the body starts after the empty line (cleanup always writes one)
    const body = content.subarray(split.endedBy === "blank" ? split.bodyOffset + 1 : split.bodyOffset);
    const header = dkimSignature(split.headers, body, signer, { ...this.#options, time: Math.floor(now.getTime() / 1000) });
    return { content: Buffer.concat([Buffer.from(`${header}\n`, "latin1"), content]), log: `DKIM-Signature field added (s=${signer.selector}, d=${signer.domain})` };
  }
}

/**
 * The checks on receipt (docs/authentication.md): SPF with the client's
 * address, HELO name and MAIL FROM; every DKIM signature; DMARC
 * (alignment and the domain's policy); the ARC chain, all through
 * mailauth with postern's resolver (global/dns/mailauth-resolver.ts), for
 * mail from clients not in smtpd_mail_authentication_exempt_clients.
 *
 * - The verdicts become one `Authentication-Results: $myhostname; ...`
 *   header (RFC 8601); cleanup removes the message's own headers that
 *   claim $myhostname (remote-submission.ts).
 * - A DNS failure (timeout, SERVFAIL) is a temporary result (temperror),
 *   never a pass or a fail: mailauth maps the resolver's error codes.
 * - Enforcement, off by default: smtpd_spf_reject refuses at RCPT when SPF
 *   says fail (`550 5.7.23`, as policyd-spf words it); smtpd_dmarc_reject
 *   refuses at the end of DATA a message that fails DMARC when the policy
 *   is reject (`550 5.7.1`), honouring a pct= below 100 by sampling and
 *   t=y (testing) by never rejecting.
 * - SPF is evaluated once per transaction (RCPT and the end of DATA share
 *   it through the resolver's cache), in at most 20 seconds (RFC 7208 4.6.4);
 *   all the checks of a message get 60 seconds, then every result is
 *   temperror. A message with more than 1000 header fields, more than 1 MiB of header, or more than 10
 *   DKIM signatures is not handed to mailauth (which keeps every header as
 *   objects and looks up each signature's key): DKIM and DMARC are
 *   permerror then, and smtpd_dmarc_reject refuses it.
 *
 * - With smtpd_arc_seal_key, the message is ARC-sealed (RFC 8617) with that
 *   key as it was received, the seal's ARC-Authentication-Results holding
 *   these same verdicts; a broken incoming chain (cv=fail) is not sealed.
 *
 * Runs in smtpd as mail_owner. Everything here is untrusted: the message,
 * the client's names and the DNS answers. The header's text is made
 * printable ASCII before it is added, so nothing from a message or a DNS
 * record can end the header or start another.
 */
import { randomInt } from "node:crypto";
import type { Config } from "../global/config/config.ts";
import { mailauthResolver, type DnsQuerier, type MailauthResolver } from "../global/dns/index.ts";
import { printable } from "../util/printable.ts";
import { reply, type SmtpdReply } from "./protocol/reply.ts";
import type { SessionView } from "./protocol/types.ts";
import type { DkimKeyring } from "../global/dkim/keys.ts";

/** RFC 7208 4.6.4: at least 20 seconds for an SPF evaluation. */
const SPF_TIME_LIMIT_MS = 20_000;

/**
 * Header fields beyond which a message is not handed to mailauth, which keeps
 * every header as objects (500,000 tiny headers grew smtpd by 200 MB).
 */
export const MAX_CHECKED_HEADERS = 1000;

/** At most this many DKIM signatures are checked: each one may cost a DNS lookup and a verification. */
export const MAX_CHECKED_SIGNATURES = 10;

/** The whole of the checks of one message (SPF alone has 20 seconds of it). */
const CHECK_TIME_LIMIT_MS = 60_000;

/**
 * At most this many bytes of header are handed to the checks: mailauth copies the header several times over,
 * so one 8 MB header line cost smtpd more memory than any other input (test/e2e/smtpd/memory.test.ts), and no
 * real header section comes near it (Postfix's cleanup cuts each header at header_size_limit, 100 KB).
 */
export const MAX_CHECKED_HEADER_BYTES = 1024 * 1024;

/** Header fields and DKIM-Signature fields of the message, counted up to `limit + 1` fields (and past MAX_CHECKED_HEADER_BYTES) without building them. */
function headerCounts(content: Buffer, limit: number): { fields: number; signatures: number; bytes: number } {
  let fields = 0;
  let signatures = 0;
  let pos = 0;
  while (pos < content.length && fields <= limit && pos <= MAX_CHECKED_HEADER_BYTES) {
    const c = content[pos]!;
    if (c === 10) break;
    if (c !== 32 && c !== 9) {
      fields++;
      if ((c === 68 || c === 100) && /^dkim-signature[ \t]*:/i.test(content.toString("latin1", pos, pos + 20))) signatures++;
    }
    const nl = content.indexOf(10, pos);
    if (nl < 0) {
      pos = content.length;
      break;
    }
    pos = nl + 1;
  }
  return { fields, signatures, bytes: pos };
}

export interface AuthVerdict {
  /** "Authentication-Results: HOST;\n\tspf=...;\n\t..." (LF folds, no final newline). */
  header: string;
  /** The ARC set that seals the message (smtpd_arc_seal_key), each header LF-folded, exactly as sealed. */
  arc?: string[];
  /** The DMARC rejection, when smtpd_dmarc_reject asks for it and the message fails under p=reject. */
  reject?: SmtpdReply;
}

/** Header text from untrusted pieces: folds kept (as LF TAB), anything else not printable ASCII made "?". */
function headerText(text: string): string {
  return text
    .split(/\r?\n[ \t]*/)
    .map((l) => l.replace(/[^\x20-\x7e]/g, "?"))
    .filter((l) => l !== "")
    .join("\n\t");
}

/** The pct= tag of a DMARC record (RFC 7489; DMARCbis dropped it, so mailauth does not apply it). */
function dmarcPercent(rr: string | undefined): number {
  const m = rr ? /(?:^|;)\s*pct\s*=\s*(\d{1,3})\s*(?:;|$)/i.exec(rr) : null;
  return m ? Math.min(100, Number(m[1])) : 100;
}

function lfToCrlf(content: Buffer): Buffer {
  // mailauth reads the message as it came over SMTP
  return Buffer.from(content.toString("latin1").replace(/\r?\n/g, "\r\n"), "latin1");
}

/** The ARC-* fields of mailauth's header block (CRLF), LF-folded; undefined when one could start another header. */
function arcFields(block: string): string[] | undefined {
  const fields: string[] = [];
  for (const line of block.split("\r\n")) {
    if (line === "") continue;
    if (line.startsWith(" ") || line.startsWith("\t")) {
      if (fields.length === 0) return undefined;
      fields[fields.length - 1] += `\n${line}`;
    } else fields.push(line);
  }
  const arc = fields.filter((f) => /^ARC-[A-Za-z-]+:/.test(f));
  // the seal covers these bytes: they are checked, never rewritten
  if (arc.length !== 3 || arc.some((f) => /[\r\0]|\n(?![ \t])/.test(f))) return undefined;
  return arc;
}

export class MailAuthenticator {
  readonly #host: string;
  readonly #resolver: MailauthResolver;
  readonly #spfReject: boolean;
  readonly #dmarcReject: boolean;
  readonly #seal: { signingDomain: string; selector: string; privateKey: string } | undefined;

  constructor(config: Config, dns: DnsQuerier, keys: DkimKeyring, warn: (text: string) => void) {
    this.#host = config.str("myhostname");
    this.#resolver = mailauthResolver(dns);
    this.#spfReject = config.bool("smtpd_spf_reject");
    this.#dmarcReject = config.bool("smtpd_dmarc_reject");
    const sealKey = config.str("smtpd_arc_seal_key").trim();
    if (sealKey) {
      const [domain, selector, ...rest] = sealKey.split(":");
      const key = domain && selector && rest.length === 0 ? keys.get(domain, selector) : undefined;
      if (key) this.#seal = { signingDomain: domain!.toLowerCase(), selector: selector!, privateKey: key.export({ format: "pem", type: "pkcs8" }).toString() };
      else warn(`smtpd_arc_seal_key "${sealKey}": no such key was loaded from ${keys.directory} (need SIGNING_DOMAIN:SELECTOR): mail is not sealed`);
    }
  }

  get authservId(): string {
    return this.#host;
  }

  get spfRejects(): boolean {
    return this.#spfReject;
  }

  #identity(s: SessionView): { ip: string; helo: string; sender: string } {
    return { ip: s.client.address, helo: s.helo ?? s.client.address, sender: s.sender ?? "" };
  }

  /** smtpd_spf_reject at RCPT: the reply when SPF says fail, else undefined. */
  async spfAtRcpt(s: SessionView, recipient: string, warn: (text: string) => void): Promise<SmtpdReply | undefined> {
    const id = this.#identity(s);
    let result;
    try {
      const { spf } = await import("mailauth");
      result = await spf({ ...id, mta: this.#host, resolver: this.#resolver, maxElapsedTime: SPF_TIME_LIMIT_MS });
    } catch (err) {
      // only a fail refuses: an error is not one
      warn(`SPF check of ${s.client.name}[${s.client.address}]: ${(err as Error).message}`);
      return undefined;
    }
    if (result.status.result !== "fail") return undefined;
    const who = id.sender ? `domain of ${printable(id.sender)}` : `HELO name ${printable(id.helo)}`;
    return reply(550, "5.7.23", `<${printable(recipient)}>: Recipient address rejected: Message rejected due to: SPF fail - not authorized (${who} does not designate ${id.ip} as permitted sender)`);
  }

  /**
   * A message beyond what is checked (too many header fields or signatures): SPF is still
   * evaluated (it reads no header), DKIM and DMARC are permerror; with smtpd_dmarc_reject such a
   * message is refused, so that piling up headers is no way around the policy.
   */
  async #notChecked(s: SessionView, reason: string): Promise<AuthVerdict> {
    const { spf } = await import("mailauth");
    const result = await spf({ ...this.#identity(s), mta: this.#host, resolver: this.#resolver, maxElapsedTime: SPF_TIME_LIMIT_MS });
    const why = `(${reason})`;
    const header = headerText(`Authentication-Results: ${this.#host};\n\tdkim=permerror ${why};\n\t${result.info};\n\tdmarc=permerror ${why}`);
    if (!this.#dmarcReject) return { header };
    return { header, reject: reply(550, "5.7.1", `Message rejected: ${reason}, its DMARC policy cannot be checked`) };
  }

  /** Every check at the end of DATA. Never throws: an internal error gives "none" and a warning. */
  async verify(s: SessionView, content: Buffer, warn: (text: string) => void): Promise<AuthVerdict> {
    let authenticate: typeof import("mailauth").authenticate;
    try {
      const counts = headerCounts(content, MAX_CHECKED_HEADERS);
      if (counts.fields > MAX_CHECKED_HEADERS) return this.#notChecked(s, `more than ${MAX_CHECKED_HEADERS} header fields`);
      if (counts.signatures > MAX_CHECKED_SIGNATURES) return this.#notChecked(s, `more than ${MAX_CHECKED_SIGNATURES} DKIM signatures`);
      if (counts.bytes > MAX_CHECKED_HEADER_BYTES) return this.#notChecked(s, `a header larger than ${MAX_CHECKED_HEADER_BYTES / 1024} KiB`);
      ({ authenticate } = await import("mailauth"));
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timedOut = new Promise<"timeout">((resolve) => {
        timer = setTimeout(() => resolve("timeout"), CHECK_TIME_LIMIT_MS);
      });
      const checked = authenticate(lfToCrlf(content), {
        ...this.#identity(s),
        mta: this.#host,
        resolver: this.#resolver,
        disableBimi: true,
        maxElapsedTime: SPF_TIME_LIMIT_MS,
        ...(this.#seal ? { seal: this.#seal } : {}),
      } as Parameters<typeof authenticate>[1]);
      const result = await Promise.race([checked, timedOut]).finally(() => clearTimeout(timer));
      if (result === "timeout") {
        // the lookups still running finish unheard; a timeout is temporary, never a fail
        checked.catch(() => {});
        warn(`mail authentication from ${s.client.name}[${s.client.address}]: no result within ${CHECK_TIME_LIMIT_MS / 1000}s`);
        const why = "(timed out)";
        return { header: headerText(`Authentication-Results: ${this.#host};\n\tdkim=temperror ${why};\n\tspf=temperror ${why};\n\tdmarc=temperror ${why}`) };
      }
      const rows: string[] = [];
      for (const d of result.dkim?.results ?? []) if (d.info) rows.push(d.info);
      for (const r of [result.spf, result.arc, result.dmarc]) if (r !== false && r?.info) rows.push(r.info);
      const header = headerText(`Authentication-Results: ${this.#host};\n\t${rows.length ? rows.join(";\n\t") : "none"}`);
      const verdict: AuthVerdict = { header };
      if (this.#seal && result.arc && result.arc.status?.result !== "fail" && !result.arc.sealErrors?.length) {
        const arc = arcFields(result.headers);
        if (arc) verdict.arc = arc;
        else warn(`ARC seal for ${s.client.name}[${s.client.address}] not added: mailauth's headers are not the three expected`);
      }
      const dmarc = result.dmarc;
      if (this.#dmarcReject && dmarc && dmarc.status?.result === "fail" && dmarc.policy === "reject" && !dmarc.testMode) {
        const pct = dmarcPercent(dmarc.rr);
        if (pct >= 100 || randomInt(100) < pct) {
          const domain = printable(dmarc.status.header?.from ?? dmarc.domain);
          verdict.reject = reply(550, "5.7.1", `Message rejected: DMARC policy of ${domain} is reject and neither SPF nor DKIM passed for the From: domain`);
        }
      }
      return verdict;
    } catch (err) {
      warn(`mail authentication from ${s.client.name}[${s.client.address}]: ${(err as Error).message}`);
      return { header: `Authentication-Results: ${this.#host}; none` };
    }
  }
}

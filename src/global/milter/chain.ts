/**
 * Several milters in the order the list names them (Postfix's milters.c):
 * each event goes to one milter after the other until one of them gives a
 * verdict; at the end of the message each milter sees the message as the
 * milters before it left it, and their envelope changes (sender, added and
 * deleted recipients) are gathered for the caller, which writes the queue
 * file.
 *
 * Used by smtpd (smtpd_milters) and by cleanup for local submissions
 * (non_smtpd_milters), as mail_owner. The milters' replies are untrusted
 * (client.ts checks them); the message passed in is the one being received.
 */
import { Milter, type MilterEdit, type MilterEnv, type MilterVerdict } from "./client.ts";
import { applyHeaderBodyEdits, contentOf, crlfBody, headerParts, MilterEditError, milterAddress, milterMessage, type MilterMessage } from "./edits.ts";
import { type AddedRecipient, addrcptArgs, chgfromArgs, type SenderDsn, shown } from "./esmtp-args.ts";
import type { MacroLookup } from "./macros.ts";
import type { MilterSpec } from "./spec.ts";

/** An address a milter may put in the envelope: printable, no controls, within SMTP's path length. */
function envelopeAddress(text: string): boolean {
  return text.length <= 512 && !/[\x00-\x1f\x7f]/.test(text);
}

export interface MessageOutcome {
  verdict?: MilterVerdict;
  /** The content when a milter changed headers or body (LF line ends), else undefined. */
  content?: Buffer;
  /** Headers a milter put above our Received: header. */
  above: string[];
  /** A new sender (SMFIR_CHGFROM), internal form. */
  sender?: string;
  /** RET and ENVID from SMFIR_CHGFROM's arguments (each overrides the one from MAIL FROM). */
  senderDsn: SenderDsn;
  /** Recipients from SMFIR_ADDRCPT and SMFIR_ADDRCPT_PAR, with NOTIFY and ORCPT from its arguments. */
  addRecipients: AddedRecipient[];
  deleteRecipients: string[];
  /** A quarantine reason (hold/). */
  hold?: string;
}

export interface ChainEnv extends Omit<MilterEnv, "lookup"> {
  lookup: MacroLookup;
  /** For splitting the message into headers and body. */
  limits: { lineLengthLimit: number; headerSizeLimit: number };
}

export class MilterChain {
  readonly milters: Milter[];
  #extra = new Map<string, string>();
  #opened: Promise<void> | undefined;

  constructor(specs: readonly MilterSpec[], private env: ChainEnv) {
    const lookup: MacroLookup = (name) => this.#extra.get(name) ?? env.lookup(name);
    this.milters = specs.map((s) => new Milter(s, { ...env, lookup }));
  }

  /** Connects to every milter (at once); failures leave each in its default action. */
  open(): Promise<void> {
    this.#opened ??= Promise.all(this.milters.map((m) => m.open())).then(() => {});
    return this.#opened;
  }

  /** The quarantine reason of the current message, if any milter asked for one. */
  get hold(): string | undefined {
    for (const m of this.milters) if (m.hold) return m.hold;
    return undefined;
  }

  /** Runs one event through the milters in order; a "hold" verdict is kept and the others go on. */
  async #each(extra: Record<string, string>, run: (m: Milter) => Promise<MilterVerdict | undefined>): Promise<MilterVerdict | undefined> {
    await this.open();
    this.#extra = new Map(Object.entries(extra));
    try {
      for (const m of this.milters) {
        const v = await run(m);
        if (v?.kind === "hold") {
          m.hold ??= v.reason;
          continue;
        }
        if (v) return v;
      }
      return undefined;
    } finally {
      this.#extra = new Map();
    }
  }

  connect(hostname: string, address: string, port: number): Promise<MilterVerdict | undefined> {
    return this.#each({}, (m) => m.connect(hostname, address, port));
  }

  helo(name: string): Promise<MilterVerdict | undefined> {
    return this.#each({}, (m) => m.helo(name));
  }

  /** `args`: "<sender>" then the ESMTP parameters. */
  mail(args: string[], macros: Record<string, string> = {}): Promise<MilterVerdict | undefined> {
    return this.#each(macros, (m) => m.mail(args));
  }

  rcpt(args: string[], macros: Record<string, string> = {}): Promise<MilterVerdict | undefined> {
    return this.#each(macros, (m) => m.rcpt(args));
  }

  data(): Promise<MilterVerdict | undefined> {
    return this.#each({}, (m) => m.data());
  }

  unknown(line: string): Promise<MilterVerdict | undefined> {
    return this.#each({}, (m) => m.unknown(line));
  }

  /**
   * The message (LF line ends, without our Received: header) through every milter in turn.
   * `queueId`: what the envelope changes' warnings start with, as Postfix's ("" when the caller's warn adds it or there is none yet).
   */
  async message(content: Buffer, queueId = ""): Promise<MessageOutcome> {
    await this.open();
    const out: MessageOutcome = { above: [], senderDsn: {}, addRecipients: [], deleteRecipients: [] };
    let msg: MilterMessage = milterMessage(content, this.env.limits);
    let changed = false;
    const warn = (text: string) => this.env.warn(text);
    for (const m of this.milters) {
      const edits: MilterEdit[] = [];
      const v = await m.message(
        msg.headers.map(headerParts),
        crlfBody(msg.body),
        edits,
      );
      if (v?.kind === "hold") m.hold ??= v.reason;
      else if (v) {
        out.verdict = v;
        break;
      }
      if (edits.length === 0) continue;
      try {
        msg = applyHeaderBodyEdits(msg, edits, () => m.headerSpace);
        for (const e of edits) {
          const address = e.code === "chgfrom" ? e.sender : e.code === "addrcpt" || e.code === "delrcpt" ? e.recipient : undefined;
          if (address !== undefined && !envelopeAddress(address)) throw new MilterEditError(`bad address in ${e.code}: "${address.slice(0, 100).replace(/[\x00-\x1f\x7f]/g, "?")}"`);
        }
      } catch (err) {
        if (!(err instanceof MilterEditError)) throw err;
        this.env.warn(`milter ${m.spec.name}: ${err.message}`);
        out.verdict = { kind: "reply", text: "451 4.3.5 Server configuration problem - try again later" };
        break;
      }
      changed ||= edits.some((e) => e.code === "addheader" || e.code === "insheader" || e.code === "chgheader" || e.code === "replbody");
      // addresses as Postfix's cleanup reads them: the first one the text names, a warning for more
      const prefix = queueId ? `${queueId}: ` : "";
      for (const e of edits) {
        if (e.code === "chgfrom") {
          const { address, more } = milterAddress(e.sender);
          if (more) warn(`${prefix}Milter request to add multi-sender: "${shown(e.sender)}"`);
          out.sender = address ?? "";
          Object.assign(out.senderDsn, chgfromArgs(e.args, warn));
        } else if (e.code === "addrcpt") {
          const { address, more } = milterAddress(e.recipient);
          const args = addrcptArgs(e.args, queueId, warn);
          if (more) warn(`${prefix}Milter or header/body_checks request to add multi-recipient: "${shown(e.recipient)}"`);
          if (address) out.addRecipients.push({ address, ...args });
          else warn(`${prefix}ignoring attempt from Milter to add null recipient`);
        } else if (e.code === "delrcpt") {
          const { address, more } = milterAddress(e.recipient);
          if (more) warn(`${prefix}Milter request to drop multi-recipient: "${shown(e.recipient)}"`);
          if (address) out.deleteRecipients.push(address);
        }
      }
    }
    if (changed) {
      out.content = contentOf(msg);
      out.above = msg.above;
    }
    const hold = this.hold;
    if (hold !== undefined) out.hold = hold;
    return out;
  }

  abort(): void {
    for (const m of this.milters) m.abort();
  }

  quit(): void {
    for (const m of this.milters) m.quit();
  }
}

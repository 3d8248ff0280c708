/**
 * The SMTP server's policy for one session: Postfix's restriction lists at
 * the right moments, with smtpd_delay_reject (client, HELO and sender
 * restrictions wait for RCPT, so the log and the reply name the recipient),
 * then smtpd_relay_restrictions, smtpd_recipient_restrictions and the
 * implicit reject_unlisted_recipient; defer_if_permit and message actions
 * carried to the end; and the per-client limits of the in-process anvil.
 *
 * Results of the client and HELO lists are kept for the session (per HELO
 * name), those of the sender list for the transaction, so a message with
 * many recipients does not ask the DNS lists again for each.
 *
 * For clients not exempt from mail authentication (mail-auth.ts): SPF at
 * RCPT when smtpd_spf_reject refuses on it, and every check at the end of
 * DATA, whose header comes back as an "auth-results" action.
 *
 * Runs in smtpd as mail_owner.
 */
import type { Config } from "../global/config/config.ts";
import type { ClientNames, DnsQuerier } from "../global/dns/index.ts";
import { reply } from "./protocol/reply.ts";
import { printable } from "../util/printable.ts";
import { TableError } from "../global/tables/table.ts";
import type { AcceptedRecipient, PolicyResult, SessionPolicy, SessionView } from "./protocol/types.ts";
import type { Anvil, RateEvent } from "./anvil.ts";
import { CheckContext, type CheckEnv, type Decision, type Stage } from "./restrictions/context.ts";
import type { HostMatcher } from "./restrictions/host-list.ts";
import { evaluateRestrictions, unknownRecipientDecision } from "./restrictions/restrictions.ts";
import { resolveClientAddress } from "./restrictions/recipient-checks.ts";
import type { MailAuthenticator } from "./mail-auth.ts";

export interface PolicyEnv {
  config: Config;
  service: string;
  dns: DnsQuerier;
  mynetworks: HostMatcher;
  limitExceptions: HostMatcher;
  anvil: Anvil;
  names: ClientNames;
  warn(text: string): void;
  info(text: string): void;
  /** The checks on receipt (mail-auth.ts); absent when smtpd_mail_authentication is off. */
  auth?: MailAuthenticator;
  /** Whether the session's client is exempt from them (smtpd_mail_authentication_exempt_clients). */
  authExempt?: (s: SessionView) => Promise<boolean>;
}

const LISTS: Record<Stage, string> = {
  client: "smtpd_client_restrictions",
  helo: "smtpd_helo_restrictions",
  sender: "smtpd_sender_restrictions",
  relay: "smtpd_relay_restrictions",
  recipient: "smtpd_recipient_restrictions",
  data: "smtpd_data_restrictions",
  end_of_data: "smtpd_end_of_data_restrictions",
  etrn: "smtpd_etrn_restrictions",
};

interface Outcome {
  decision: Decision;
  ctx: CheckContext;
}

export class SmtpdPolicy implements SessionPolicy {
  #env: PolicyEnv;
  #exempt: boolean | undefined;
  #clientOutcome: Outcome | undefined;
  #heloOutcome: { helo: string | undefined; outcome: Outcome } | undefined;
  #senderOutcome: { sender: string; outcome: Outcome } | undefined;
  #connected = false;
  #authExempt: boolean | undefined;
  #spfOutcome: { key: string; reject: PolicyResult | undefined } | undefined;

  constructor(env: PolicyEnv) {
    this.#env = env;
  }

  get #config(): Config {
    return this.#env.config;
  }

  get #checkEnv(): CheckEnv {
    const e = this.#env;
    return { config: e.config, dns: e.dns, mynetworks: e.mynetworks, names: e.names, warn: e.warn, info: e.info };
  }

  get #delay(): boolean {
    return this.#config.bool("smtpd_delay_reject");
  }

  #anvilKey(s: SessionView): string {
    return `${this.#env.service}:${s.client.address}`;
  }

  async #isExempt(s: SessionView): Promise<boolean> {
    this.#exempt ??= await this.#env.limitExceptions.matches(s.client.name, s.client.address);
    return this.#exempt;
  }

  async #run(s: SessionView, command: string, stage: Stage, recipient?: AcceptedRecipient, etrnDomain?: string, size?: number): Promise<Outcome> {
    const ctx = new CheckContext(this.#checkEnv, s, command, stage, recipient, etrnDomain);
    ctx.messageSize = size;
    const decision = await evaluateRestrictions(ctx, this.#config.list(LISTS[stage]));
    return { decision, ctx };
  }

  /** Turns outcomes into the reply: the first reject wins; else a pending defer_if_permit; else the actions. */
  #result(outcomes: Outcome[]): PolicyResult {
    const actions = [...new Set(outcomes.map((o) => o.ctx))].flatMap((ctx) => ctx.actions);
    for (const o of outcomes) if (o.decision.kind === "reject") return { reject: o.decision.reply };
    for (const o of outcomes) if (o.ctx.deferIfPermit) return { reject: o.ctx.deferIfPermit };
    return { actions };
  }

  async #rate(s: SessionView, event: RateEvent, param: string, text: string): Promise<PolicyResult | undefined> {
    const limit = this.#config.int(param);
    if (limit <= 0 || (await this.#isExempt(s))) return undefined;
    const n = this.#env.anvil.count(this.#anvilKey(s), event);
    if (n <= limit) return undefined;
    this.#env.warn(`${text.replace(/^Error: /, "")} limit exceeded: ${n} from ${s.client.name}[${s.client.address}] for service ${this.#env.service}`);
    return { reject: reply(450, "4.7.1", `Error: ${text} from ${s.client.address}`) };
  }

  async #clientChecks(s: SessionView, command: string): Promise<Outcome> {
    this.#clientOutcome ??= await this.#run(s, command, "client");
    return this.#clientOutcome;
  }

  async #heloChecks(s: SessionView, command: string): Promise<Outcome> {
    if (!this.#heloOutcome || this.#heloOutcome.helo !== s.helo) this.#heloOutcome = { helo: s.helo, outcome: await this.#run(s, command, "helo") };
    return this.#heloOutcome.outcome;
  }

  async #senderChecks(s: SessionView, command: string): Promise<Outcome> {
    const sender = s.sender ?? "";
    if (!this.#senderOutcome || this.#senderOutcome.sender !== sender) this.#senderOutcome = { sender, outcome: await this.#run(s, command, "sender") };
    return this.#senderOutcome.outcome;
  }

  async connect(s: SessionView): Promise<PolicyResult> {
    const config = this.#config;
    if (!(await this.#isExempt(s))) {
      const host = config.str("myhostname");
      const counts = this.#env.anvil.connect(this.#anvilKey(s));
      this.#connected = true;
      const countLimit = config.int("smtpd_client_connection_count_limit");
      const rateLimit = config.int("smtpd_client_connection_rate_limit");
      if (countLimit > 0 && counts.count > countLimit) {
        this.#env.warn(`Connection concurrency limit exceeded: ${counts.count} from ${s.client.name}[${s.client.address}] for service ${this.#env.service}`);
        return { reject: reply(421, "4.7.0", `${host} Error: too many connections from ${s.client.address}`) };
      }
      if (rateLimit > 0 && counts.rate > rateLimit) {
        this.#env.warn(`Connection rate limit exceeded: ${counts.rate} from ${s.client.name}[${s.client.address}] for service ${this.#env.service}`);
        return { reject: reply(421, "4.7.0", `${host} Error: too many connection attempts from ${s.client.address}`) };
      }
    }
    if (this.#delay) return {};
    return this.#result([await this.#clientChecks(s, "CONNECT")]);
  }

  /** The session ended: give the connection slot back. */
  disconnect(s: SessionView): void {
    if (this.#connected) this.#env.anvil.disconnect(this.#anvilKey(s));
    this.#connected = false;
  }

  async helo(s: SessionView, name: string): Promise<PolicyResult> {
    if (this.#delay) return {};
    const view = withHelo(s, name);
    return this.#result([await this.#heloChecks(view, s.esmtp ? "EHLO" : "HELO")]);
  }

  /**
   * Postfix's smtpd_check_addr: an address that the shared resolver ends without a valid domain
   * (user@, user%@here, site!user@bad_name!) is a syntax error, before any restriction or limit.
   * A table that cannot be read is left for the restrictions to report.
   */
  async #addressSyntax(s: SessionView, address: string, command: "MAIL" | "RCPT" | "VRFY"): Promise<PolicyResult | undefined> {
    if (address === "") return undefined;
    let invalid: boolean;
    try {
      invalid = (await resolveClientAddress(this.#config, address)).invalid;
    } catch (err) {
      if (err instanceof TableError) return undefined;
      throw err;
    }
    if (!invalid) return undefined;
    this.#env.warn(`Illegal address syntax from ${s.client.name}[${s.client.address}] in ${command} command: <${printable(address)}>`);
    return { reject: command === "MAIL" ? reply(501, "5.1.7", "Bad sender address syntax") : reply(501, "5.1.3", "Bad recipient address syntax") };
  }

  async mail(s: SessionView, sender = s.sender ?? ""): Promise<PolicyResult> {
    const bad = await this.#addressSyntax(s, sender, "MAIL");
    if (bad) return bad;
    const limited = await this.#rate(s, "message", "smtpd_client_message_rate_limit", "too much mail");
    if (limited) return limited;
    this.#senderOutcome = undefined;
    if (this.#delay) return {};
    return this.#result([await this.#senderChecks(s, "MAIL")]);
  }

  async rcpt(s: SessionView, recipient: AcceptedRecipient): Promise<PolicyResult> {
    const bad = await this.#addressSyntax(s, recipient.address, "RCPT");
    if (bad) return bad;
    const limited = await this.#rate(s, "recipient", "smtpd_client_recipient_rate_limit", "too many recipients");
    if (limited) return limited;
    const result = await this.#recipientChecks(s, recipient, "RCPT");
    if (result.reject) return result;
    return (await this.#spfCheck(s, recipient)) ?? result;
  }

  /** Whether the checks on receipt apply to this session's client (asked once per session). */
  async #authenticates(s: SessionView): Promise<boolean> {
    const { auth, authExempt } = this.#env;
    if (!auth) return false;
    // a client may authenticate with AUTH during the session: a "not exempt" answer holds until it does
    if (this.#authExempt === true) return false;
    if (this.#authExempt === false && !s.sasl) return true;
    this.#authExempt = authExempt ? await authExempt(s) : false;
    return !this.#authExempt;
  }

  /** smtpd_spf_reject: an SPF fail refuses the recipient; evaluated once per sender and HELO name. */
  async #spfCheck(s: SessionView, recipient: AcceptedRecipient): Promise<PolicyResult | undefined> {
    const auth = this.#env.auth;
    if (!auth?.spfRejects || !(await this.#authenticates(s))) return undefined;
    const key = `${s.sender ?? ""}\n${s.helo ?? ""}`;
    if (this.#spfOutcome?.key !== key) {
      const r = await auth.spfAtRcpt(s, recipient.written, this.#env.warn);
      this.#spfOutcome = { key, reject: r ? { reject: r } : undefined };
    }
    const outcome = this.#spfOutcome.reject;
    // the reply names the recipient: made again for each one
    if (outcome?.reject) return { reject: { ...outcome.reject, lines: outcome.reject.lines.map((l) => l.replace(/^<[^>]*>/, `<${printable(recipient.written)}>`)) } };
    return undefined;
  }

  /** What RCPT and VRFY both ask: the delayed client/HELO/sender lists, relay and recipient lists, unknown users. */
  async #recipientChecks(s: SessionView, recipient: AcceptedRecipient, command: string): Promise<PolicyResult> {
    const outcomes: Outcome[] = [];
    const stop = () => outcomes.some((o) => o.decision.kind === "reject");
    if (this.#delay) {
      for (const step of [() => this.#clientChecks(s, command), () => this.#heloChecks(s, command), () => this.#senderChecks(s, command)]) {
        outcomes.push(await step());
        if (stop()) return this.#result(outcomes);
      }
    }
    outcomes.push(await this.#run(s, command, "relay", recipient));
    if (stop()) return this.#result(outcomes);
    const rcptOutcome = await this.#run(s, command, "recipient", recipient);
    outcomes.push(rcptOutcome);
    if (stop()) return this.#result(outcomes);
    if (this.#config.bool("smtpd_reject_unlisted_recipient")) {
      const decision = await this.#guard(rcptOutcome.ctx, () => unknownRecipientDecision(rcptOutcome.ctx, recipient.address, "recipient"));
      outcomes.push({ decision, ctx: rcptOutcome.ctx });
    }
    if (this.#config.bool("smtpd_reject_unlisted_sender") && s.sender) {
      const ctx = new CheckContext(this.#checkEnv, s, command, "sender", recipient);
      outcomes.push({ decision: await this.#guard(ctx, () => unknownRecipientDecision(ctx, s.sender!, "sender")), ctx });
    }
    return this.#result(outcomes);
  }

  async #guard(ctx: CheckContext, check: () => Promise<Decision>): Promise<Decision> {
    try {
      return await check();
    } catch (err) {
      this.#env.warn((err as Error).message);
      return ctx.reject(451, "4.3.0", "Temporary lookup failure");
    }
  }

  async data(s: SessionView): Promise<PolicyResult> {
    return this.#result([await this.#run(s, "DATA", "data")]);
  }

  async endOfData(s: SessionView, size?: number, content?: Buffer): Promise<PolicyResult> {
    const result = this.#result([await this.#run(s, "END-OF-MESSAGE", "end_of_data", undefined, undefined, size)]);
    const auth = this.#env.auth;
    if (result.reject || !auth || content === undefined || !(await this.#authenticates(s))) return result;
    const verdict = await auth.verify(s, content, this.#env.warn);
    if (verdict.reject) return { reject: verdict.reject };
    return { actions: [...(result.actions ?? []), { kind: "auth-results", header: verdict.header, authservId: auth.authservId, ...(verdict.arc ? { arc: verdict.arc } : {}) }] };
  }

  /** VRFY gets the recipient checks, as Postfix's smtpd_check_rcpt (relay control included), without actions. */
  async vrfy(s: SessionView, address: string): Promise<PolicyResult> {
    const bad = await this.#addressSyntax(s, address, "VRFY");
    if (bad) return bad;
    const r = await this.#recipientChecks(s, { address, written: address }, "VRFY");
    return r.reject ? { reject: r.reject } : {};
  }

  async etrn(s: SessionView, domain: string): Promise<PolicyResult> {
    const outcomes: Outcome[] = [];
    if (this.#delay) {
      outcomes.push(await this.#clientChecks(s, "ETRN"));
      if (outcomes[0]!.decision.kind === "reject") return this.#result(outcomes);
    }
    outcomes.push(await this.#run(s, "ETRN", "etrn", undefined, domain));
    return this.#result(outcomes);
  }

  async auth(s: SessionView): Promise<PolicyResult> {
    return (await this.#rate(s, "auth", "smtpd_client_auth_rate_limit", "too many AUTH commands")) ?? {};
  }
}

/** The session as seen with a HELO name that is not accepted yet (HELO restrictions at HELO time). */
function withHelo(s: SessionView, helo: string): SessionView {
  return new Proxy(s, { get: (target, prop) => (prop === "helo" ? helo : Reflect.get(target, prop, target)) });
}

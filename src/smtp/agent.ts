/**
 * The SMTP and LMTP delivery agent (Postfix's smtp(8) and lmtp(8)):
 * createSmtpAgent(config, { resolver }) returns a DeliveryAgent the queue
 * manager calls for the smtp, relay and lmtp transports. For one request
 * it walks the next-hop destinations (relayhost or transport_maps lists,
 * sender_dependent_relayhost_maps, then smtp_fallback_relay), their MX
 * hosts and addresses, opens or reuses a session, runs the transaction,
 * and returns a result per recipient in Postfix's words. A temporary
 * failure at one server sends the affected recipients on to the next; the
 * last server's verdict (or the last failure seen) is final. A request with
 * `verify` set (sendmail -bv) is a probe: RCPT TO without DATA, and the
 * reply to RCPT TO is the answer (the same servers, caching and retries).
 *
 * Runs inside the queue manager as mail_owner (async I/O, no process per
 * delivery). Reads the queue file it is given, never moves or changes it;
 * the queue manager records every result. Distrusts the network (DNS,
 * servers); trusts the configuration and its tables.
 *
 * Known limits: no smtp_bind_address (Bun's connect cannot bind a local
 * address); "on demand" connection caching keeps every clean session for
 * smtp_connection_cache_time_limit (the queue manager does not say when a
 * destination has a backlog); no MIME downgrade for servers without 8BITMIME.
 * TLS policy per server: tls-policy.ts, DANE in dane.ts, MTA-STS in
 * mta-sts.ts (the policy per MX destination, applied here).
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { log } from "../util/log.ts";
import { connectTo } from "../util/net/connection.ts";
import { parseIpAddress } from "../util/net/cidr-match.ts";
import type { Config } from "../global/config/config.ts";
import type { DnsQuerier } from "../global/dns/result.ts";
import type { DeliveryAgent, DeliveryRecipient, DeliveryRequest, RecipientResult } from "../global/delivery/types.ts";
import { decodeQueueFile } from "../global/queue/format.ts";
import { smtpMessageSize } from "../global/queue/listing.ts";
import { lookupAddress } from "../global/tables/address-lookup.ts";
import { openTable } from "../global/tables/open-table.ts";
import type { Table } from "../global/tables/table.ts";
import { replyDsn, replyText, type RemoteReply } from "../global/smtp-reply/reply.ts";
import { ConnectionCache, type CachedSession } from "./connection-cache.ts";
import { isSoft, softened, type Failure } from "./failure.ts";
import { handshake, type Features } from "./handshake.ts";
import { genericMapSettings, mapGeneric, mapGenericHeaders, type GenericMapSettings } from "./generic-maps.ts";
import { encodeMessageData, hasEightBit } from "./message-data.ts";
import { clientCheckTables, runClientChecks } from "./header-body-checks.ts";
import type { CheckTables } from "../global/checks/content-checks.ts";
import { parseDestinations, type Destination } from "./nexthop.ts";
import { ownAddresses, routeDestination, type Endpoint, type RoutingContext } from "./routing.ts";
import { resolveDane } from "./dane.ts";
import { MtaSts, mxAllowed, type MtaStsSettings, type StsPolicy } from "./mta-sts.ts";
import { findCredentials, type SaslCredentials } from "./sasl.ts";
import { SmtpClientSession } from "./session.ts";
import { readClientSettings, type ClientSettings } from "./settings.ts";
import { levelAtLeast, policyFor, tlsOptions, trustedCas, type TlsPolicy } from "./tls-policy.ts";
import { runTransaction, type TxRecipient } from "./transaction.ts";

export interface SmtpAgentOptions {
  resolver: DnsQuerier;
  /** LMTP instead of SMTP (the lmtp transport). */
  lmtp?: boolean;
  /** Random source for MX and address shuffling (tests). */
  random?: () => number;
}

export interface SmtpAgent extends DeliveryAgent {
  /** QUITs the cached connections. */
  close(): Promise<void>;
}

const CONNECT_TEXT: Record<string, string> = {
  ECONNREFUSED: "Connection refused",
  ETIMEDOUT: "Connection timed out",
  EHOSTUNREACH: "No route to host",
  ENETUNREACH: "Network is unreachable",
  ECONNRESET: "Connection reset by peer",
  EADDRNOTAVAIL: "Cannot assign requested address",
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  ENOTSOCK: "Socket operation on non-socket",
};

function connectErrorText(err: unknown): string {
  const code = String((err as { code?: unknown }).code ?? "");
  if (CONNECT_TEXT[code]) return CONNECT_TEXT[code]!;
  const message = (err as Error).message ?? String(err);
  return message === "Failed to connect" && code ? code : message;
}

function nonAscii(text: string): boolean {
  return /[^\x00-\x7f]/.test(text);
}

function headerHasEightBit(content: Uint8Array): boolean {
  const end = Buffer.from(content.buffer, content.byteOffset, content.byteLength).indexOf("\n\n");
  const header = end < 0 ? content : content.subarray(0, end);
  return hasEightBit(header);
}

interface Message {
  content: Uint8Array;
  size: number;
  eightBit: boolean;
  sevenBit: boolean;
  smtputf8Requested: boolean;
  needsSmtputf8: boolean;
  data?: Uint8Array;
}

export function createSmtpAgent(config: Config, options: SmtpAgentOptions): SmtpAgent {
  const lmtp = options.lmtp ?? false;
  let settings: ClientSettings | undefined;
  let own: Set<string> | undefined;
  let cache: ConnectionCache | undefined;
  let generic: { maps: GenericMapSettings | undefined } | undefined;
  let mtaSts: MtaSts | null | undefined;
  let checks: { tables: CheckTables | undefined } | undefined;
  const warned = new Set<string>();
  const open = (specs: string[]): Table[] => specs.map((s) => openTable(s, config));

  const agent: SmtpAgent = {
    async deliver(req) {
      try {
        settings ??= readClientSettings(config, lmtp);
        own ??= ownAddresses(config.list("inet_interfaces"), config.list("proxy_interfaces"));
        cache ??= new ConnectionCache(settings.timeouts.quit);
        generic ??= { maps: genericMapSettings(config, settings.genericMaps, lmtp) };
        if (mtaSts === undefined) {
          const tag = `${settings.syslogName}/${settings.prefix}`;
          mtaSts = !lmtp && config.bool("smtp_mta_sts_enable") ? new MtaSts(mtaStsSettings(config, settings), options.resolver, (level, text) => log.write(level, text, tag)) : null;
        }
        checks ??= { tables: clientCheckTables(config, lmtp) };
      } catch (err) {
        return req.recipients.map((r) => ({ index: r.index, status: "deferred", dsn: "4.3.5", reason: `server configuration error: ${(err as Error).message}`, relay: "none" }));
      }
      const run = new DeliveryRun(req, settings, {
        config,
        dns: options.resolver,
        own,
        cache,
        ...(generic.maps ? { generic: generic.maps } : {}),
        ...(mtaSts ? { mtaSts } : {}),
        ...(checks.tables ? { checks: checks.tables } : {}),
        open,
        random: options.random,
        warnOnce: (key, text) => {
          if (warned.has(key)) return;
          warned.add(key);
          log.write("warning", text, `${settings!.syslogName}/${settings!.prefix}`);
        },
      });
      return run.run();
    },
    async close() {
      await cache?.closeAll();
    },
  };
  return agent;
}

interface RunContext {
  config: Config;
  dns: DnsQuerier;
  own: Set<string>;
  cache: ConnectionCache;
  /** smtp_generic_maps / lmtp_generic_maps, when set. */
  generic?: GenericMapSettings;
  /** smtp_header_checks and the rest (lmtp_* for LMTP), when set. */
  checks?: CheckTables;
  open: (specs: string[]) => Table[];
  random?: () => number;
  warnOnce: (key: string, text: string) => void;
  /** MTA-STS policies (smtp_mta_sts_enable). */
  mtaSts?: MtaSts;
}

interface SessionPlan {
  dest: Destination;
  ep: Endpoint;
  policy: TlsPolicy;
  credentials?: SaslCredentials;
  loopDetect: boolean;
  bestMx: boolean;
  /** A failure here ends the request for the affected recipients (last server, last destination). */
  finalHandshake: boolean;
  /** Whether the transaction's soft failures are final, given the session count. */
  finalTransaction: (sessionsAfterThis: number) => boolean;
  /** Store the session under the destination too (first destination only). */
  destKey?: string;
}

/** One delivery request from start to results. */
class DeliveryRun {
  readonly #req: DeliveryRequest;
  readonly #s: ClientSettings;
  readonly #ctx: RunContext;
  readonly #tag: string;
  #left: TxRecipient[];
  readonly #results = new Map<number, RecipientResult>();
  #lastFailure: Failure | undefined;
  #message: Message | undefined;
  /** The envelope sender as MAIL FROM gives it (after smtp_generic_maps). */
  #mailFrom: string;

  constructor(req: DeliveryRequest, settings: ClientSettings, ctx: RunContext) {
    this.#req = req;
    this.#s = settings;
    this.#ctx = ctx;
    this.#tag = `${settings.syslogName}/${settings.prefix}`;
    this.#mailFrom = req.sender;
    this.#left = req.recipients.map((r: DeliveryRecipient) => ({
      index: r.index,
      address: r.address,
      ...(r.original !== undefined ? { original: r.original } : {}),
      ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
      ...(r.notify !== undefined ? { notify: r.notify } : {}),
    }));
  }

  async run(): Promise<RecipientResult[]> {
    try {
      await this.#deliver();
    } catch (err) {
      // a table that cannot be read, a queue file that vanished: defer, never lose a recipient
      log.write("warning", `${this.#req.queueId}: ${(err as Error).message}`, this.#tag);
      this.#finishAll({ dsn: "4.3.0", reason: `mail transport unavailable: ${(err as Error).message}` }, "none");
    }
    return this.#req.recipients.map(
      (r) => this.#results.get(r.index) ?? { index: r.index, status: "deferred", dsn: "4.3.0", reason: "server unavailable or unable to receive mail", relay: "none" },
    );
  }

  #log(text: string): void {
    log.write("info", text, this.#tag);
  }

  // ------------------------------------------------------------ results

  /** A recipient's final result: kept for run()'s answer and reported to the queue manager at once. */
  #final(result: RecipientResult): void {
    this.#results.set(result.index, result);
    this.#left = this.#left.filter((x) => x.index !== result.index);
    this.#req.onResult?.(result);
  }

  #sent(r: TxRecipient, reply: RemoteReply, relay: string, features: Features): void {
    this.#final({
      index: r.index,
      status: "sent",
      dsn: replyDsn(reply),
      reason: replyText(reply),
      relay,
      action: "relayed",
      ...(features.dsn && r.notify?.includes("SUCCESS") ? { dsnPassedOn: true } : {}),
    });
  }

  #fail(r: TxRecipient, f: Failure, relay: string): void {
    this.#final({ index: r.index, status: isSoft(f) ? "deferred" : "bounced", dsn: f.dsn, reason: f.reason, relay });
  }

  /** Postfix's smtp_rcpt_fail: a soft failure at a server that is not the last keeps the recipient for the next. */
  #rcptFail(r: TxRecipient, f: Failure, final: boolean, relay: string): void {
    this.#lastFailure = f;
    if (isSoft(f) && !final) {
      this.#log(`${this.#req.queueId}: ${f.reason}`);
      return;
    }
    this.#fail(r, f, relay);
  }

  /** Postfix's smtp_bulk_fail over `who` (default: every recipient left). */
  #bulkFail(f: Failure, final: boolean, relay: string, who: TxRecipient[] = this.#left): void {
    this.#lastFailure = f;
    if (isSoft(f) && !final) {
      this.#log(`${this.#req.queueId}: ${f.reason}`);
      return;
    }
    for (const r of [...who]) this.#fail(r, f, relay);
  }

  #finishAll(f: Failure, relay: string): void {
    for (const r of [...this.#left]) this.#fail(r, f, relay);
  }

  // ------------------------------------------------------------ the message

  async #loadMessage(): Promise<Message> {
    if (this.#message) return this.#message;
    // the content the queue manager read at activation (a small file), else the file read again
    const original = this.#req.content?.() ?? decodeQueueFile(await readFile(this.#req.queueFile)).content;
    const warnings: string[] = [];
    let checked: Uint8Array = original;
    if (this.#ctx.checks) {
      // header and body checks first, then generic(5) on what they left, as Postfix's smtp_header_rewrite
      const outcome = await runClientChecks(original, this.#ctx.checks);
      for (const w of outcome.warnings) log.write("warning", w, this.#tag);
      for (const line of outcome.logs) this.#log(`${this.#req.queueId}: ${line}`);
      checked = outcome.content;
    }
    const content = await mapGenericHeaders(checked, this.#ctx.generic, warnings);
    for (const w of warnings) log.write("warning", w, this.#tag);
    const attrs = this.#req.attributes;
    const eightBit = attrs.encoding === "8BITMIME" || hasEightBit(content);
    const requested = this.#s.smtputf8Enable && attrs.smtputf8 !== undefined && !/^(no|0|false)$/i.test(attrs.smtputf8);
    const needs = requested && (nonAscii(this.#req.sender) || this.#req.recipients.some((r) => nonAscii(r.address)) || headerHasEightBit(content));
    this.#message = {
      content,
      size: smtpMessageSize(content),
      eightBit,
      sevenBit: !eightBit && attrs.encoding === "7BIT",
      smtputf8Requested: requested,
      needsSmtputf8: needs,
    };
    return this.#message;
  }

  #data(): Uint8Array {
    const m = this.#message!;
    if (!m.data) {
      const encoded = encodeMessageData(m.content, this.#s.lineLengthLimit);
      if (encoded.brokeLongLines) this.#log(`${this.#req.queueId}: breaking line > ${this.#s.lineLengthLimit} bytes with <CR><LF>SPACE`);
      m.data = encoded.bytes;
    }
    return m.data;
  }

  // ------------------------------------------------------------ routing

  /** sender_dependent_relayhost_maps: applies where the next hop is relayhost's (or the recipients' domain without one). */
  async #nexthop(): Promise<string> {
    const s = this.#s;
    const nexthop = this.#req.nexthop;
    if (s.lmtp || !s.senderDependentRelayhostMaps.length) return nexthop;
    const domains = new Set(this.#req.recipients.map((r) => r.address.slice(r.address.lastIndexOf("@") + 1).toLowerCase()));
    const isDefault = s.relayhost ? nexthop === s.relayhost : domains.size === 1 && domains.has(nexthop.toLowerCase());
    if (!isDefault) return nexthop;
    const tables = this.#ctx.open(s.senderDependentRelayhostMaps);
    const sender = this.#req.sender;
    let value: string | undefined;
    if (sender === "") {
      for (const t of tables) if ((value = await t.lookup(s.emptyAddressRelayhostKey)) !== undefined) break;
    } else {
      value = (await lookupAddress(tables, sender, this.#ctx.config.str("recipient_delimiter")))?.value;
    }
    if (value === undefined || /^dunno$/i.test(value.trim()) || !value.trim()) return nexthop;
    return value.trim();
  }

  /**
   * smtp_generic_maps on the envelope: MAIL FROM and each RCPT TO (the
   * recipient's own record, its ORCPT and the results keep the queued form).
   * A table that fails throws: the whole delivery is deferred before any
   * connection is made.
   */
  async #mapEnvelope(): Promise<void> {
    const g = this.#ctx.generic;
    if (!g) return;
    const warnings: string[] = [];
    this.#mailFrom = await mapGeneric(this.#req.sender, g, warnings);
    for (const r of this.#left) r.address = await mapGeneric(r.address, g, warnings);
    for (const w of warnings) log.write("warning", w, this.#tag);
  }

  async #deliver(): Promise<void> {
    const s = this.#s;
    const nexthop = await this.#nexthop();
    const parse = { lmtp: s.lmtp, defaultPort: s.defaultPort, queueDirectory: s.queueDirectory };
    const primary = parseDestinations(nexthop, parse);
    if ("problem" in primary) {
      this.#ctx.warnOnce(`dest:${nexthop}`, `${this.#req.transport}: bad next-hop destination: ${primary.problem}`);
      this.#finishAll({ dsn: "4.3.5", reason: `server configuration error: ${primary.problem}` }, "none");
      return;
    }
    const dests = [...primary];
    const tcp = primary.every((d) => d.unix === undefined);
    if (s.fallbackRelay.length) {
      if (!tcp) this.#ctx.warnOnce("fallback-unix", `ignoring "${s.prefix}_fallback_relay" setting for non-TCP connections`);
      else {
        const fallback = parseDestinations(s.fallbackRelay.join(" "), { ...parse, lmtp: false });
        if ("problem" in fallback) this.#ctx.warnOnce("fallback", `${s.prefix}_fallback_relay: ${fallback.problem}`);
        else dests.push(...fallback);
      }
    }
    await this.#mapEnvelope();
    await this.#loadMessage();

    const routing: RoutingContext = {
      dns: this.#ctx.dns,
      families: s.inetProtocols,
      hostLookup: s.hostLookup,
      ownAddresses: this.#ctx.own,
      randomize: s.randomizeAddresses,
      ...(this.#ctx.random ? { random: this.#ctx.random } : {}),
    };
    let lastIndex = 0;
    for (let i = 0; i < dests.length && this.#left.length > 0; i++) {
      lastIndex = i;
      const dest = dests[i]!;
      let finalNexthop = i === dests.length - 1;
      const loopDetect = !s.lmtp && dest.port === 25;
      const route = await routeDestination(routing, dest, loopDetect);
      if (route.iAmMx) finalNexthop = true;
      if (!route.endpoints.length && route.loop) finalNexthop = true;
      if (route.failure) this.#lastFailure = route.failure;
      const limit = s.mxAddressLimit > 0 ? s.mxAddressLimit : Infinity;
      let endpoints = route.endpoints.slice(0, limit);
      const sts = await this.#stsPolicy(dest);
      if (sts) endpoints = this.#stsEndpoints(sts, dest, endpoints);
      let sessions = 0;
      const destKey = i === 0 ? this.#destKey(dest) : undefined;

      // a session cached under this destination first (Postfix's reuse by next hop)
      if (destKey) {
        const cached = this.#ctx.cache.take(destKey);
        if (cached) {
          endpoints = endpoints.filter((e) => e.address !== cached.endpoint.address || e.port !== cached.endpoint.port);
          sessions++;
          const final = finalNexthop && (endpoints.length === 0 || (s.mxSessionLimit > 0 && sessions >= s.mxSessionLimit));
          const plan = await this.#plan(dest, cached.endpoint, route.bestPref, loopDetect, final, () => final, destKey, sts);
          if (plan) await this.#transact(plan, cached, true);
        }
      }
      for (let j = 0; j < endpoints.length && this.#left.length > 0; j++) {
        if (s.mxSessionLimit > 0 && sessions >= s.mxSessionLimit) break;
        const ep = endpoints[j]!;
        const lastAddress = j === endpoints.length - 1;
        const plan = await this.#plan(dest, ep, route.bestPref, loopDetect, finalNexthop && lastAddress, (n) => finalNexthop && (lastAddress || (s.mxSessionLimit > 0 && n >= s.mxSessionLimit)), destKey, sts);
        if (!plan) continue;
        if (await this.#session(plan, sessions)) sessions++;
      }
      if (finalNexthop) break;
    }

    if (this.#left.length > 0) {
      let f = this.#lastFailure ?? { dsn: "4.3.0", reason: "server unavailable or unable to receive mail" };
      if (!isSoft(f)) {
        if (lastIndex >= primary.length) {
          this.#ctx.warnOnce("fallback-problem", `${s.prefix}_fallback_relay configuration problem`);
          f = softened(f, "4.3.5");
        } else if (!s.lmtp && s.relayhost && nexthop === s.relayhost) {
          log.write("warning", "relayhost configuration problem", this.#tag);
          f = softened(f, "4.3.5");
        }
      }
      this.#finishAll(f, "none");
    }
  }

  /** The MTA-STS policy for an MX destination (mode none: no policy). */
  async #stsPolicy(dest: Destination): Promise<StsPolicy | undefined> {
    const sts = this.#ctx.mtaSts;
    if (!sts || !dest.mx || dest.unix !== undefined || dest.bracketed || parseIpAddress(dest.host)) return undefined;
    const policy = await sts.policy(dest.host);
    return policy && policy.mode !== "none" ? policy : undefined;
  }

  /** RFC 8461 4.1: only MX hosts the policy names (enforce); testing logs the others and keeps them. */
  #stsEndpoints(sts: StsPolicy, dest: Destination, endpoints: Endpoint[]): Endpoint[] {
    const refused = [...new Set(endpoints.filter((e) => !mxAllowed(e.host, sts)).map((e) => e.host))];
    for (const host of refused) log.write("info", `MTA-STS policy for ${dest.host} (${sts.mode}): MX host ${host} is not named by the policy${sts.mode === "enforce" ? "; not used" : ""}`, this.#tag);
    if (sts.mode !== "enforce") return endpoints;
    const allowed = endpoints.filter((e) => mxAllowed(e.host, sts));
    if (allowed.length === 0 && endpoints.length > 0) this.#lastFailure = { dsn: "4.7.5", reason: `MTA-STS policy for ${dest.host}: no MX host matches the policy` };
    return allowed;
  }

  #destKey(dest: Destination): string {
    const who = this.#s.sasl.senderDependent ? this.#req.sender.toLowerCase() : "";
    return `${this.#s.prefix}/${this.#req.transport}|d|${dest.text.toLowerCase()}|${who}`;
  }

  #epKey(plan: { ep: Endpoint; policy: TlsPolicy; credentials?: SaslCredentials }): string {
    return `${this.#s.prefix}/${this.#req.transport}|e|${plan.ep.address}|${plan.ep.port}|${plan.policy.level}|${plan.credentials?.username ?? ""}`;
  }

  #names(ep: Endpoint, dest: Destination): { namaddr: string; namaddrport: string } {
    if (ep.family === "unix") {
      const namaddr = `${this.#s.myhostname}[${dest.host}]`;
      return { namaddr, namaddrport: namaddr };
    }
    const host = ep.host || ep.address;
    return { namaddr: `${host}[${ep.address}]`, namaddrport: `${host}[${ep.address}]:${ep.port}` };
  }

  /** TLS policy and SASL credentials for one server; undefined when it must be skipped. */
  async #plan(
    dest: Destination,
    ep: Endpoint,
    bestPref: number,
    loopDetect: boolean,
    finalHandshake: boolean,
    finalTransaction: (n: number) => boolean,
    destKey: string | undefined,
    sts?: StsPolicy,
  ): Promise<SessionPlan | undefined> {
    const s = this.#s;
    let policy = await policyFor(s, this.#ctx.open(s.tls.policyMaps), dest, ep);
    if (ep.family === "unix" && policy.level === "may") policy = { ...policy, level: "none" };
    if (policy.level === "dane" || policy.level === "dane-only") policy = await this.#daneFor(policy, policy.level, dest, ep);
    // MTA-STS enforce: TLS verified for the MX host name, unless DANE or the policy table decided (RFC 8461 2, 4.2)
    if (sts?.mode === "enforce" && !policy.fromTable && !policy.invalid && !policy.defer && policy.level !== "dane" && !levelAtLeast(policy.level, "verify")) {
      policy = { ...policy, level: "verify", match: ["hostname"] };
    }
    if (s.tls.wrapperMode && policy.level !== "none" && !["encrypt", "verify", "secure", "fingerprint", "dane"].includes(policy.level)) {
      this.#ctx.warnOnce("wrapper", `${s.prefix}_tls_wrappermode requires "${s.prefix}_tls_security_level = encrypt" (or stronger)`);
      return undefined;
    }
    if (s.tls.wrapperMode && policy.level === "none") {
      this.#ctx.warnOnce("wrapper", `${s.prefix}_tls_wrappermode requires "${s.prefix}_tls_security_level = encrypt" (or stronger)`);
      return undefined;
    }
    let credentials: SaslCredentials | undefined;
    if (s.sasl.enable && s.sasl.passwordMaps.length) {
      credentials = await findCredentials(this.#ctx.open(s.sasl.passwordMaps), s, this.#req.sender, ep.host || ep.address, dest.text, this.#ctx.config.str("recipient_delimiter"));
    }
    return {
      dest,
      ep,
      policy,
      ...(credentials ? { credentials } : {}),
      loopDetect,
      bestMx: ep.pref === bestPref,
      finalHandshake,
      finalTransaction,
      ...(destKey ? { destKey } : {}),
    };
  }

  /** The dane or dane-only level resolved for one server (dane.ts): TLSA records, a fallback level, or a deferral. */
  async #daneFor(policy: TlsPolicy, level: "dane" | "dane-only", dest: Destination, ep: Endpoint): Promise<TlsPolicy> {
    const outcome = await resolveDane(level, dest.text, ep, this.#ctx.dns, this.#s.tls.dane);
    switch (outcome.kind) {
      case "dane":
        return { ...policy, level: "dane", match: outcome.names, dane: { records: outcome.records, names: outcome.names } };
      case "downgrade":
        if (outcome.warn) this.#ctx.warnOnce(`dane:${dest.text}`, outcome.why);
        return { ...policy, level: outcome.level };
      case "defer":
        return { ...policy, level: "none", defer: { dsn: outcome.dsn, reason: outcome.reason } };
      case "invalid":
        return { ...policy, level: "none", invalid: outcome.why };
    }
  }

  /** Connects (or reuses), greets, delivers; true when a session got as far as a transaction. */
  async #session(plan: SessionPlan, sessionsBefore: number): Promise<boolean> {
    const s = this.#s;
    const { namaddr, namaddrport } = this.#names(plan.ep, plan.dest);
    if (plan.policy.invalid) {
      this.#ctx.warnOnce(`policy:${plan.dest.text}`, `TLS policy for ${plan.dest.text}: ${plan.policy.invalid}`);
      this.#bulkFail({ dsn: "4.7.0", reason: "client TLS configuration problem" }, plan.finalHandshake, namaddrport);
      return false;
    }
    if (plan.policy.defer) {
      // Postfix: a warning, then the next server; the reason stays for the deferral
      log.write("warning", `TLS policy lookup for ${plan.dest.text}/${plan.ep.host}: ${plan.policy.defer.reason}`, this.#tag);
      this.#bulkFail(plan.policy.defer, plan.finalHandshake, namaddrport);
      return false;
    }
    // a session cached under this server's address
    const cached = this.#ctx.cache.take(this.#epKey(plan));
    if (cached) {
      await this.#transact({ ...plan, finalTransaction: () => plan.finalTransaction(sessionsBefore + 1) }, cached, true);
      return true;
    }
    let policy = plan.policy;
    for (let attempt = 0; attempt < 3; attempt++) {
      if ((s.bindAddress && plan.ep.family === 4) || (s.bindAddress6 && plan.ep.family === 6)) {
        this.#ctx.warnOnce("bind", `${s.prefix}_bind_address is not supported: connecting from the address the system chooses`);
      }
      let conn;
      try {
        conn =
          plan.ep.family === "unix"
            ? await connectTo({ hostname: "", port: 0, unix: plan.ep.address, timeoutMs: s.timeouts.connect || 75_000 })
            : await connectTo({ hostname: plan.ep.address, port: plan.ep.port, timeoutMs: s.timeouts.connect || 75_000 });
      } catch (err) {
        const where = plan.ep.family === "unix" ? namaddr : namaddrport;
        const f: Failure = { dsn: "4.4.1", reason: `connect to ${where}: ${connectErrorText(err)}` };
        this.#lastFailure = f;
        this.#log(f.reason);
        return false;
      }
      const session = new SmtpClientSession(conn);
      const openedAt = Date.now();
      if (s.tls.wrapperMode && policy.level !== "none") {
        try {
          await session.startTls(tlsOptions(s, policy), s.timeouts.starttls);
        } catch (err) {
          this.#log(`${namaddrport}: TLS handshake failed: ${(err as Error).message}`);
          this.#bulkFail({ dsn: "4.7.5", reason: "Cannot start TLS: handshake failure" }, plan.finalHandshake, namaddrport);
          return false;
        }
      }
      const message = this.#message!;
      const hs = await handshake({
        session,
        settings: s,
        dest: plan.dest,
        ep: plan.ep,
        namaddr,
        namaddrport,
        policy,
        loopDetect: plan.loopDetect,
        bestMx: plan.bestMx,
        needsSmtputf8: message.needsSmtputf8,
        ...(plan.credentials ? { credentials: plan.credentials } : {}),
        queueId: this.#req.queueId,
        logTag: this.#tag,
      });
      if (!hs.ok) {
        void session.quit(s.timeouts.quit, false);
        if (hs.retryPlain) {
          // level may: the same server again, without TLS
          this.#log(`${this.#req.queueId}: ${hs.failure.reason}; retrying ${namaddrport} without TLS`);
          policy = { ...policy, level: "none" };
          continue;
        }
        if (hs.messageLevel) this.#bulkFail(hs.failure, true, namaddrport);
        else this.#bulkFail(hs.failure, plan.finalHandshake, namaddrport);
        return false;
      }
      const fresh: CachedSession = { session, features: hs.features, endpoint: plan.ep, ...(hs.tls ? { tls: hs.tls } : {}), openedAt, uses: 0 };
      await this.#transact({ ...plan, policy, finalTransaction: () => plan.finalTransaction(sessionsBefore + 1) }, fresh, false);
      return true;
    }
    return false;
  }

  /** One transaction on an open session, then cache or close it. */
  async #transact(plan: SessionPlan, cs: CachedSession, reused: boolean): Promise<void> {
    const s = this.#s;
    const { namaddr, namaddrport } = this.#names(plan.ep, plan.dest);
    const message = this.#message!;
    if (message.needsSmtputf8 && !cs.features.smtputf8) {
      this.#bulkFail({ dsn: "5.6.7", reason: `SMTPUTF8 is required, but was not offered by host ${namaddr}` }, true, namaddrport);
      this.#park(plan, cs, true);
      return;
    }
    const recipients = [...this.#left];
    const tx = await runTransaction({
      session: cs.session,
      settings: s,
      features: cs.features,
      namaddr,
      sender: this.#mailFrom,
      recipients,
      data: () => this.#data(),
      size: message.size,
      eightBit: message.eightBit,
      sevenBit: message.sevenBit,
      smtputf8Requested: message.smtputf8Requested,
      ...(this.#req.attributes.envid ? { envid: this.#req.attributes.envid } : {}),
      ...(this.#req.attributes.ret ? { ret: this.#req.attributes.ret.toUpperCase() } : {}),
      reused,
      ...(this.#req.verify ? { verify: true } : {}),
    });
    if (tx.stale) {
      cs.session.close();
      // nothing happened on the dead connection: a fresh one to the same server
      await this.#session({ ...plan, finalTransaction: plan.finalTransaction }, 0);
      return;
    }
    cs.uses++;
    const final = plan.finalTransaction(0);
    for (const r of recipients) {
      const o = tx.outcomes.get(r.index);
      if (!o) continue;
      if (o.kind === "sent") this.#sent(r, o.reply, namaddrport, cs.features);
      else this.#rcptFail(r, o.failure, final, namaddrport);
    }
    if (tx.messageFailure) {
      const without = recipients.filter((r) => !tx.outcomes.has(r.index) && this.#left.includes(r));
      this.#bulkFail(tx.messageFailure, final, namaddrport, without);
    }
    this.#park(plan, cs, tx.clean && !tx.broken);
  }

  /** Keeps a clean session for reuse, or says goodbye. */
  #park(plan: SessionPlan, cs: CachedSession, clean: boolean): void {
    const s = this.#s;
    const now = Date.now();
    const wanted =
      s.cacheOnDemand || s.cacheDestinations.some((d) => d.toLowerCase() === plan.dest.host.toLowerCase() || d.toLowerCase() === plan.dest.text.toLowerCase());
    const reusable =
      clean &&
      cs.session.usable &&
      wanted &&
      (!cs.session.tls || s.tls.connectionReuse) &&
      (s.reuseCountLimit <= 0 || cs.uses < s.reuseCountLimit) &&
      now - cs.openedAt < s.reuseTimeLimit;
    if (!reusable) {
      void cs.session.quit(s.timeouts.quit, !s.skipQuitResponse);
      return;
    }
    const keys = [this.#epKey(plan)];
    if (plan.destKey) keys.push(plan.destKey);
    this.#ctx.cache.put(cs, keys, s.cacheTimeLimit);
  }
}

/** What the MTA-STS cache needs from the configuration: its file, the trust store, the port, the time limit. */
function mtaStsSettings(config: Config, settings: ClientSettings): MtaStsSettings {
  const caFile = config.str("smtp_mta_sts_CAfile");
  const trusted = caFile ? (readFileSync(caFile, "utf8").match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) : trustedCas(settings);
  return {
    enable: true,
    cacheFile: config.str("smtp_mta_sts_cache_file"),
    ...(trusted ? { trusted } : {}),
    port: config.int("smtp_mta_sts_policy_port"),
    timeoutMs: config.time("smtp_mta_sts_fetch_timeout") * 1000,
  };
}

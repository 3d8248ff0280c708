/**
 * One SMTP service in one smtpd process: what every session of it shares
 * (the service's configuration with its overrides, the engine settings, TLS
 * options, SASL backend, resolver, anvil, mynetworks) and what happens per
 * connection: the client's names from the DNS, then a protocol session
 * (src/smtpd/protocol) with the restriction policy, the queue sink and
 * ETRN through the queue manager.
 *
 * Sessions are capped per process (its share of the service's
 * process_limit, config/services.ts), counted before any DNS lookup: a
 * connection beyond the cap waits, without a banner, for a session to end
 * (session-places.ts), as a client waits in the listen queue of Postfix's
 * master; beyond max(process_limit, default_process_limit) waiting ones
 * it gets `421 4.3.2 Service currently unavailable`. Reaching the cap puts
 * the process under stress, as Postfix's master does for a service at its
 * process limit: sessions that
 * start in the next 1000 seconds run with stress=yes, so the
 * `${stress?{x}:{y}}` defaults (smtpd_timeout 10s, smtpd_hard_error_limit
 * 1, ...) apply to them. Until its session starts, a connection is read
 * no further than a small window (then its socket is paused, main.ts), so
 * nothing a client sends while its reverse lookup runs piles up here.
 *
 * A reload re-reads the configuration for new sessions; sessions in
 * progress keep what they started with, and the replaced configuration's
 * tables and Dovecot auth connection are given back once the last of them
 * ends (src/global/config/generation.ts). Runs as mail_owner.
 */
import { log } from "../util/log.ts";
import type { TLSOptions } from "bun";
import type { TlsInfo } from "../util/net/connection.ts";
import type { Config } from "../global/config/config.ts";
import { holdConfig, onConfigReleased } from "../global/config/generation.ts";
import { resolverFromConfig, reverseLookup, type ClientNames, type DnsQuerier } from "../global/dns/index.ts";
import { requestFlush } from "../global/queue/flush-request.ts";
import { domainListMatches } from "../global/access/domain-list.ts";
import { TableError } from "../global/tables/table.ts";
import { reply } from "./protocol/reply.ts";
import { SmtpdSession } from "./protocol/session.ts";
import { sessionSettings } from "./protocol/settings.ts";
import type { SaslServer, SessionServices, SessionSettings, SessionTransport, SessionView, QueuedMessage } from "./protocol/types.ts";
import { DkimKeyring } from "../global/dkim/keys.ts";
import { DkimSigning } from "../cleanup/dkim-signing.ts";
import { MailAuthenticator } from "./mail-auth.ts";
import { Anvil } from "./anvil.ts";
import { SmtpdPolicy } from "./policy.ts";
import { milterListFor, SmtpdMilters } from "./milters.ts";
import { QueueSink } from "./queue-sink.ts";
import { hostMatcherFor, type HostMatcher } from "./restrictions/host-list.ts";
import { evaluateRestrictions } from "./restrictions/restrictions.ts";
import { CheckContext } from "./restrictions/context.ts";
import { BuiltinSasl } from "./sasl/builtin.ts";
import { DovecotSasl } from "./sasl/dovecot.ts";
import { tlsSummary, type ServerTls } from "./tls.ts";
import { smtpdProcessPlan } from "../global/config/services.ts";
import { SessionPlaces, type Place } from "./session-places.ts";
import { sessionsEnded } from "./garbage.ts";

/** What a session needs of its connection: connection.ts's Connection, or sni.ts's NodeConnection. */
export interface ServerConnection {
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** The server's side ({daemon_addr} for milters); optional for transports without one. */
  readonly localAddress?: string;
  readonly localPort?: number;
  readonly secure: boolean;
  readonly tls: TlsInfo | undefined;
  onData(handler: (chunk: Uint8Array) => void): void;
  onClose(handler: (error?: Error) => void): void;
  setIdleTimeout(seconds: number, handler: () => void): void;
  pause(paused: boolean): void;
  write(data: string | Uint8Array): void;
  flushed(): Promise<void>;
  end(): Promise<void>;
  destroy(): void;
  /** Output not yet handed to the kernel. */
  readonly queuedBytes: number;
  startTls(options: TLSOptions & { isServer: boolean }): Promise<TlsInfo>;
}

interface Shared {
  config: Config;
  settings: SessionSettings;
  /** The configuration and engine settings with stress=yes. */
  stressConfig: Config;
  stressSettings: SessionSettings;
  /** Sessions this process serves at once; 0: no limit. */
  sessionLimit: number;
  /** Connections that may wait for a session beyond it (Postfix's listen backlog). */
  waitLimit: number;
  mynetworks: HostMatcher;
  limitExceptions: HostMatcher;
  bareNewlineExclusions: HostMatcher;
  saslExceptions: HostMatcher;
  sasl: SaslServer | undefined;
  dns: DnsQuerier;
  sink: QueueSink;
  /** The checks on receipt; undefined with smtpd_mail_authentication = no. */
  auth: MailAuthenticator | undefined;
}

/** How long a process stays under stress after it last reached its session cap (Postfix's master: 1000 s). */
const STRESS_MS = 1000 * 1000;

export class SmtpService {
  #shared: Shared;
  readonly anvil: Anvil;
  readonly sessions = new Set<SmtpdSession>();
  /** Connections served and waiting, counted from the accept (before any DNS lookup). */
  #places: SessionPlaces;
  #stressUntil = 0;
  #busyWarned = 0;

  constructor(
    readonly name: string,
    config: Config,
    private tls: ServerTls,
    /** The service's process_limit; undefined: $default_process_limit. */
    private processLimit: number | undefined,
    /** DKIM keys, read as root at start (a reload keeps them). */
    private readonly dkimKeys: DkimKeyring = new DkimKeyring(""),
  ) {
    this.anvil = new Anvil(config.time("anvil_rate_time_unit") * 1000);
    this.#shared = this.#build(config);
    this.#places = new SessionPlaces(this.#shared.sessionLimit, this.#shared.waitLimit);
  }

  #build(config: Config): Shared {
    const dkim = new DkimSigning(config, this.dkimKeys);
    const dns = resolverFromConfig(config);
    const saslType = config.str("smtpd_sasl_type").toLowerCase();
    let sasl: SaslServer | undefined;
    if (config.bool("smtpd_sasl_auth_enable")) {
      if (saslType === "dovecot") {
        const dovecot = new DovecotSasl(config);
        // its connection to the auth server is this configuration's: given back after a reload
        onConfigReleased(config, () => dovecot.client.close());
        sasl = dovecot;
      }
      else if (saslType === "builtin" || saslType === "postern") sasl = new BuiltinSasl(config);
      else log.warn(`smtpd_sasl_type "${saslType}" is not supported (use builtin or dovecot); AUTH is off`);
    }
    const stressConfig = config.withOverrides({ stress: "yes" });
    const limit = this.processLimit ?? config.int("default_process_limit");
    return {
      config,
      settings: sessionSettings(config, { tlsAvailable: this.tls.options !== undefined }),
      stressConfig,
      stressSettings: sessionSettings(stressConfig, { tlsAvailable: this.tls.options !== undefined }),
      sessionLimit: smtpdProcessPlan(limit).sessionsPerProcess,
      // Postfix's master listens with a backlog of max(process_limit, default_process_limit)
      waitLimit: Math.max(limit, config.int("default_process_limit")),
      mynetworks: hostMatcherFor(config, "mynetworks"),
      limitExceptions: hostMatcherFor(config, "smtpd_client_event_limit_exceptions"),
      bareNewlineExclusions: hostMatcherFor(config, "smtpd_forbid_bare_newline_exclusions"),
      saslExceptions: hostMatcherFor(config, "smtpd_sasl_exceptions_networks"),
      sasl,
      dns,
      auth: config.bool("smtpd_mail_authentication") ? new MailAuthenticator(config, dns, this.dkimKeys, (t) => log.warn(t)) : undefined,
      sink: new QueueSink({
        config,
        cleanupTag: `${config.str("syslog_name")}/cleanup`,
        localRewrite: (m) => this.#clientIn(config, m, "local_header_rewrite_clients"),
        // the committing session holds a place itself: alone when it is the only one held
        alone: () => this.#places.held <= 1,
        ...(dkim.enabled ? { dkim, signClient: (m: QueuedMessage) => this.#clientIn(config, m, "dkim_sign_clients") } : {}),
      }),
    };
  }

  /**
   * New sessions get `config`; sessions in progress keep theirs, and hold its tables open to their
   * end (src/global/config/generation.ts). Throws when the service cannot be built from it: the old
   * configuration stays.
   */
  reload(config: Config, processLimit: number | undefined): void {
    const previous = this.processLimit;
    this.processLimit = processLimit;
    try {
      this.#shared = this.#build(config);
    } catch (err) {
      this.processLimit = previous;
      throw new Error(`service ${this.name}: ${(err as Error).message}`);
    }
    this.#places.resize(this.#shared.sessionLimit, this.#shared.waitLimit);
    this.anvil.timeUnitMs = config.time("anvil_rate_time_unit") * 1000;
  }

  /** A client list such as local_header_rewrite_clients: restrictions like permit_mynetworks, permit_inet_interfaces, permit_sasl_authenticated. */
  async #clientIn(config: Config, m: { session: SessionView }, list: string): Promise<boolean> {
    const shared = this.#shared;
    const ctx = new CheckContext(
      { config, dns: shared.dns, mynetworks: shared.mynetworks, names: { name: m.session.client.name, nameStatus: "ok", reverseName: m.session.client.reverseName, reverseNameStatus: "ok" }, warn: (t) => log.warn(t), info: (t) => log.info(t) },
      m.session,
      "END-OF-MESSAGE",
      "client",
      undefined,
    );
    const words = config.list(list).map((w) => (w === "static:all" ? "permit" : w));
    try {
      return (await evaluateRestrictions(ctx, words)).kind === "permit";
    } catch {
      return false;
    }
  }

  async #names(shared: Shared, address: string): Promise<ClientNames> {
    if (!shared.config.bool("smtpd_peername_lookup")) return { name: "unknown", nameStatus: "perm", reverseName: "unknown", reverseNameStatus: "perm" };
    try {
      const names = await reverseLookup(shared.dns, address);
      if (names.warning) log.warn(`${names.warning}`);
      return names;
    } catch (err) {
      log.warn(`reverse lookup of ${address}: ${(err as Error).message}`);
      return { name: "unknown", nameStatus: "temp", reverseName: "unknown", reverseNameStatus: "temp" };
    }
  }

  /** Whether the process is under stress now (it reached its session cap within the last 1000 s). */
  get stressed(): boolean {
    return Date.now() < this.#stressUntil;
  }

  /** Connections served and not yet ended. */
  get active(): number {
    return this.#places.held;
  }

  /** Shutting down: connections waiting for a session get none (they are closed with the process). */
  closeLine(): void {
    this.#places.closeLine();
  }

  /** Connections waiting for a session. */
  get waiting(): number {
    return this.#places.waiting;
  }

  /** smtpd_starttls_timeout in seconds, for the handshake of implicit TLS (smtpd_tls_wrappermode), as in Postfix. */
  get handshakeSeconds(): number {
    return (this.stressed ? this.#shared.stressSettings : this.#shared.settings).starttlsTimeoutMs / 1000;
  }

  /**
   * Counts a new connection in. When the process serves its share of
   * process_limit already, the process goes under stress and the
   * connection waits for a place (no banner until then); when as many wait
   * as the listen backlog would hold, it is refused: `421 4.3.2 Service
   * currently unavailable`, or, on an implicit-TLS port, a close. The place
   * is held until its release is called.
   */
  admit(conn: ServerConnection, opts: { plaintext: boolean }): Place | undefined {
    const place = this.#places.take();
    if (place?.held) return place;
    const now = Date.now();
    this.#stressUntil = now + STRESS_MS;
    if (now - this.#busyWarned >= STRESS_MS) {
      this.#busyWarned = now;
      log.warn(`service "${this.name}" has reached its session limit "${this.#shared.sessionLimit}" in this process: new clients may experience noticeable delays`);
      log.warn("to avoid this condition, increase the service's process_limit or reduce the service time per client");
    }
    if (place) return place;
    if (opts.plaintext) {
      conn.write("421 4.3.2 Service currently unavailable\r\n");
      void conn.end();
    } else conn.destroy();
    return undefined;
  }

  /** Serves one admitted connection to its end, then releases its place; never throws (one bad session must not take the others down). */
  async serve(conn: ServerConnection, held: Uint8Array[], release: () => void): Promise<void> {
    // the session keeps the configuration it starts with (#serve takes this.#shared now), and its tables, to its end
    const releaseConfig = holdConfig(this.#shared.config);
    try {
      await this.#serve(conn, held);
    } catch (err) {
      log.error(`session with ${conn.remoteAddress}: ${(err as Error)?.stack ?? String(err)}`);
      conn.destroy();
    } finally {
      releaseConfig();
      release();
      // the burst is over: its garbage goes now, not seconds later (garbage.ts)
      if (this.#places.held === 0) sessionsEnded();
    }
  }

  async #serve(conn: ServerConnection, held: Uint8Array[]): Promise<void> {
    const shared = this.#shared;
    const stress = this.stressed;
    const config = stress ? shared.stressConfig : shared.config;
    const baseSettings = stress ? shared.stressSettings : shared.settings;
    // a client that never reads must not hold the session forever
    conn.setIdleTimeout(baseSettings.timeoutMs / 1000 + 30, () => conn.destroy());
    const address = conn.remoteAddress;
    const names = await this.#names(shared, address);
    const client = {
      address,
      port: conn.remotePort,
      name: names.name,
      reverseName: names.reverseName,
      nameStatus: names.nameStatus === "ok" ? ("ok" as const) : names.nameStatus === "temp" ? ("temp" as const) : ("perm" as const),
    };
    let settings = baseSettings;
    if (settings.bareNewline !== "no" && (await shared.bareNewlineExclusions.matches(client.name, client.address))) settings = { ...settings, bareNewline: "no" };
    let sasl = shared.sasl;
    if (sasl && !shared.saslExceptions.empty && (await shared.saslExceptions.matches(client.name, client.address))) sasl = undefined;
    if (sasl instanceof DovecotSasl) await sasl.prepare().catch((err: Error) => log.warn(err.message));

    const tlsOptions = this.tls.options;
    // the socket may have been paused before the session (main.ts); the session's input takes over (and pauses it when too much waits)
    let inputPaused = false;
    const transport: SessionTransport = {
      write: (d) => conn.write(d),
      flushed: () => conn.flushed(),
      backlog: () => conn.queuedBytes,
      end: () => conn.end(),
      destroy: () => conn.destroy(),
      onData: (h) => {
        for (const chunk of held.splice(0)) h(chunk);
        conn.onData(h);
        if (!inputPaused) conn.pause(false);
      },
      onClose: (h) => conn.onClose(() => h()),
      pause: (paused) => {
        inputPaused = paused;
        conn.pause(paused);
      },
      ...(tlsOptions && !conn.secure ? { startTls: async () => tlsSummary(await conn.startTls({ isServer: true, ...tlsOptions })) } : {}),
      tls: conn.tls ? tlsSummary(conn.tls) : undefined,
    };
    const policy = new SmtpdPolicy({
      config,
      service: this.name,
      dns: shared.dns,
      mynetworks: shared.mynetworks,
      limitExceptions: shared.limitExceptions,
      anvil: this.anvil,
      names,
      warn: (t) => log.warn(t),
      info: (t) => log.info(t),
      ...(shared.auth ? { auth: shared.auth, authExempt: (s: SessionView) => this.#clientIn(config, { session: s }, "smtpd_mail_authentication_exempt_clients") } : {}),
    });
    const milterList = milterListFor(config);
    const milters = milterList ? new SmtpdMilters(config, milterList, { localAddress: conn.localAddress ?? "", localPort: conn.localPort ?? 0 }, (t) => log.warn(t)) : undefined;
    const services: SessionServices = {
      settings,
      policy,
      ...(milters ? { milters } : {}),
      sink: shared.sink,
      ...(sasl ? { sasl } : {}),
      etrn: (domain) => this.#etrn(config, domain),
      log: { info: (t) => log.info(t), warn: (t) => log.warn(t) },
    };
    const session = new SmtpdSession(transport, client, services);
    this.sessions.add(session);
    try {
      await session.run();
    } finally {
      this.sessions.delete(session);
      policy.disconnect(session);
      milters?.quit();
    }
  }

  async #etrn(config: Config, domain: string) {
    const d = domain.toLowerCase();
    // fast_flush_domains (default $relay_domains) is a domain list: names, files and tables alike
    let allowed: boolean;
    try {
      allowed = await domainListMatches(config, "fast_flush_domains", d);
    } catch (err) {
      if (!(err instanceof TableError)) throw err;
      log.warn(`ETRN ${domain}: ${err.message}`);
      return reply(458, undefined, "Unable to queue messages");
    }
    if (!allowed) return reply(459, undefined, `<${domain}>: service unavailable`);
    try {
      await requestFlush(config, { kind: "site", site: d });
      return reply(250, undefined, "Queuing started");
    } catch (err) {
      log.warn(`ETRN ${domain}: cannot reach the queue manager: ${(err as Error).message}`);
      return reply(458, undefined, "Unable to queue messages");
    }
  }
}

/**
 * The start of an SMTP or LMTP session, as Postfix's smtp_helo() runs it:
 * the greeting, EHLO (HELO when EHLO is refused; LHLO for LMTP), STARTTLS
 * by the TLS policy and EHLO again under TLS, then SASL authentication.
 * Returns the server's features, or a Failure with Postfix's wording and
 * what to do next (try the same server without TLS, at level may).
 *
 * Runs in the queue manager's process; everything the server says is
 * untrusted: EHLO keywords are parsed with bounds, the SIZE value must be
 * digits, and nothing the server says changes our TLS or SASL policy.
 */
import { log } from "../util/log.ts";
import type { TlsInfo } from "../util/net/connection.ts";
import { replyTexts, type RemoteReply } from "../global/smtp-reply/reply.ts";
import { refusedFailure, type Failure } from "./failure.ts";
import { authenticate, chooseMechanism, offeredMechanisms, xoauth2Token, type SaslCredentials } from "./sasl.ts";
import { SessionError, type SmtpClientSession } from "./session.ts";
import type { ClientSettings } from "./settings.ts";
import { judgeTls, levelAtLeast, tlsLogLine, tlsOptions, tlsRequired, type TlsPolicy, type TlsVerdict } from "./tls-policy.ts";
import type { Destination } from "./nexthop.ts";
import type { Endpoint } from "./routing.ts";

export interface Features {
  esmtp: boolean;
  pipelining: boolean;
  /** SIZE was announced; sizeLimit 0 means no limit given. */
  size: boolean;
  sizeLimit: number;
  eightBitMime: boolean;
  smtputf8: boolean;
  dsn: boolean;
  starttls: boolean;
  auth: string[];
  /** The first word of the EHLO reply (the server's name for itself). */
  heloName: string;
}

export function emptyFeatures(): Features {
  return { esmtp: false, pipelining: false, size: false, sizeLimit: 0, eightBitMime: false, smtputf8: false, dsn: false, starttls: false, auth: [], heloName: "" };
}

/** EHLO reply lines to features (Postfix accepts "AUTH=PLAIN" from old Microsoft servers too). */
export function parseEhlo(reply: RemoteReply): { features: Features; badSize?: string } {
  const f = emptyFeatures();
  f.esmtp = true;
  let badSize: string | undefined;
  replyTexts(reply).forEach((text, i) => {
    const words = text.trim().split(/[ \t=]+/).filter(Boolean);
    const keyword = (words[0] ?? "").toUpperCase();
    if (i === 0) {
      f.heloName = words[0] ?? "";
      return;
    }
    switch (keyword) {
      case "PIPELINING":
        f.pipelining = true;
        break;
      case "8BITMIME":
        f.eightBitMime = true;
        break;
      case "SMTPUTF8":
        f.smtputf8 = true;
        break;
      case "DSN":
        f.dsn = true;
        break;
      case "STARTTLS":
        f.starttls = true;
        break;
      case "SIZE":
        f.size = true;
        if (words[1] !== undefined) {
          if (/^\d{1,18}$/.test(words[1])) f.sizeLimit = Number(words[1]);
          else badSize = words[1];
        }
        break;
      case "AUTH":
        f.auth = [...new Set([...f.auth, ...offeredMechanisms(words.slice(1))])];
        break;
    }
  });
  // a server that speaks SMTPUTF8 takes 8-bit mail (Postfix's tolerance)
  if (f.smtputf8) f.eightBitMime = true;
  return badSize !== undefined ? { features: f, badSize } : { features: f };
}

export interface HandshakeContext {
  session: SmtpClientSession;
  settings: ClientSettings;
  dest: Destination;
  ep: Endpoint;
  namaddr: string;
  namaddrport: string;
  policy: TlsPolicy;
  /** SMTP to port 25: a server that calls itself by our name is a loop. */
  loopDetect: boolean;
  /** This server is among the best MX hosts (a loop then bounces instead of deferring). */
  bestMx: boolean;
  /** The delivery needs SMTPUTF8. */
  needsSmtputf8: boolean;
  credentials?: SaslCredentials;
  queueId: string;
  logTag: string;
}

export type HandshakeResult =
  | { ok: true; features: Features; tls?: TlsVerdict; authenticatedAs?: string }
  | {
      ok: false;
      failure: Failure;
      /** Level may: the TLS handshake failed; try this server again in plaintext. */
      retryPlain?: boolean;
      /** A hard failure that concerns this message, not the server (SMTPUTF8). */
      messageLevel?: boolean;
    };

/** "lost connection with NAME[ADDR] while receiving the initial server greeting" and its timeout twin. */
export function streamFailure(err: unknown, namaddr: string, where: string): Failure {
  if (err instanceof SessionError) {
    if (err.kind === "timeout") return { dsn: "4.4.2", reason: `conversation with ${namaddr} timed out while ${where}` };
    if (err.kind === "protocol") return { dsn: "4.4.2", reason: `malformed reply from ${namaddr} while ${where}: ${err.message}` };
  }
  return { dsn: "4.4.2", reason: `lost connection with ${namaddr} while ${where}` };
}

async function withWhere<T>(namaddr: string, where: string, run: () => Promise<T>): Promise<T | Failure> {
  try {
    return await run();
  } catch (err) {
    return streamFailure(err, namaddr, where);
  }
}

function isFailure(x: unknown): x is Failure {
  return typeof x === "object" && x !== null && "dsn" in x && "reason" in x && !("code" in x);
}

/** Logs the TLS summary (smtp_tls_loglevel >= 1) and judges the certificate. */
function afterTls(ctx: HandshakeContext, info: TlsInfo): TlsVerdict {
  const verdict = judgeTls(info, ctx.policy, ctx.dest, ctx.ep);
  if (ctx.settings.tls.logLevel >= 1) log.write("info", tlsLogLine(verdict, ctx.namaddrport, info), ctx.logTag);
  return verdict;
}

export async function handshake(ctx: HandshakeContext): Promise<HandshakeResult> {
  const { session, settings, namaddr } = ctx;
  const t = settings.timeouts;
  let verdict: TlsVerdict | undefined;

  if (session.tls) {
    // implicit TLS (smtp_tls_wrappermode): the handshake happened at connect
    verdict = afterTls(ctx, session.tls);
    if (verdict.failure) return { ok: false, failure: { dsn: "4.7.5", reason: verdict.failure } };
  }

  const greeting = await withWhere(namaddr, "receiving the initial server greeting", () => session.expect(t.helo));
  if (isFailure(greeting)) return { ok: false, failure: greeting };
  if (Math.floor(greeting.code / 100) !== 2) return { ok: false, failure: refusedFailure(namaddr, greeting, settings.skip5xxGreeting) };
  const greetWords = (greeting.lines[0] ?? "").slice(4).trim().split(/\s+/);
  if (ctx.loopDetect && greetWords[0]?.toLowerCase() === settings.myhostname.toLowerCase()) {
    log.write("warning", `host ${ctx.namaddrport} greeted me with my own hostname ${settings.myhostname}`, ctx.logTag);
  }

  let features = await greet(ctx);
  if (isFailure(features)) return { ok: false, failure: features };
  if ("loop" in features) return { ok: false, failure: features.loop };

  // before TLS and AUTH, as Postfix: no server will do without SMTPUTF8 then
  if (ctx.needsSmtputf8 && !features.smtputf8) {
    return { ok: false, failure: { dsn: "5.6.7", reason: `SMTPUTF8 is required, but was not offered by host ${namaddr}` }, messageLevel: true };
  }

  const level = ctx.policy.level;
  if (!session.tls) {
    if (features.starttls && levelAtLeast(level, "may")) {
      const reply = await withWhere(namaddr, "receiving the STARTTLS response", () => session.command("STARTTLS", t.starttls));
      if (isFailure(reply)) return { ok: false, failure: reply };
      if (Math.floor(reply.code / 100) === 2) {
        let info: TlsInfo;
        try {
          info = await session.startTls(tlsOptions(settings, ctx.policy), t.starttls);
        } catch (err) {
          const failure: Failure = { dsn: "4.7.5", reason: "Cannot start TLS: handshake failure" };
          log.write("info", `${ctx.namaddrport}: TLS handshake failed: ${(err as Error).message}`, ctx.logTag);
          return level === "may" ? { ok: false, failure, retryPlain: true } : { ok: false, failure };
        }
        verdict = afterTls(ctx, info);
        if (verdict.failure) return { ok: false, failure: { dsn: "4.7.5", reason: verdict.failure } };
        features = await greet(ctx, true);
        if (isFailure(features)) return { ok: false, failure: features };
        if ("loop" in features) return { ok: false, failure: features.loop };
      } else if (tlsRequired(level)) {
        return { ok: false, failure: refusedTls(namaddr, reply) };
      }
    } else if (tlsRequired(level)) {
      return { ok: false, failure: { dsn: "4.7.4", reason: `TLS is required, but was not offered by host ${namaddr}` } };
    } else if (features.starttls && settings.tls.noteStarttlsOffer) {
      log.write("info", `Host offered STARTTLS: [${ctx.ep.host}]`, ctx.logTag);
    }
  }

  let authenticatedAs: string | undefined;
  if (settings.sasl.enable && ctx.credentials && features.auth.length) {
    const options = verdict?.matched ? settings.sasl.tlsVerifiedSecurityOptions : session.tls ? settings.sasl.tlsSecurityOptions : settings.sasl.securityOptions;
    const haveToken = !!(settings.sasl.xoauth2TokenFile || settings.sasl.xoauth2TokenCommand);
    const choice = chooseMechanism(features.auth, options, settings.sasl.mechanismFilter, haveToken);
    if (!choice.mechanism) {
      log.write("warning", `${ctx.namaddrport}: no usable SASL mechanism: ${choice.explanation}`, ctx.logTag);
      return { ok: false, failure: { dsn: "4.7.0", reason: `SASL authentication failed; cannot authenticate to server ${namaddr}: no mechanism available` } };
    }
    let token: string | undefined;
    if (choice.mechanism === "XOAUTH2") {
      try {
        token = await xoauth2Token(settings, ctx.credentials.username);
      } catch (err) {
        return { ok: false, failure: { dsn: "4.7.0", reason: `SASL authentication failed; cannot get an XOAUTH2 token for server ${namaddr}: ${(err as Error).message}` } };
      }
    }
    const outcome = await withWhere(namaddr, "authenticating", () => authenticate(session, choice.mechanism!, ctx.credentials!, token, namaddr, settings, t.helo));
    if (isFailure(outcome)) return { ok: false, failure: outcome };
    if (!outcome.ok) return { ok: false, failure: outcome.failure! };
    authenticatedAs = ctx.credentials.username;
  }
  return { ok: true, features, ...(verdict ? { tls: verdict } : {}), ...(authenticatedAs !== undefined ? { authenticatedAs } : {}) };
}

function refusedTls(namaddr: string, reply: RemoteReply): Failure {
  const f = refusedFailure(namaddr, reply, false);
  return { dsn: f.dsn, reason: f.reason.replace(/^host (\S+) refused to talk to me: /, "TLS is required, but host $1 refused to start TLS: ") };
}

/** EHLO (or HELO, or LHLO) and the loop check on the server's name. */
async function greet(ctx: HandshakeContext, afterStarttls = false): Promise<Features | Failure | { loop: Failure }> {
  const { session, settings, namaddr } = ctx;
  const t = settings.timeouts;
  let features: Features | undefined;
  if (settings.lmtp) {
    const reply = await withWhere(namaddr, "performing the LHLO handshake", () => session.command(`LHLO ${settings.heloName}`, t.helo));
    if (isFailure(reply)) return reply;
    if (Math.floor(reply.code / 100) !== 2) return refusedFailure(namaddr, reply, false);
    features = parseEhlo(reply).features;
  } else {
    if (!settings.neverSendEhlo || afterStarttls) {
      const reply = await withWhere(namaddr, "performing the EHLO handshake", () => session.command(`EHLO ${settings.heloName}`, t.helo));
      if (isFailure(reply)) return reply;
      if (Math.floor(reply.code / 100) === 2) {
        const parsed = parseEhlo(reply);
        if (parsed.badSize !== undefined) log.write("warning", `bad EHLO SIZE limit "${parsed.badSize}" from ${ctx.namaddrport}`, ctx.logTag);
        features = parsed.features;
      } else if (reply.code === 421) {
        return refusedFailure(namaddr, reply, false);
      }
    }
    if (!features) {
      const reply = await withWhere(namaddr, "performing the HELO handshake", () => session.command(`HELO ${settings.heloName}`, t.helo));
      if (isFailure(reply)) return reply;
      if (Math.floor(reply.code / 100) !== 2) return refusedFailure(namaddr, reply, false);
      features = emptyFeatures();
      features.heloName = (reply.lines[0] ?? "").slice(4).trim().split(/\s+/)[0] ?? "";
    }
  }
  if (ctx.loopDetect && features.heloName.toLowerCase() === settings.myhostname.toLowerCase()) {
    log.write("warning", `host ${ctx.namaddrport} replied to HELO/EHLO with my own hostname ${settings.myhostname}`, ctx.logTag);
    return { loop: { dsn: ctx.bestMx ? "5.4.6" : "4.4.6", reason: `mail for ${ctx.dest.text} loops back to myself` } };
  }
  return features;
}

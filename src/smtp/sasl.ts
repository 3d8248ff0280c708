/**
 * The SMTP client's SASL authentication (Postfix's smtp_sasl_*): finding
 * the credentials for a server, choosing a mechanism the server offers and
 * the security options allow, and running it: PLAIN and LOGIN with a
 * password, XOAUTH2 with an access token read from a file or printed by a
 * command (Gmail, Microsoft 365).
 *
 * Password tables hold `username:password`, looked up by sender address
 * (with smtp_sender_dependent_authentication), then by the server's host
 * name, then by the next-hop destination as written (`[smtp.example.com]:587`).
 * The tables and token sources are trusted configuration; the server's
 * challenges are not (they are bounded and only ever decoded, never run).
 *
 * Limits: no Cyrus or Dovecot plug-ins, so no CRAM-MD5, DIGEST-MD5,
 * SCRAM or GSSAPI; every mechanism here sends its secret in the clear and
 * counts as "plaintext" for smtp_sasl_security_options.
 */
import { readFile } from "node:fs/promises";
import { lookupAddress } from "../global/tables/address-lookup.ts";
import type { Table } from "../global/tables/table.ts";
import type { RemoteReply } from "../global/smtp-reply/reply.ts";
import { replyDsn, replyText } from "../global/smtp-reply/reply.ts";
import type { Failure } from "./failure.ts";
import type { SmtpClientSession } from "./session.ts";
import type { ClientSettings } from "./settings.ts";

export interface SaslCredentials {
  username: string;
  password: string;
}

/** What we can do, in the order we prefer it. */
export const OUR_MECHANISMS = ["XOAUTH2", "PLAIN", "LOGIN"] as const;
export type Mechanism = (typeof OUR_MECHANISMS)[number];

/** Mechanisms that send the secret as it is (all of ours). */
const PLAINTEXT_MECHANISMS = new Set<string>(["PLAIN", "LOGIN", "XOAUTH2"]);

/** The credentials for a server, or undefined; a table error throws (the caller defers). */
export async function findCredentials(
  tables: readonly Table[],
  settings: ClientSettings,
  sender: string,
  host: string,
  destinationText: string,
  delimiter: string,
): Promise<SaslCredentials | undefined> {
  let value: string | undefined;
  if (settings.sasl.senderDependent && sender) value = (await lookupAddress(tables, sender, delimiter))?.value;
  for (const key of [host, destinationText]) {
    if (value !== undefined) break;
    for (const t of tables) {
      value = await t.lookup(key);
      if (value !== undefined) break;
    }
  }
  if (value === undefined) return undefined;
  const colon = value.indexOf(":");
  return colon < 0 ? { username: value, password: "" } : { username: value.slice(0, colon), password: value.slice(colon + 1) };
}

/** Mechanism names from the EHLO AUTH line(s): "AUTH PLAIN LOGIN" and the old "AUTH=PLAIN LOGIN". */
export function offeredMechanisms(words: string[]): string[] {
  return [...new Set(words.map((w) => w.toUpperCase()).filter((w) => /^[A-Z0-9_-]{1,20}$/.test(w)))];
}

export interface MechanismChoice {
  mechanism?: Mechanism;
  /** Why none fits, for the log. */
  explanation?: string;
}

/** Picks our best mechanism among the offered ones under the security options and filter. */
export function chooseMechanism(offered: string[], securityOptions: string[], filter: string[], haveToken: boolean): MechanismChoice {
  const excluded: string[] = [];
  for (const m of OUR_MECHANISMS) {
    if (!offered.includes(m)) continue;
    if (filter.length && !filter.includes(m)) {
      excluded.push(`${m} (not in the mechanism filter)`);
      continue;
    }
    if (securityOptions.includes("noplaintext") && PLAINTEXT_MECHANISMS.has(m)) {
      excluded.push(`${m} (noplaintext)`);
      continue;
    }
    if (m === "XOAUTH2" && !haveToken) {
      excluded.push("XOAUTH2 (no token file or command)");
      continue;
    }
    return { mechanism: m };
  }
  const ours = OUR_MECHANISMS.filter((m) => m !== "XOAUTH2" || haveToken).join(" ");
  return {
    explanation: `server offered ${offered.join(" ") || "nothing"}; we have ${ours}${excluded.length ? `; excluded: ${excluded.join(", ")}` : ""}`,
  };
}

/** The access token from smtp_sasl_xoauth2_token_file or _command; the file may be a JSON object with access_token. */
export async function xoauth2Token(settings: ClientSettings, username: string): Promise<string> {
  let text: string;
  if (settings.sasl.xoauth2TokenCommand) {
    const argv = settings.sasl.xoauth2TokenCommand.trim().split(/\s+/);
    const proc = Bun.spawn(argv, {
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
      env: { PATH: "/usr/bin:/bin", SASL_USERNAME: username },
    });
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    clearTimeout(timer);
    if (code !== 0) throw new Error(`token command "${argv[0]}" exited with status ${code}${err.trim() ? `: ${err.trim().split("\n")[0]}` : ""}`);
    text = out;
  } else if (settings.sasl.xoauth2TokenFile) {
    text = await readFile(settings.sasl.xoauth2TokenFile, "utf8");
  } else {
    throw new Error("no XOAUTH2 token file or command is configured");
  }
  text = text.trim();
  if (text.startsWith("{")) {
    try {
      const parsed = JSON.parse(text) as { access_token?: unknown };
      if (typeof parsed.access_token === "string") text = parsed.access_token;
    } catch {
      // not JSON after all: the text is the token
    }
  }
  const token = text.split("\n")[0]!.trim();
  if (!token || /[\s\x00-\x1f]/.test(token)) throw new Error("the XOAUTH2 token is empty or malformed");
  return token;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

export interface AuthOutcome {
  ok: boolean;
  failure?: Failure;
}

/**
 * Runs `mechanism` on the session. A server rejection is "SASL
 * authentication failed; server NAME[ADDR] said: 535 ..." (a 5xx becomes
 * 4xx with smtp_sasl_auth_soft_bounce).
 */
export async function authenticate(
  session: SmtpClientSession,
  mechanism: Mechanism,
  creds: SaslCredentials,
  token: string | undefined,
  namaddr: string,
  settings: ClientSettings,
  timeoutMs: number,
): Promise<AuthOutcome> {
  let reply: RemoteReply;
  if (mechanism === "PLAIN") {
    reply = await session.command(`AUTH PLAIN ${b64(`\0${creds.username}\0${creds.password}`)}`, timeoutMs);
  } else if (mechanism === "LOGIN") {
    reply = await session.command("AUTH LOGIN", timeoutMs);
    if (reply.code === 334) reply = await session.command(b64(creds.username), timeoutMs);
    if (reply.code === 334) reply = await session.command(b64(creds.password), timeoutMs);
  } else {
    reply = await session.command(`AUTH XOAUTH2 ${b64(`user=${creds.username}\x01auth=Bearer ${token ?? ""}\x01\x01`)}`, timeoutMs);
    // the server explains the failure in a challenge; an empty response fetches the final reply
    if (reply.code === 334) reply = await session.command("", timeoutMs);
  }
  // a mechanism that keeps asking has gone wrong: cancel it
  if (reply.code === 334) reply = await session.command("*", timeoutMs);
  if (Math.floor(reply.code / 100) === 2) return { ok: true };
  let dsn = replyDsn(reply);
  if (dsn.startsWith("5") && settings.sasl.softBounce) dsn = `4${dsn.slice(1)}`;
  return { ok: false, failure: { dsn, reason: `SASL authentication failed; server ${namaddr} said: ${replyText(reply)}` } };
}

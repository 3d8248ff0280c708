/**
 * The Received: header the SMTP server puts on top of each message, in
 * Postfix's shape:
 *
 *     Received: from HELO (NAME [ADDRESS])
 *     	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))   smtpd_tls_received_header
 *     	(Authenticated sender: USER)                                          smtpd_sasl_authenticated_header
 *     	by MYHOSTNAME (MAIL_NAME) with ESMTPSA id QUEUEID
 *     	for <RECIPIENT>; DATE                                                 "for" with one recipient only
 *
 * The protocol word is SMTP/ESMTP (UTF8SMTP with SMTPUTF8), then S for TLS
 * and A for an authenticated client, as RFC 3848 and Postfix spell them.
 * Client-supplied text (HELO, recipient) arrives already made printable.
 */
import { mailDate } from "../../global/message/mail-date.ts";
import type { ClientIdentity, TlsSummary } from "./types.ts";

export interface ReceivedInput {
  helo: string | undefined;
  client: ClientIdentity;
  myhostname: string;
  mailName: string;
  esmtp: boolean;
  smtputf8: boolean;
  tls: TlsSummary | undefined;
  saslUser: string | undefined;
  showTls: boolean;
  showSaslUser: boolean;
  /** The recipient as written, when there is exactly one. */
  singleRecipient: string | undefined;
  queueId: string;
  date: Date;
}

/** "[192.0.2.1]" or "[IPv6:2001:db8::1]". */
export function addressLiteral(address: string): string {
  return address.includes(":") ? `[IPv6:${address}]` : `[${address}]`;
}

export function receivedProtocol(esmtp: boolean, smtputf8: boolean, tls: boolean, auth: boolean): string {
  const base = smtputf8 ? "UTF8SMTP" : esmtp ? "ESMTP" : "SMTP";
  return `${base}${tls ? "S" : ""}${auth ? "A" : ""}`;
}

export function receivedHeader(r: ReceivedInput): string {
  const lines = [`Received: from ${r.helo ?? r.client.name} (${r.client.name} ${addressLiteral(r.client.address)})`];
  if (r.tls && r.showTls) {
    const bits = r.tls.bits ? ` (${r.tls.bits}/${r.tls.bits} bits)` : "";
    lines.push(`\t(using ${r.tls.protocol} with cipher ${r.tls.cipher}${bits})`);
    lines.push("\t(No client certificate requested)");
  }
  if (r.saslUser !== undefined && r.showSaslUser) lines.push(`\t(Authenticated sender: ${r.saslUser})`);
  const proto = receivedProtocol(r.esmtp, r.smtputf8, r.tls !== undefined, r.saslUser !== undefined);
  lines.push(`\tby ${r.myhostname} (${r.mailName}) with ${proto} id ${r.queueId}`);
  const date = mailDate(r.date);
  if (r.singleRecipient !== undefined) lines.push(`\tfor <${r.singleRecipient}>; ${date}`);
  else lines[lines.length - 1] += `; ${date}`;
  return lines.join("\n");
}

/**
 * check_policy_service: asks a policy server about the current SMTP command
 * with Postfix's attribute set, and evaluates its `action=` reply with the
 * access tables' evaluator (access.ts), so a policy server can answer
 * everything an access table can: OK, DUNNO, REJECT, DEFER,
 * DEFER_IF_PERMIT, DEFER_IF_REJECT, 4xx/5xx text, PREPEND, HOLD, DISCARD,
 * FILTER, REDIRECT, BCC, WARN, INFO and restriction names. When the server
 * cannot be asked (down, timeout, malformed or missing action), its
 * default_action is evaluated the same way.
 *
 * Not sent (known limits): queue_id (postern names the queue file when it
 * commits it, after the last check), server_address and server_port (the
 * session does not keep its local address), ccert_* (client certificates
 * are not verified), stress (postern has no stress mode).
 *
 * Runs in smtpd as mail_owner; the attributes are the client's data, the
 * reply is the policy server's (bounded by policy-client.ts).
 */
import type { Config } from "../../global/config/config.ts";
import { VERSION } from "../../version.ts";
import { reply } from "../protocol/reply.ts";
import { accessResult } from "./access.ts";
import type { CheckContext, Decision } from "./context.ts";
import { parsePolicyService, queryPolicyService, type PolicyService } from "./policy-client.ts";

const parsed = new WeakMap<Config, Map<string, PolicyService | string>>();

function serviceFor(config: Config, arg: string): PolicyService | string {
  let m = parsed.get(config);
  if (!m) parsed.set(config, (m = new Map()));
  let s = m.get(arg);
  if (s === undefined) m.set(arg, (s = parsePolicyService(arg, config)));
  return s;
}

let instanceCounter = 0;
/** Postfix's `instance`: one value per mail transaction (keyed by the transaction's MAIL parameters object). */
const instances = new WeakMap<object, string>();

function instanceOf(ctx: CheckContext): string {
  const tx = ctx.session.mailParams;
  const fresh = () => `${process.pid.toString(16)}.${Math.floor(Date.now() / 1000).toString(16)}.${(instanceCounter++).toString(16)}.0`;
  if (!tx) return fresh();
  let v = instances.get(tx);
  if (!v) instances.set(tx, (v = fresh()));
  return v;
}

/** The request's attributes, in Postfix's order. */
export function policyAttributes(ctx: CheckContext, policyContext: string): Array<readonly [string, string]> {
  const s = ctx.session;
  const state = ctx.command === "BDAT" ? "DATA" : ctx.command;
  const counted = state === "DATA" || state === "END-OF-MESSAGE";
  const auth = s.mailParams?.auth;
  const tls = s.tls;
  return [
    ["request", "smtpd_access_policy"],
    ["protocol_state", state],
    ["protocol_name", s.protocol],
    ["client_address", s.client.address],
    ["client_name", s.client.name],
    ["client_port", String(s.client.port)],
    ["reverse_client_name", s.client.reverseName],
    ["server_address", ""],
    ["server_port", ""],
    ["helo_name", s.helo ?? ""],
    ["sender", s.sender ?? ""],
    ["recipient", ctx.recipient?.address ?? ""],
    ["recipient_count", String(counted ? s.recipients.length : 0)],
    ["queue_id", ""],
    ["instance", instanceOf(ctx)],
    ["size", String(ctx.messageSize ?? s.mailParams?.size ?? 0)],
    ["etrn_domain", ctx.etrnDomain ?? ""],
    ["stress", ""],
    ["sasl_method", s.sasl?.method ?? ""],
    ["sasl_username", s.sasl?.username ?? ""],
    ["sasl_sender", auth && auth !== "<>" ? auth : ""],
    ["ccert_subject", ""],
    ["ccert_issuer", ""],
    ["ccert_fingerprint", ""],
    ["ccert_pubkey_fingerprint", ""],
    ["encryption_protocol", tls?.protocol ?? ""],
    ["encryption_cipher", tls?.cipher ?? ""],
    ["encryption_keysize", String(tls?.bits ?? 0)],
    ["tls_sni", tls?.servername ?? ""],
    ["policy_context", policyContext],
    ["compatibility_level", ctx.config.str("compatibility_level")],
    ["mail_version", VERSION],
  ];
}

/** The system's words for the usual socket failures, as Postfix's warning has them. */
const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: "Connection refused",
  ENOENT: "No such file or directory",
  EACCES: "Permission denied",
  ECONNRESET: "Connection reset by peer",
  EPIPE: "Broken pipe",
  ETIMEDOUT: "Connection timed out",
};

function failureText(err: NodeJS.ErrnoException): string {
  return (err.code && ERRNO_TEXT[err.code]) || err.message;
}

/** Postfix's default when default_action itself names a policy lookup: no second level. */
const BUILTIN_DEFAULT_ACTION = "451 4.3.5 Server configuration problem";

export async function checkPolicyService(
  ctx: CheckContext,
  arg: string,
  evaluate: (ctx: CheckContext, words: string[]) => Promise<Decision>,
): Promise<Decision> {
  const service = serviceFor(ctx.config, arg);
  if (typeof service === "string") {
    ctx.env.warn(service);
    return { kind: "reject", reply: reply(451, "4.3.5", "Server configuration error") };
  }
  let action: string | undefined;
  try {
    const attrs = await queryPolicyService(service, policyAttributes(ctx, service.settings.policyContext));
    action = attrs.get("action");
    if (action === undefined) ctx.env.warn(`policy server ${service.label}: reply without an action attribute`);
  } catch (err) {
    ctx.env.warn(`problem talking to server ${service.label}: ${failureText(err as NodeJS.ErrnoException)}`);
  }
  if (action !== undefined) return accessResult(ctx, action, ctx.subject, evaluate);
  // the default action may itself name a policy service that is down: it gets the built-in default then
  const fallback = ctx.policyDefaultDepth > 0 ? BUILTIN_DEFAULT_ACTION : service.settings.defaultAction;
  ctx.policyDefaultDepth++;
  try {
    return await accessResult(ctx, fallback, ctx.subject, evaluate);
  } finally {
    ctx.policyDefaultDepth--;
  }
}

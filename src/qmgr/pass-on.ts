/**
 * The queue manager's half of Postfix's deliver_pass: local delivery
 * answered a recipient with addresses to hand to another transport
 * (mailbox_transport, fallback_transport and their _maps); each goes to that
 * transport's agent now, one address per request, and its result joins the
 * recipient's other final deliveries before anything is recorded. A pass
 * that names no transport postern has, or local itself, is a configuration
 * error and defers (4.3.5), as does a malformed answer.
 *
 * Runs in the queue manager, as mail_owner; the PassOn list comes from the
 * local service's answer and is checked (global/delivery/pass-on.ts).
 */
import { log } from "../util/log.ts";
import { passTransportProblem, readPassOn, summarizeFinals } from "../global/delivery/pass-on.ts";
import type { DeliveryAgent, DeliveryRequest, ExpandedResult, RecipientResult } from "../global/delivery/types.ts";

/** The recipient's result with its passed-on addresses delivered; the result as it is when it has none. */
export async function completePasses(agentFor: (transport: string) => DeliveryAgent, request: DeliveryRequest, result: RecipientResult): Promise<RecipientResult> {
  const passes = readPassOn(result.passOn);
  if (passes === undefined) return result;
  const { passOn: _ignored, ...plain } = result;
  const rcpt = request.recipients.find((r) => r.index === result.index);
  if (passes === "bad" || !rcpt) {
    log.warn(`${request.queueId}: malformed pass to another transport in the ${request.transport} agent's answer; deferring`);
    return { ...plain, status: "deferred", dsn: "4.3.0", reason: "unknown mail transport error", relay: "none", action: "delayed" };
  }
  const finals: ExpandedResult[] = [...(result.expanded ?? [])];
  let passedOn = 0;
  for (const pass of passes) {
    const problem = passTransportProblem(pass.transport);
    if (problem) {
      log.warn(`${request.queueId}: ${problem}; deferring mail for ${pass.address}`);
      finals.push({ address: pass.address, status: "deferred", dsn: "4.3.5", reason: "mail system configuration error", action: "delayed", relay: "none", transport: request.transport });
      continue;
    }
    const { onResult: _none, ...base } = request;
    const sub: DeliveryRequest = { ...base, transport: pass.transport, nexthop: pass.nexthop, recipients: [{ ...rcpt, address: pass.address }] };
    let answer: RecipientResult | undefined;
    try {
      answer = (await agentFor(pass.transport).deliver(sub)).find((r) => r.index === rcpt.index);
    } catch (err) {
      log.error(`${request.queueId}: ${pass.transport} agent failed: ${(err as Error).message}`);
    }
    if (!answer) {
      finals.push({ address: pass.address, status: "deferred", dsn: "4.3.0", reason: "mail transport unavailable", action: "delayed", relay: "none", transport: pass.transport });
      continue;
    }
    // the transport's own final deliveries (a virtual user's aliases) or its one answer
    const theirs = answer.expanded?.length ? answer.expanded : [{ address: pass.address, status: answer.status, dsn: answer.dsn, reason: answer.reason, action: answer.action }];
    if (answer.dsnPassedOn) passedOn += theirs.length;
    for (const f of theirs) finals.push({ ...f, relay: f.relay ?? answer.relay, transport: f.transport ?? pass.transport });
  }
  const summed = summarizeFinals(result.index, result.relay, finals);
  // the success notice is the next hop's only when every delivery went where NOTIFY=SUCCESS was taken
  return passedOn === finals.length ? { ...summed, dsnPassedOn: true } : summed;
}

/** A pass from an agent other than local(8) is not one postern makes: the recipient is deferred. */
export function withoutPasses(result: RecipientResult): RecipientResult {
  const { passOn: _ignored, ...plain } = result;
  return { ...plain, status: "deferred", dsn: "4.3.0", reason: "unknown mail transport error", relay: "none", action: "delayed" };
}

/**
 * Handing a local recipient to another transport (Postfix's deliver_pass):
 * local delivery decides (mailbox_transport, fallback_transport and their
 * _maps), the queue manager delivers. This holds what both sides share: how
 * "transport:nexthop" is split, which transports a pass may name, how an
 * answer's PassOn list is checked, and how the final deliveries of one
 * recipient add up to its result.
 *
 * Runs in the local service (root) and in the queue manager (mail_owner).
 * The queue manager distrusts the local service's answer: a PassOn list is
 * bounded in length and in the size of each field, and names only a
 * transport postern has.
 */
import type { DeliveryStatus, ExpandedResult, PassOn, RecipientResult } from "./types.ts";

/** At most this many passed-on addresses per recipient (an alias list expanding to local users). */
export const MAX_PASS_ON = 1000;
const MAX_FIELD = 2048;

/** The transports a pass may name: those postern has, except local itself (a pass to it would loop). */
const PASS_TRANSPORTS = new Set(["virtual", "smtp", "relay", "lmtp", "error", "discard", "retry"]);

/** "lmtp:inet:127.0.0.1:24" -> lmtp / inet:127.0.0.1:24; without a next hop, the request's. */
export function splitService(service: string, defaultNexthop: string): { transport: string; nexthop: string } {
  const s = service.trim();
  const colon = s.indexOf(":");
  const transport = (colon < 0 ? s : s.slice(0, colon)).toLowerCase();
  const nexthop = colon < 0 || colon === s.length - 1 ? defaultNexthop : s.slice(colon + 1);
  return { transport, nexthop };
}

/** Why `transport` cannot take a pass; undefined when it can. */
export function passTransportProblem(transport: string): string | undefined {
  if (transport === "local") return `local delivery cannot pass mail to the local transport itself`;
  if (!PASS_TRANSPORTS.has(transport)) return `unknown mail transport "${transport}"`;
  return undefined;
}

/** The PassOn list of an agent's answer, checked; undefined when there is none, "bad" when it is malformed. */
export function readPassOn(value: unknown): PassOn[] | undefined | "bad" {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_PASS_ON) return "bad";
  const out: PassOn[] = [];
  for (const v of value) {
    if (typeof v !== "object" || v === null) return "bad";
    const { address, transport, nexthop } = v as Record<string, unknown>;
    for (const f of [address, transport, nexthop]) if (typeof f !== "string" || f.length > MAX_FIELD) return "bad";
    out.push({ address: address as string, transport: transport as string, nexthop: nexthop as string });
  }
  return out;
}

/** One result from a recipient's final deliveries: deferred if any was, bounced if every one was, else sent. */
export function summarizeFinals(index: number, relay: string, finals: ExpandedResult[]): RecipientResult {
  const pick =
    finals.find((o) => o.status === "deferred") ??
    (finals.length > 0 && finals.every((o) => o.status === "bounced") ? finals[0] : finals.find((o) => o.status === "sent"));
  if (!pick) {
    // everything was a duplicate of something already delivered for this recipient
    return { index, status: "sent", dsn: "2.0.0", reason: "delivered", relay, action: "delivered", expanded: finals };
  }
  const status: DeliveryStatus = pick.status;
  return { index, status, dsn: pick.dsn, reason: pick.reason, relay: pick.relay ?? relay, action: pick.action, expanded: finals };
}

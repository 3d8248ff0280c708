/**
 * Transport names to delivery agents. local is a separate service (it runs
 * as root to deliver as each recipient) reached over private/local, and so
 * is virtual (the same service runs both: it writes as the mapped uid), and so
 * is each pipe(8) service (role = "pipe": its command runs as its user=); error,
 * discard and retry are answered here, as Postfix's trivial agents would.
 * The smtp, relay and lmtp transports are the SMTP/LMTP client in
 * src/smtp, which runs in this process (async I/O).
 */
import { join } from "node:path";
import type { Config } from "../global/config/config.ts";
import { holdConfig, onConfigReleased } from "../global/config/generation.ts";
import type { DeliveryAgent, DeliveryRequest, RecipientResult } from "../global/delivery/types.ts";
import { JsonLinePool } from "../global/ipc/json-lines-pool.ts";
import { localDeliveryLimits } from "../global/delivery/local-limits.ts";
import type { SmtpAgent } from "../smtp/agent.ts";
import { useNormalJitPolicy } from "../util/jit.ts";
import { pipeServices } from "../global/config/services.ts";

export function localServicePath(config: Config): string {
  return join(config.str("queue_directory"), "private", "local");
}

function allRecipients(req: DeliveryRequest, r: Omit<RecipientResult, "index">): RecipientResult[] {
  return req.recipients.map((rcpt) => ({ index: rcpt.index, ...r }));
}

/** "5.1.1 text" -> ["5.1.1", "text"]; otherwise the given default status. */
function splitStatus(text: string, fallback: string): [string, string] {
  const m = /^([245]\.\d{1,3}\.\d{1,3})\s+(.*)$/s.exec(text);
  return m ? [m[1]!, m[2]!] : [fallback, text];
}

const errorAgent: DeliveryAgent = {
  async deliver(req) {
    const [dsn, reason] = splitStatus(req.nexthop || "mail is not deliverable", "5.0.0");
    return allRecipients(req, { status: dsn.startsWith("4") ? "deferred" : "bounced", dsn, reason, relay: "none" });
  },
};

const retryAgent: DeliveryAgent = {
  async deliver(req) {
    const [dsn, reason] = splitStatus(req.nexthop || "delivery temporarily suspended", "4.0.0");
    return allRecipients(req, { status: "deferred", dsn, reason, relay: "none" });
  },
};

const discardAgent: DeliveryAgent = {
  async deliver(req) {
    return allRecipients(req, { status: "sent", dsn: "2.0.0", reason: req.nexthop || "discarded", relay: "none" });
  },
};

function unavailableAgent(why: string): DeliveryAgent {
  return {
    async deliver(req) {
      return allRecipients(req, { status: "deferred", dsn: "4.3.0", reason: why, relay: "none" });
    },
  };
}

/**
 * How long the queue manager waits for the local service's answer: longer
 * than the service's own limits (command_time_limit, daemon_timeout), so a
 * slow delivery that succeeds is never given up on and delivered again.
 */
export function localServiceTimeoutMs(config: Config): number {
  return localDeliveryLimits(config).serviceWaitMs;
}

/** Connections to the local service, kept between deliveries (one request at a time on each). */
const localServiceConnections = new JsonLinePool();

/** local(8), and virtual(8) (run by the same service, src/local/service.ts): `relay` names which in failures. */
function localServiceAgent(config: Config, relay: string): DeliveryAgent {
  return {
    async deliver(req) {
      try {
        const response = await localServiceConnections.request(localServicePath(config), { request: req } as unknown as Record<string, unknown>, localServiceTimeoutMs(config));
        const results = response.results;
        if (!Array.isArray(results)) throw new Error("no results in the response");
        return results as RecipientResult[];
      } catch (err) {
        return allRecipients(req, { status: "deferred", dsn: "4.3.0", reason: `mail transport unavailable: ${(err as Error).message}`, relay });
      }
    },
  };
}

/**
 * One SMTP and one LMTP agent per configuration: they keep idle connections for reuse between requests,
 * until a reload has replaced the configuration and its last delivery has ended.
 * The SMTP client (TLS, DANE, MTA-STS) and the DNS resolver are loaded on the first delivery that needs them,
 * so a queue manager that only delivers locally never holds their code (issue 16: idle memory).
 */
const smtpAgents = new WeakMap<Config, { smtp?: Promise<SmtpAgent>; lmtp?: Promise<SmtpAgent> }>();

function smtpAgentFor(config: Config, lmtp: boolean): DeliveryAgent {
  let entry = smtpAgents.get(config);
  if (!entry) smtpAgents.set(config, (entry = {}));
  const key = lmtp ? "lmtp" : "smtp";
  // the SMTP client's protocol and TLS code runs hot under relay load: from here on, the normal
  // JIT policy (the queue manager starts with the reluctant one, src/util/jit.ts)
  if (entry[key] === undefined) useNormalJitPolicy();
  let agent = entry[key];
  if (!agent) {
    agent = entry[key] = Promise.all([import("../smtp/agent.ts"), import("../global/dns/settings.ts")]).then(([{ createSmtpAgent }, { resolverFromConfig }]) =>
      createSmtpAgent(config, { resolver: resolverFromConfig(config), lmtp }),
    );
    // after a reload, once its last delivery ended: its cached sessions are QUIT (its tables close by themselves)
    const created = agent;
    onConfigReleased(config, () => void created.then((a) => a.close()).catch(() => {}));
  }
  const ready = agent;
  return {
    readsContent: true,
    async deliver(req) {
      // the delivery keeps this configuration's tables (TLS policy, SASL passwords, generic maps) to its end
      const release = holdConfig(config);
      try {
        return await (await ready).deliver(req);
      } finally {
        release();
      }
    },
  };
}

export function agentFor(config: Config, transport: string): DeliveryAgent {
  switch (transport) {
    case "local":
      return localServiceAgent(config, "local");
    case "virtual":
      return localServiceAgent(config, "virtual");
    case "error":
      return errorAgent;
    case "discard":
      return discardAgent;
    case "retry":
      return retryAgent;
    case "smtp":
    case "relay":
      return smtpAgentFor(config, false);
    case "lmtp":
      return smtpAgentFor(config, true);
    default:
      // a pipe(8) service: the local service runs its command as the service's user
      if (pipeServices(config.services()).has(transport)) return localServiceAgent(config, transport);
      return unavailableAgent(`mail transport unavailable: unknown transport "${transport}"`);
  }
}

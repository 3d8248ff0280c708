/**
 * The pipe delivery agent, Postfix's pipe(8), for services with
 * `role = "pipe"`: the message goes to the service's command on standard
 * input, run as the service's `user=` (never root), with its argv expanded
 * (argv.ts) and the envelope lines its `flags=` ask for (F From_, R
 * Return-Path:, O X-Original-To:, D Delivered-To:, `.` dot-stuffing, `>`
 * From quoting; h, u, q fold and quote the argv addresses; X reports a
 * final delivery instead of "relayed"; B a blank line after the message),
 * with its `eol=` record delimiter, in its `directory=` (default /), for at most its
 * `NAME_time_limit` (default $command_time_limit). The command's end is judged as local(8)'s command
 * delivery judges it (src/local/command-status.ts: EX_TEMPFAIL defers,
 * other sysexits codes bounce, an RFC 3463 status in the output wins), and
 * its output goes into the bounce. All recipients of the request share one
 * run (${recipient} becomes one word each); `<name>_destination_recipient_limit
 * = 1` makes the queue manager send one recipient per request.
 *
 * This module decides; the running is the host's (`PipeHost`): the local
 * service runs this agent and runs the command through its worker layer,
 * in a worker that became the service's user (src/local/pipe-host.ts).
 *
 * Runs in the local service (root, or the invoking user in unprivileged
 * mode). Distrusts the request's addresses (they only become argv words or
 * header values) and the message (only its Delivered-To: lines are read).
 */
import type { Config } from "../global/config/config.ts";
import type { PipeServiceDef } from "../global/config/services.ts";
import type { DeliveryAgent, DeliveryRequest, RecipientResult } from "../global/delivery/types.ts";
import { decodeQueueFile } from "../global/queue/format.ts";
import { readRequestedQueueFile } from "../global/queue/safe-read.ts";
import { resolvePipeUser, type PipeIdentity } from "../global/delivery/pipe-user.ts";
import { pipeTimeLimit } from "../global/delivery/local-limits.ts";
import { log } from "../util/log.ts";
import { expandPipeArgv, MacroError } from "./argv.ts";

export { pipeIdentity, type PipeIdentity } from "../global/delivery/pipe-user.ts";

/** One command run the host performs as `identity`. */
export interface PipeRun {
  identity: PipeIdentity;
  argv: string[];
  /** Envelope lines before the message (flags F, R, O, D). */
  prefix: string;
  quote: boolean;
  dot: boolean;
  timeLimitMs: number;
  /** Working directory (directory=). */
  cwd: string;
  /** Flag B: a blank line after the message. */
  blank: boolean;
  /** eol=: the record delimiter. */
  eol: string;
}

/** How the run ended: the verdict already judged by local(8)'s rules, or a failure to run at all. */
export type PipeOutcome = { status: "sent" | "deferred" | "bounced"; dsn: string; reason: string; output?: string };

export interface PipeHost {
  run(run: PipeRun, content: Uint8Array): Promise<PipeOutcome>;
  /** Lower-cased Delivered-To: values of the message header. */
  deliveredTo(content: Uint8Array): Set<string>;
  /** From_, Return-Path:, X-Original-To:, Delivered-To: lines as local(8) writes them. */
  prefix(lines: { fromLine: boolean; returnPath: boolean; sender: string; originalTo?: string; deliveredTo?: string }): string;
  /** quote_822_local (flag q). */
  quoteLocal(address: string): string;
  close(): Promise<void>;
}

export interface PipeAgentOptions {
  host: PipeHost;
  queueDirectory: string;
}

export interface PipeAgent extends DeliveryAgent {
  close(): Promise<void>;
}

const CONFIG_ERROR = "mail system configuration error";

export function createPipeAgent(config: Config, name: string, service: PipeServiceDef, options: PipeAgentOptions): PipeAgent {
  const flags = new Set(service.flags);
  // <name>_time_limit, by default $command_time_limit (pipe(8)'s transport_time_limit)
  const timeLimitMs = pipeTimeLimit(config, name) * 1000;
  const delimiter = config.str("recipient_delimiter");
  const relay = name;

  return {
    async deliver(request: DeliveryRequest): Promise<RecipientResult[]> {
      const all = (o: PipeOutcome): RecipientResult[] =>
        request.recipients.map((r) => ({ index: r.index, relay, status: o.status, dsn: o.dsn, reason: o.reason, action: o.status === "sent" ? (flags.has("X") ? "delivered" : "relayed") : o.status === "deferred" ? "delayed" : "failed" }));
      let content: Uint8Array;
      try {
        content = decodeQueueFile(readRequestedQueueFile(options.queueDirectory, request.queueFile)).content;
      } catch (err) {
        log.warn(`${request.queueId}: cannot read queue file ${request.queueFile}: ${(err as Error).message}`);
        return all({ status: "deferred", dsn: "4.3.0", reason: "cannot read the queue file" });
      }
      const identity = resolvePipeUser(service.user);
      if ("error" in identity) {
        log.warn(`service ${name}: ${identity.error}`);
        return all({ status: "deferred", dsn: "4.3.5", reason: CONFIG_ERROR });
      }
      const many = request.recipients.length > 1;
      for (const f of ["D", "O"]) {
        if (flags.has(f) && many) {
          log.warn(`pipe flag \`${f}' requires ${name}_destination_recipient_limit = 1`);
          return all({ status: "deferred", dsn: "4.3.5", reason: CONFIG_ERROR });
        }
      }
      if (service.size !== 0 && content.length > service.size) return all({ status: "bounced", dsn: "5.2.3", reason: "message too large" });
      const first = request.recipients[0]!;
      if (flags.has("D") && options.host.deliveredTo(content).has(first.address.toLowerCase())) {
        return all({ status: "bounced", dsn: "5.4.6", reason: `mail forwarding loop for ${first.address}` });
      }
      const a = request.attributes;
      const morph = { foldHost: flags.has("h"), foldUser: flags.has("u"), quote: flags.has("q") ? options.host.quoteLocal : undefined };
      const sender = request.sender === "" ? service.nullSender : request.sender;
      let argv: string[];
      try {
        argv = expandPipeArgv(
          service.argv,
          {
            // pipe.c: a non-empty sender (or null sender replacement) is subject to q; h folds the next hop
            sender: sender !== "" && morph.quote ? morph.quote(sender) : sender,
            nexthop: morph.foldHost ? request.nexthop.toLowerCase() : request.nexthop,
            size: String(content.length),
            queue_id: request.queueId,
            client_address: a.client_address ?? "",
            client_hostname: a.client_name ?? "",
            client_port: a.client_port ?? "",
            client_protocol: a.protocol_name ?? "",
            client_helo: a.helo_name ?? "",
            sasl_method: a.sasl_method ?? "",
            sasl_username: a.sasl_username ?? "",
            sasl_sender: a.sasl_sender ?? "",
            envid: a.envid ?? "",
          },
          request.recipients.map((r) => ({ address: r.address, original: r.original ?? r.address })),
          delimiter,
          morph,
        );
      } catch (err) {
        if (!(err instanceof MacroError)) throw err;
        log.warn(`service ${name}: ${err.message}`);
        return all({ status: "deferred", dsn: "4.3.5", reason: CONFIG_ERROR });
      }
      if (request.verify) return all({ status: "sent", dsn: "2.0.0", reason: `delivers to command: ${argv[0]}` });
      const cwd = service.directory ?? "/";
      const prefix = options.host.prefix({
        fromLine: flags.has("F"),
        returnPath: flags.has("R"),
        sender: request.sender,
        originalTo: flags.has("O") ? (first.original ?? first.address) : undefined,
        deliveredTo: flags.has("D") ? first.address : undefined,
      });
      try {
        const o = await options.host.run({ identity, argv, prefix, quote: flags.has(">"), dot: flags.has("."), timeLimitMs, cwd, blank: flags.has("B"), eol: service.eol }, content);
        // pipe(8)'s words for a success: "delivered via NAME service (output)"; X makes it a final delivery
        if (o.status === "sent") return all({ status: "sent", dsn: "2.0.0", reason: `delivered via ${name} service${o.output?.trim() ? ` (${o.output.trim().slice(0, 100)})` : ""}` });
        return all(o);
      } catch (err) {
        log.error(`${request.queueId}: pipe delivery via ${name} failed: ${(err as Error)?.stack ?? err}`);
        return all({ status: "deferred", dsn: "4.3.0", reason: "pipe delivery failed: internal error" });
      }
    },
    close: () => options.host.close(),
  };
}

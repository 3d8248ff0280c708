/**
 * The contract between the queue manager and the delivery agents (local,
 * smtp, lmtp, error, discard): what a delivery request holds and what each
 * recipient's result says. An agent never moves or rewrites the queue file;
 * the queue manager records every result durably (D records, defer/ and
 * bounce/ logs) before it takes the next step.
 */
import type { NotifyKeyword } from "../queue/format.ts";

export interface DeliveryRecipient {
  /** Index of the recipient in the queue file (for its D record). */
  index: number;
  /** Where to deliver, after address resolution. */
  address: string;
  /** The address as first received (orig_to in logs, ORIGINAL_RECIPIENT for commands). */
  original?: string;
  orcpt?: string;
  notify?: NotifyKeyword[];
}

export interface DeliveryRequest {
  queueId: string;
  /** Path of the queue file (the agent reads the content from it). */
  queueFile: string;
  /** Envelope sender; "" is the null sender. */
  sender: string;
  /** Arrival time, ms since the epoch (for delay= in logs). */
  arrivalTime: number;
  /** Transport name and next hop, as resolved: "local" / "myhostname", "smtp" / "[relay]:587", "error" / text. */
  transport: string;
  nexthop: string;
  recipients: DeliveryRecipient[];
  /** Queue-file attributes (envid, ret, encoding, smtputf8, ...). */
  attributes: Record<string, string>;
  /**
   * Address verification (sendmail -bv, Postfix's DEL_REQ_FLAG_USR_VRFY):
   * the agent resolves and expands as a delivery would, but writes, runs and
   * forwards nothing (SMTP: RCPT TO and no DATA), and says what it would do:
   * "sent" for deliverable, "bounced" or "deferred" for undeliverable.
   */
  verify?: boolean;
  /**
   * The message (headers, blank line, body) exactly as the queue file holds it, when the queue manager
   * already has it in memory (a small file, read whole at activation): an in-process agent may send this
   * instead of reading `queueFile` again; undefined: read the file. A function, so that it never goes
   * over a socket (the local service's request is JSON, which drops functions).
   */
  content?: () => Uint8Array | undefined;
  /**
   * Called once for a recipient as soon as its result is final (SMTP: the
   * 250 to the end of data), before the agent does anything else, so the
   * queue manager can record it at once: a crash between the next hop's
   * acceptance and the record repeats the delivery. An agent that does not
   * call it is fine; deliver()'s results are recorded for every recipient
   * not reported here.
   */
  onResult?: (result: RecipientResult) => void;
}

export type DeliveryStatus = "sent" | "deferred" | "bounced";

export interface RecipientResult {
  index: number;
  status: DeliveryStatus;
  /** Enhanced status code, e.g. "2.0.0", "4.4.1", "5.1.1". */
  dsn: string;
  /** What the log and mailq show: "delivered to maildir", "host x[1.2.3.4] said: ...". */
  reason: string;
  /** relay= in the log: "local", "name[1.2.3.4]:25", "none". */
  relay: string;
  /** DSN action for reports: delivered, relayed, expanded, failed, delayed. */
  action?: string;
  /**
   * SMTP/LMTP: the next hop announced DSN and was given NOTIFY=SUCCESS, so
   * it sends the success notice; Postfix then sends none itself.
   */
  dsnPassedOn?: boolean;
  /**
   * Local delivery: one entry per final delivery the recipient expanded to
   * (aliases, .forward, :include:), in order; Postfix logs a line for each,
   * `to=<address>, orig_to=<the recipient's original>`. The fields above sum
   * them up: deferred if any entry was, bounced if every entry bounced, else
   * sent; bounced entries beside sent ones still need a bounce report.
   */
  expanded?: ExpandedResult[];
  /**
   * Local delivery only: final addresses handed to another transport
   * (mailbox_transport, fallback_transport and their _maps, Postfix's
   * deliver_pass). The queue manager delivers each through that transport
   * in the same round and adds its result to `expanded`; until it has, the
   * fields above count each of them as deferred, so a pass nobody acts on
   * is retried, never lost.
   */
  passOn?: PassOn[];
}

/** One address local delivery passes to another transport: "lmtp" / "inet:127.0.0.1:24". */
export interface PassOn {
  /** The final address (after alias and .forward expansion). */
  address: string;
  transport: string;
  nexthop: string;
}

/** One final delivery of an expanded recipient. */
export interface ExpandedResult {
  /** The final address (to= in the log). */
  address: string;
  status: DeliveryStatus;
  dsn: string;
  reason: string;
  action?: string;
  /** A passed-on address (PassOn): relay= and the transport its log line names. */
  relay?: string;
  transport?: string;
}

/** A delivery agent: delivers one request and reports a result for every recipient in it. */
export interface DeliveryAgent {
  deliver(request: DeliveryRequest): Promise<RecipientResult[]>;
  /**
   * An in-process agent that may send `request.content` (smtp, lmtp): the queue manager keeps a small
   * message's content only for a round with such a delivery, and gives it back at once otherwise.
   */
  readonly readsContent?: boolean;
}

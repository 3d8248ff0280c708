/**
 * Fake delivery agents and a fake clock for driving the queue manager in the
 * test process, without root and without any network: each delivery request
 * is recorded with its queue file decoded as the agent received it, and
 * answered as the test's policy says, or held open until the test answers
 * it (to move the message with postsuper's renames meanwhile, or to stop
 * between one recipient's result and the next). Also a private queue
 * directory made with the queue's own ensureQueueDirectories, owned by
 * whoever runs the tests. Runs in the test process; the inputs come from the
 * test itself.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../../src/global/config/config.ts";
import type { DeliveryAgent, DeliveryRequest, DeliveryStatus, RecipientResult } from "../../src/global/delivery/types.ts";
import { ensureQueueDirectories } from "../../src/global/queue/directories.ts";
import { decodeQueueFile, type QueueFile } from "../../src/global/queue/format.ts";
import { configIn } from "./config.ts";
import type { TestQueue } from "./queue-fixture.ts";
import { waitFor } from "./wait.ts";

/** A clock the test moves by hand: ms since the epoch. */
export class FakeClock {
  ms: number;
  constructor(start: number) {
    this.ms = start;
  }
  now = (): number => this.ms;
  advance(seconds: number): void {
    this.ms += seconds * 1000;
  }
  /** Seconds since the epoch (FixtureMessage.arrival), `ago` seconds before now. */
  secondsAgo(ago: number): number {
    return Math.floor(this.ms / 1000) - ago;
  }
}

export interface FakeDelivery {
  request: DeliveryRequest;
  /** The queue file as it was when the agent got the request (a notice: as the queue manager committed it). */
  file: QueueFile;
  /** Held deliveries only: reports one recipient's final result at once (request.onResult), as smtp does on the 250. */
  report(result: RecipientResult): void;
  /** Held deliveries only: ends the delivery with these results. */
  answer(results: RecipientResult[]): void;
  held: boolean;
  settled: boolean;
}

/** What the test's policy says to a request: the results, or "hold" to answer it later. */
export type Policy = (request: DeliveryRequest) => RecipientResult[] | "hold";

/** Every recipient of the request gets the same outcome. */
export function answerAll(request: DeliveryRequest, status: DeliveryStatus, reason: string, dsn = status === "sent" ? "2.0.0" : status === "deferred" ? "4.4.1" : "5.1.1"): RecipientResult[] {
  return request.recipients.map((r) => ({ index: r.index, status, dsn, reason, relay: "fake[127.0.0.1]:25" }));
}

/** A result for one recipient of a request, by its address. */
export function resultFor(request: DeliveryRequest, address: string, status: DeliveryStatus, reason: string): RecipientResult {
  const r = request.recipients.find((x) => x.address === address);
  if (!r) throw new Error(`no recipient ${address} in the request`);
  return answerAll({ ...request, recipients: [r] }, status, reason)[0]!;
}

/** Records every delivery request; answers it as `policy` says. */
export class FakeAgents {
  deliveries: FakeDelivery[] = [];
  policy: Policy;

  constructor(policy: Policy) {
    this.policy = policy;
  }

  agent: DeliveryAgent = {
    // as the SMTP client: it may send the content the queue manager holds
    readsContent: true,
    deliver: (request) => {
      const file = decodeQueueFile(readFileSync(request.queueFile));
      const answer = this.policy(request);
      let settle!: (results: RecipientResult[]) => void;
      const done = new Promise<RecipientResult[]>((resolve) => (settle = resolve));
      const d: FakeDelivery = {
        request,
        file,
        held: answer === "hold",
        settled: false,
        report: (result) => request.onResult?.(result),
        answer: (results) => {
          d.settled = true;
          settle(results);
        },
      };
      this.deliveries.push(d);
      if (answer !== "hold") d.answer(answer);
      return done;
    },
  };

  /** Notices are sent by the queue manager with the null sender. */
  notices(): FakeDelivery[] {
    return this.deliveries.filter((d) => d.request.sender === "");
  }

  /** Deliveries of the message queued as `id`. */
  of(id: string): FakeDelivery[] {
    return this.deliveries.filter((d) => d.request.queueId === id);
  }

  /** Waits until `n` deliveries match `which`; returns them. */
  async waitFor(what: string, which: (d: FakeDelivery) => boolean, n = 1): Promise<FakeDelivery[]> {
    return waitFor(what, () => {
      const found = this.deliveries.filter(which);
      return found.length >= n && found;
    });
  }

  /** Ends every delivery still held (deferred), so the queue manager can stop. */
  releaseAll(): void {
    for (const d of this.deliveries) if (!d.settled) d.answer(answerAll(d.request, "deferred", "test over"));
  }
}

/** The text of a notice's message (headers and body). */
export function contentOf(d: FakeDelivery): string {
  return Buffer.from(d.file.content).toString("utf8");
}

/** A private queue (every queue directory, owned by whoever runs the test) and its configuration. */
export function makePrivateQueue(root: string, extraConfig = ""): { queue: TestQueue; config: Config } {
  const queueDirectory = join(root, "queue");
  ensureQueueDirectories(queueDirectory, undefined);
  const config = configIn(root, `queue_directory = "${queueDirectory}"\nmyhostname = "mx.test.example"\nmydomain = "test.example"\n${extraConfig}\n`);
  return { queue: { configDir: "", queueDirectory, uid: process.getuid!(), gid: process.getgid!() }, config };
}

/** The IDs in one queue directory. */
export function idsIn(q: TestQueue, queue: string): string[] {
  return readdirSync(join(q.queueDirectory, queue)).filter((n) => !n.startsWith("."));
}

/** The decoded queue file `queue/id`. */
export function readQueued(q: TestQueue, queue: string, id: string): QueueFile {
  return decodeQueueFile(readFileSync(join(q.queueDirectory, queue, id)));
}

/** A queue file's mtime in whole ms (the next retry time of deferred mail). */
export function mtimeOf(q: TestQueue, queue: string, id: string): number {
  return Math.round(statSync(join(q.queueDirectory, queue, id)).mtimeMs);
}


/**
 * QueueSink's commit, in the two forms smtpd picks between (issue 16,
 * relay at 1 session): a session that is alone in the process commits with
 * every step on the event loop, which therefore does not turn before its
 * queue file is durable (a callback queued with setImmediate has not run
 * when the commit resolves); with other sessions in the process the commit
 * waits in the thread pool, and the loop serves them meanwhile. Both leave
 * the same queue file in incoming/ and nothing in its place of birth.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Config } from "../../../src/global/config/config.ts";
import { configSourceFromText } from "../../../src/global/config/source.ts";
import { decodeQueueFile } from "../../../src/global/queue/format.ts";
import type { QueuedMessage, SessionView } from "../../../src/smtpd/protocol/types.ts";
import { QueueSink } from "../../../src/smtpd/queue-sink.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const root = tempDir("postern-queue-sink-");
afterAll(() => removeDir(root));

function sinkIn(queue: string, alone: boolean): QueueSink {
  mkdirSync(join(queue, "incoming"), { recursive: true });
  const config = new Config(configSourceFromText(`queue_directory = "${queue}"\nmyhostname = "mx.example.test"\n`, join(root, "etc")));
  return new QueueSink({ config, cleanupTag: "postfix/cleanup", localRewrite: async () => false, alone: () => alone });
}

function message(body: string): QueuedMessage {
  const recipients = [{ address: "rcpt@example.org", written: "<rcpt@example.org>" }];
  const session: SessionView = {
    client: { address: "192.0.2.1", port: 40000, name: "client.example.org", reverseName: "client.example.org", nameStatus: "ok" },
    helo: "client.example.org",
    esmtp: true,
    protocol: "ESMTP",
    tls: undefined,
    sasl: undefined,
    sender: "sender@example.org",
    mailParams: {},
    recipients,
    pipelined: false,
    pipeliningAllowed: true,
  };
  return {
    session,
    sender: "sender@example.org",
    mailParams: {},
    recipients,
    content: Buffer.from(`Subject: test\nMessage-Id: <${body}@example.org>\n\n${body}\n`),
    received: (id) => `Received: from client.example.org by mx.example.test with ESMTP id ${id}`,
    actions: [],
    arrival: new Date(1_800_000_000_000),
  };
}

/** Commits one message; whether a callback queued with setImmediate just before ran by then. */
async function commitWatchingTheLoop(sink: QueueSink, body: string): Promise<{ queueId: string; loopTurned: boolean }> {
  let loopTurned = false;
  setImmediate(() => {
    loopTurned = true;
  });
  const r = await sink.commit(message(body));
  if (!("queueId" in r)) throw new Error(`commit refused: ${JSON.stringify(r.reject)}`);
  return { queueId: r.queueId, loopTurned };
}

describe("the queue file's commit of a lone session and of one among others", () => {
  test("a session alone in the process commits without the event loop turning (no step through the thread pool)", async () => {
    const queue = join(root, "alone");
    const { queueId, loopTurned } = await commitWatchingTheLoop(sinkIn(queue, true), "lone");
    expect(loopTurned).toBe(false);
    expect(readdirSync(join(queue, "incoming"))).toEqual([queueId]);
    const file = decodeQueueFile(readFileSync(join(queue, "incoming", queueId)));
    expect(file.sender).toBe("sender@example.org");
    expect(file.recipients.map((r) => r.address)).toEqual(["rcpt@example.org"]);
    expect(Buffer.from(file.content).toString()).toContain("\nlone\n");
  });

  test("with other sessions in the process the commit waits in the thread pool and the loop serves them meanwhile", async () => {
    const queue = join(root, "shared");
    const { queueId, loopTurned } = await commitWatchingTheLoop(sinkIn(queue, false), "shared");
    expect(loopTurned).toBe(true);
    expect(readdirSync(join(queue, "incoming"))).toEqual([queueId]);
    expect(Buffer.from(decodeQueueFile(readFileSync(join(queue, "incoming", queueId))).content).toString()).toContain("\nshared\n");
  });
});

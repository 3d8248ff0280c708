/**
 * `postern smtpd -S`, which `sendmail -bs` runs: an SMTP session on standard
 * input and output, run by the SMTP server's protocol engine (protocol/). As
 * Postfix's stand-alone mode: the client is "localhost[127.0.0.1]", access
 * restrictions are off (the user could run sendmail directly anyway), there
 * is no AUTH, STARTTLS or ETRN, and each accepted message goes into
 * maildrop/ exactly as plain sendmail writes it (owned by the submitting
 * user, committed with fsync before "250 2.0.0 Ok: queued as"), so it is
 * queued even while the mail system is down; pickup takes it from there.
 *
 * Space is checked at MAIL FROM as plain sendmail checks it (global/queue/
 * space.ts: `452 4.3.1 Insufficient system storage`); a commit that fails
 * leaves no file and gets `451 4.3.0 Error: queue file write error`.
 *
 * Runs as the invoking user, never set-uid. The session's input is the
 * user's own; the maildrop file is untrusted by pickup as always.
 */
import { join } from "node:path";
import type { Config } from "../global/config/config.ts";
import { setupLog } from "../global/system/log-setup.ts";
import { commitQueueFileSync } from "../global/queue/commit.ts";
import { encodeQueueFile, type Recipient } from "../global/queue/format.ts";
import { queueSpaceRule, queueSpaceShortage } from "../global/queue/space.ts";
import { printable } from "../util/printable.ts";
import { reply, type SmtpdReply } from "./protocol/reply.ts";
import { SmtpdSession } from "./protocol/session.ts";
import { sessionSettings } from "./protocol/settings.ts";
import type { MessageSink, PolicyResult, QueuedMessage, SessionPolicy, SessionTransport } from "./protocol/types.ts";
import { log } from "../util/log.ts";
import { screenUntrustedFile } from "../cleanup/untrusted-envelope.ts";
import { currentSubmitter, fullNameFor } from "../cleanup/submitter.ts";

const ACCEPT = async (): Promise<PolicyResult> => ({});

/** Stand-alone mode has no restrictions. */
const standAlonePolicy: SessionPolicy = { connect: ACCEPT, helo: ACCEPT, mail: ACCEPT, rcpt: ACCEPT, data: ACCEPT, endOfData: ACCEPT, vrfy: ACCEPT, etrn: ACCEPT };

function maildropSink(config: Config): MessageSink {
  const maildrop = join(config.str("queue_directory"), "maildrop");
  return {
    async checkSpace(size: number): Promise<SmtpdReply | undefined> {
      try {
        const shortage = await queueSpaceShortage(config.str("queue_directory"), queueSpaceRule(config), size);
        if (!shortage) return undefined;
        log.warn(shortage.warning);
        return reply(452, "4.3.1", "Insufficient system storage");
      } catch {
        return undefined; // the commit says what is wrong
      }
    },
    async commit(m: QueuedMessage) {
      const submitter = currentSubmitter();
      const attributes: Record<string, string> = { rewrite_context: "local", origin: "sendmail" };
      const fullName = fullNameFor(submitter, undefined);
      if (fullName !== undefined) attributes.full_name = fullName;
      if (m.mailParams.envid !== undefined) attributes.envid = m.mailParams.envid;
      if (m.mailParams.ret !== undefined) attributes.ret = m.mailParams.ret;
      if (m.mailParams.body !== undefined) attributes.encoding = m.mailParams.body;
      const recipients: Recipient[] = m.recipients.map((r) => ({ address: r.address, ...(r.orcpt ? { orcpt: r.orcpt } : {}), ...(r.notify ? { notify: r.notify } : {}) }));
      // what pickup would refuse is refused now, not after 250
      const screened = screenUntrustedFile(
        { arrivalTime: m.arrival.getTime(), sender: m.sender, recipients, attributes, content: m.content },
        { lineLengthLimit: config.int("line_length_limit"), verpFilter: config.str("verp_delimiter_filter") },
      );
      if ("refused" in screened) {
        log.warn(`message refused: ${screened.refused}`);
        return { reject: reply(554, "5.5.4", `Error: ${printable(screened.refused)}`) };
      }
      process.umask(0o022);
      try {
        const id = commitQueueFileSync(
          maildrop,
          (queueId) => {
            const content = Buffer.concat([Buffer.from(`${m.received(queueId)}\n`, "latin1"), m.content]);
            return encodeQueueFile({ arrivalTime: m.arrival.getTime(), sender: m.sender, recipients, attributes, content });
          },
          0o640,
        );
        log.info(`${id}: client=${m.session.client.name}[${m.session.client.address}], uid=${submitter.uid}`);
        return { queueId: id };
      } catch (err) {
        log.warn(`cannot create a queue file in "${maildrop}": ${(err as Error).message}`);
        return { reject: reply(451, "4.3.0", "Error: queue file write error") };
      }
    },
  };
}

function stdioTransport(): SessionTransport {
  return {
    write: (data) => void process.stdout.write(data),
    flushed: () => new Promise<void>((resolve) => process.stdout.write("", () => resolve())),
    end: async () => {},
    onData: (handler) => {
      process.stdin.on("data", (chunk: Buffer) => handler(chunk));
    },
    onClose: (handler) => {
      process.stdin.on("end", handler);
      process.stdin.on("error", handler);
    },
    pause: (paused) => {
      if (paused) process.stdin.pause();
      else process.stdin.resume();
    },
    tls: undefined,
  };
}

export async function smtpMode(config: Config): Promise<number> {
  // the session's log lines go to the mail log only, not to the SMTP stream's neighbour stderr
  await setupLog(config, { role: "smtpd" });
  // a local user may pipe a whole session in at once: that is not the abuse these checks are for
  const settings = { ...sessionSettings(config, { standAlone: true, tlsAvailable: false }), saslEnabled: false, forbidUnauthPipelining: false };
  const session = new SmtpdSession(stdioTransport(), { address: "127.0.0.1", port: 0, name: "localhost", reverseName: "localhost", nameStatus: "ok" }, {
    settings,
    policy: standAlonePolicy,
    sink: maildropSink(config),
    log: { info: (t) => log.info(t), warn: (t) => log.warn(t) },
  });
  await session.run();
  process.stdin.destroy();
  return 0;
}

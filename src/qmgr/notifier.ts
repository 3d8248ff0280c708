/**
 * The report builder the queue manager uses. Until the DSN library is wired
 * in, a plain-text notice that names each failed recipient and its reason.
 */
import type { Notifier } from "./notify.ts";

export async function loadNotifier(): Promise<Notifier> {
  return {
    build(kind, { config, queueId, original, entries, now }) {
      if (kind !== "failure" || original.sender === "") return undefined;
      const host = config.str("myhostname");
      const lines = [
        `From: Mail Delivery System <MAILER-DAEMON@${host}>`,
        `To: ${original.sender}`,
        `Subject: Undelivered Mail Returned to Sender`,
        `Date: ${now.toUTCString()}`,
        `Auto-Submitted: auto-replied`,
        "",
        `This is the mail system at host ${host}.`,
        "",
        `Your message ${queueId} could not be delivered:`,
        "",
        ...entries.map((e) => `<${e.recipient}>: ${e.reason}`),
        "",
      ];
      return { sender: "", recipients: [original.sender], content: Buffer.from(lines.join("\n")) };
    },
  };
}

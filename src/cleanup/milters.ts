/**
 * non_smtpd_milters for local submissions (sendmail, postsuper -r), as
 * Postfix's cleanup emulates an SMTP session for them: connect from
 * localhost [127.0.0.1], EHLO localhost, MAIL with the sender, RCPT with
 * each recipient, DATA, the message, the end of the message. The verdict
 * comes back as Postfix's cleanup applies it:
 *
 * - 4xx (and shutdown, and a recipient refused: a milter cannot refuse one
 *   recipient of a local submission): deferred, the file stays in maildrop/
 *   for the next pass;
 * - 5xx: the message is returned to the sender with the milter's text;
 * - discard: dropped; quarantine: queued in hold/;
 * - header, body and envelope changes: applied to the submission.
 *
 * Runs in pickup as mail_owner. The maildrop file is untrusted and so are
 * the milters' replies (src/global/milter checks them).
 */
import type { Config } from "../global/config/config.ts";
import { receiveOverrides } from "../global/config/receive-override.ts";
import { MilterChain } from "../global/milter/chain.ts";
import type { MilterVerdict } from "../global/milter/client.ts";
import { macroDefaults, stageMacrosFromConfig } from "../global/milter/macros.ts";
import { MAX_PACKET } from "../global/milter/protocol.ts";
import { milterSpecs } from "../global/milter/spec.ts";
import type { QueueFile } from "../global/queue/format.ts";


export type LocalMilterOutcome =
  | { kind: "accept"; file: QueueFile; hold?: string }
  /** Try again later; `log`: the milter-reject line's text. */
  | { kind: "defer"; log: string }
  /** Return to the sender: enhanced status code and text. */
  | { kind: "reject"; status: string; reason: string; log: string }
  | { kind: "discard"; log: string };

/** Whether local submissions go through milters: non_smtpd_milters set, not turned off by receive_override_options = no_milters. */
export function localMiltersEnabled(config: Config): boolean {
  if (config.str("non_smtpd_milters").trim() === "") return false;
  return !receiveOverrides(config).noMilters;
}

const CLIENT = { name: "localhost", address: "127.0.0.1" };

/** "550 5.7.1 text" as an enhanced status code and text (the code's class when the milter gave none). */
function statusOf(text: string): { status: string; reason: string } {
  const first = text.split("\r\n")[0] ?? text;
  const m = /^([45])\d\d[ -](?:([45]\.\d{1,3}\.\d{1,3}) )?(.*)$/.exec(first);
  if (!m) return { status: "5.7.1", reason: first };
  return { status: m[2] ?? `${m[1]}.7.1`, reason: m[3] ?? "" };
}

export async function runLocalMilters(config: Config, file: QueueFile, warn: (text: string) => void): Promise<LocalMilterOutcome> {
  const limit = config.int("message_size_limit");
  let sender = file.sender;
  let rcpt = "";
  const chain = new MilterChain(milterSpecs(config, "non_smtpd_milters"), {
    macros: stageMacrosFromConfig(config),
    defaults: macroDefaults(config),
    lookup: (name) => {
      switch (name) {
        case "j":
          return config.str("myhostname");
        case "v":
          return config.str("milter_macro_v");
        case "daemon_name":
          return config.str("milter_macro_daemon_name");
        case "_":
          return `${CLIENT.name} [${CLIENT.address}]`;
        case "client_addr":
        case "daemon_addr":
          return CLIENT.address;
        case "client_name":
        case "client_ptr":
          return CLIENT.name;
        case "client_port":
        case "daemon_port":
          return "0";
        case "mail_addr":
          return sender;
        case "rcpt_addr":
          return rcpt || undefined;
        default:
          return undefined;
      }
    },
    warn,
    packetLimit: Math.min(MAX_PACKET, Math.max(limit > 0 ? limit + 65536 : MAX_PACKET, 1 << 20)),
    limits: { lineLengthLimit: config.int("line_length_limit"), headerSizeLimit: config.int("header_size_limit") },
  });
  const where = (event: string, text: string) => `${event} from ${CLIENT.name}[${CLIENT.address}]: ${text}; from=<${sender}>`;
  const verdict = (event: string, v: MilterVerdict | undefined): LocalMilterOutcome | undefined => {
    if (!v || v.kind === "hold") return undefined;
    if (v.kind === "discard") return { kind: "discard", log: `milter-discard: ${where(event, "milter triggers DISCARD action")}` };
    const text = v.kind === "shutdown" ? "421 4.7.0 Service unavailable" : v.text;
    if (text.startsWith("5")) return { kind: "reject", ...statusOf(text), log: `milter-reject: ${where(event, text.slice(4))}` };
    return { kind: "defer", log: `milter-reject: ${where(event, text.slice(4))}` };
  };
  try {
    let out = verdict("CONNECT", await chain.connect(CLIENT.name, CLIENT.address, 0));
    out ??= verdict("EHLO", await chain.helo(CLIENT.name));
    out ??= verdict("MAIL", await chain.mail([sender], { mail_addr: sender }));
    if (out) return out;
    for (const r of file.recipients) {
      if (r.done) continue;
      rcpt = r.address;
      const v = await chain.rcpt([r.address], { rcpt_addr: r.address });
      if (v && v.kind !== "hold") {
        warn(`milter configuration error: can't reject recipient in non-smtpd(8) submission`);
        return { kind: "defer", log: `milter-reject: ${where("RCPT", "4.3.5 Server configuration error")}` };
      }
    }
    rcpt = "";
    out = verdict("DATA", await chain.data());
    if (out) return out;
    const m = await chain.message(Buffer.from(file.content.buffer, file.content.byteOffset, file.content.byteLength));
    out = verdict("END-OF-MESSAGE", m.verdict);
    if (out) return out;
    const content = m.content ? Buffer.concat([Buffer.from(m.above.map((h) => `${h}\n`).join(""), "latin1"), m.content]) : file.content;
    if (m.sender !== undefined) sender = m.sender;
    const gone = new Set(m.deleteRecipients.map((a) => a.toLowerCase()));
    // an added recipient keeps its NOTIFY and ORCPT; RET and ENVID from SMFIR_CHGFROM override the submission's
    const recipients = [...file.recipients.filter((r) => !gone.has(r.address.toLowerCase())), ...m.addRecipients];
    const attributes = { ...file.attributes, ...m.senderDsn };
    const changed: QueueFile = { ...file, sender, recipients, attributes, content };
    return m.hold !== undefined ? { kind: "accept", file: changed, hold: m.hold } : { kind: "accept", file: changed };
  } finally {
    chain.quit();
  }
}

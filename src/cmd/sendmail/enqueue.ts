/**
 * The delivery mode of sendmail: check authorized_submit_users, work out
 * the sender and the recipients, read the message (or make the -bv probe),
 * and commit it to maildrop/ as a version 1 queue file. Exit 0 comes only
 * after the commit (file and rename fsynced), whether or not the mail
 * system is running: pickup takes the file when it runs.
 *
 * Runs as the submitting user, never set-uid. The file is created mode 0640
 * in maildrop/ (mode 3733, set-gid mail_owner's group), so it is owned by
 * the submitter, readable by pickup through the group, and neither readable
 * nor removable by other users. Nothing in the file says who wrote it:
 * pickup takes the uid from the file's owner.
 *
 * Exit codes (Postfix's intended sysexits, returned at once):
 * 64 no recipients, 65 input too big or unreadable, or an envelope pickup
 * would refuse (an address with a control character or longer than
 * line_length_limit: cleanup/untrusted-envelope.ts), 77 not authorized,
 * 69 the queue directory does not exist, 75 the file cannot be written
 * (no permission, disk full, I/O error) or the queue file system has no
 * more free space than queue_minfree or 1.5 times message_size_limit (the
 * rule of smtpd's MAIL FROM, global/queue/space.ts). A failed write leaves
 * no file behind.
 */
import { join } from "node:path";
import { ExitError, EX_DATAERR, EX_NOPERM, EX_OSERR, EX_TEMPFAIL, EX_UNAVAILABLE, EX_USAGE } from "../../util/sysexits.ts";
import { log } from "../../util/log.ts";
import { writeStdout } from "../../util/stdio.ts";
import type { Config } from "../../global/config/config.ts";
import { parseAddressList } from "../../global/address/parse.ts";
import { splitMessage } from "../../global/message/header-split.ts";
import { commitQueueFileSync } from "../../global/queue/commit.ts";
import { encodeQueueFile, type Recipient } from "../../global/queue/format.ts";
import { queueSpaceRule, queueSpaceShortageSync } from "../../global/queue/space.ts";
import { checkUserAcl } from "../../global/access/user-acl.ts";
import { printable } from "../../util/printable.ts";
import { screenUntrustedFile } from "../../cleanup/untrusted-envelope.ts";
import { extractRecipients } from "./extract.ts";
import { currentSubmitter, fullNameFor } from "../../cleanup/submitter.ts";
import type { SendmailRequest } from "./options.ts";
import { MessageTooBigError, readStandardInput, type FixLineEndings } from "./read-message.ts";

/** The envelope sender: the first address of -f (a warning if there are more), else the login name. */
function senderFor(req: SendmailRequest, login: string | undefined, uid: number): string {
  if (req.sender === undefined) {
    if (login === undefined) throw new ExitError(EX_OSERR, `no login name found for user ID ${uid}`);
    return login;
  }
  const addrs = parseAddressList(req.sender);
  if (addrs.length > 1) log.warn(`-f option specified malformed sender: ${req.sender}`);
  return addrs[0]?.address ?? "";
}

/** Each argument may hold several addresses ("a, b", "Name <a>"); one that holds none is the empty address. */
function commandLineRecipients(words: readonly string[]): string[] {
  const out: string[] = [];
  for (const w of words) {
    const addrs = parseAddressList(w);
    if (addrs.length === 0) out.push("");
    for (const a of addrs) out.push(a.address);
  }
  return out;
}

function fixLineEndings(config: Config): FixLineEndings {
  const v = config.str("sendmail_fix_line_endings");
  if (v !== "always" && v !== "strict" && v !== "never") throw new ExitError(EX_USAGE, `invalid sendmail_fix_line_endings value: ${v}`);
  return v;
}

/** Postfix's -bv probe: no message is read, the report is about the recipients. */
function probeContent(sender: string, recipients: readonly string[]): Buffer {
  const lines: string[] = [];
  if (sender) lines.push(`From: ${sender}`);
  lines.push("Subject: probe");
  if (recipients.length) lines.push(`To:${recipients.map((r, i) => `\t${r}${i < recipients.length - 1 ? "," : ""}`).join("\n")}`);
  return Buffer.from(lines.join("\n") + "\n", "utf8");
}

function queueWriteError(err: unknown, who: string, dir: string): ExitError {
  const e = err as NodeJS.ErrnoException;
  const reason = (e.message ?? String(err)).replace(/^\w+: /, "").replace(/, \w+(?: '.*')?$/, "");
  // Postfix's words when the file was created but could not be written whole (or renamed)
  if (e.syscall !== "open") return new ExitError(EX_TEMPFAIL, `${who}: error writing queue file: ${reason}`);
  const missing = e.code === "ENOENT" || e.code === "ENOTDIR";
  return new ExitError(missing ? EX_UNAVAILABLE : EX_TEMPFAIL, `${who}: cannot create a queue file in "${dir}": ${reason}`);
}

/** Refuses (exit 75) when the queue file system is short of space; a file system that cannot be asked is left to the commit. */
function checkSpace(config: Config, who: string, size: number): void {
  let shortage;
  try {
    shortage = queueSpaceShortageSync(config.str("queue_directory"), queueSpaceRule(config), size);
  } catch {
    return;
  }
  if (shortage) throw new ExitError(EX_TEMPFAIL, `${who}: Insufficient system storage: ${shortage.warning}; try again later`);
}

/**
 * authorized_submit_users for the invoking user: refused is EX_NOPERM; a table in the list that cannot be read
 * (as this user) is a temporary failure, as every fatal error of Postfix's sendmail is.
 */
export async function checkSubmitter(config: Config, uid: number, login?: string): Promise<void> {
  let allowed: boolean;
  let user: string;
  try {
    ({ allowed, user } = await checkUserAcl(config, "authorized_submit_users", uid, login));
  } catch (err) {
    if ((err as Error)?.name === "TableError") throw new ExitError(EX_TEMPFAIL, `authorized_submit_users: ${(err as Error).message}`);
    throw err;
  }
  if (!allowed) throw new ExitError(EX_NOPERM, `User ${user}(${uid}) is not allowed to submit mail`);
}

export async function enqueue(config: Config, req: SendmailRequest): Promise<number> {
  const submitter = currentSubmitter();
  await checkSubmitter(config, submitter.uid, submitter.login);

  const sender = senderFor(req, submitter.login, submitter.uid);
  const who = `${sender}(${submitter.uid})`;
  if (req.verp !== undefined && sender === "") throw new ExitError(EX_USAGE, `${who}: -V option requires non-null sender address`);
  const fullName = fullNameFor(submitter, req.fullName);
  const sizeLimit = config.int("message_size_limit");

  const recipients = commandLineRecipients(req.operands);
  let content: Buffer;
  if (req.verify) {
    content = probeContent(sender, req.operands);
  } else {
    try {
      content = readStandardInput({ dotEnds: req.dotEnds, fixLineEndings: fixLineEndings(config), lineLengthLimit: config.int("line_length_limit"), sizeLimit });
    } catch (err) {
      if (err instanceof MessageTooBigError) throw new ExitError(EX_DATAERR, `${who}: message file too big`);
      throw new ExitError(EX_DATAERR, `${who}: error reading input: ${(err as Error).message}`);
    }
    if (req.extract) {
      const split = splitMessage(content, { lineLengthLimit: config.int("line_length_limit"), headerSizeLimit: config.int("header_size_limit") });
      if (split.truncated.length) throw new ExitError(EX_DATAERR, `${who}: unable to extract recipients: message header length exceeds safety limit`);
      recipients.push(...extractRecipients(split.headers));
    }
  }
  if (recipients.length === 0) {
    throw new ExitError(EX_USAGE, req.extract ? `${who}: No recipient addresses found in message header` : `${who}: Recipient addresses must be specified on the command line or via the -t option`);
  }

  const attributes: Record<string, string> = { rewrite_context: req.rewriteContext, origin: "sendmail" };
  if (fullName !== undefined) attributes.full_name = fullName;
  if (req.envid !== undefined) attributes.envid = req.envid;
  if (req.ret) attributes.ret = req.ret;
  if (req.encoding) attributes.encoding = req.encoding;
  if (req.verp !== undefined) attributes.verp = req.verp || config.str("default_verp_delimiters");
  if (req.verify) attributes.verify = "yes";
  if (req.record) attributes.record = "yes";
  const rcpts: Recipient[] = recipients.map((address) => (req.notify ? { address, notify: req.notify } : { address }));
  const file = { arrivalTime: Date.now(), sender, recipients: rcpts, attributes, content };
  // what pickup would refuse is refused now, not after exit 0
  const screened = screenUntrustedFile(file, { lineLengthLimit: config.int("line_length_limit"), verpFilter: config.str("verp_delimiter_filter") });
  if ("refused" in screened) throw new ExitError(EX_DATAERR, `${printable(who, true)}: ${screened.refused}`);
  const data = encodeQueueFile(file);
  if (sizeLimit > 0 && data.length > sizeLimit) throw new ExitError(EX_DATAERR, `${who}: message file too big`);

  checkSpace(config, who, data.length);
  const maildrop = join(config.str("queue_directory"), "maildrop");
  // 0640 whatever the user's umask: pickup reads the file through maildrop's group
  process.umask(0o022);
  try {
    commitQueueFileSync(maildrop, () => data, 0o640);
  } catch (err) {
    throw queueWriteError(err, who, maildrop);
  }
  if (req.verify || req.record) {
    writeStdout(`Mail Delivery Status Report will be mailed to <${sender}>.\n`);
  }
  return 0;
}

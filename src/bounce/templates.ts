/**
 * The texts of delivery status notifications: the built-in templates, the
 * bounce_template_file format (Postfix's bounce(5)) that overrides them, and
 * the expansion of `$name` in template text.
 *
 * Runs in the queue manager when it returns a notification. The template
 * file is configuration, trusted as much as postern.toml; a malformed one is
 * an error that names the file and line. Known limits: the file is read as
 * UTF-8; `$myhostname` and `$mydomain` are not converted from ACE to UTF-8
 * as Postfix does with smtputf8_enable.
 */
import { readFileSync } from "node:fs";
import type { Config } from "../global/config/config.ts";
import { Expander, ExpansionError } from "../global/config/expand.ts";

export type TemplateName = "failure" | "delay" | "success" | "verify";

export interface BounceTemplate {
  /** MIME charset of the text. */
  charset: string;
  /** The From: header; an address without a domain gets @$myorigin. */
  from: string;
  subject: string;
  /** Subject of the postmaster's copy (failure and delay notices). */
  postmasterSubject: string;
  /** Unexpanded text: `$name` refers to parameters and to the time names below. */
  text: string;
  /** Where it came from, for warnings: "[built-in]" or the file name. */
  origin: string;
}

const THE_MAIL_SYSTEM = "                   The mail system\n";
const ASSISTANCE = `For further assistance, please send mail to postmaster.

If you do so, please include this problem report. You can
delete your own text from the attached returned message.

`;

/*
 * These reproduce Postfix's default notification text (`postconf -t`, bounce(5))
 * word for word: users' filters and scripts look for these subjects and lines,
 * so they are a fact of the format, not wording to improve.
 */
const BUILT_IN: Record<TemplateName, BounceTemplate> = {
  failure: {
    charset: "us-ascii",
    from: "Mail Delivery System <MAILER-DAEMON>",
    subject: "Undelivered Mail Returned to Sender",
    postmasterSubject: "Postmaster Copy: Undelivered Mail",
    text: `This is the mail system at host $myhostname.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

${ASSISTANCE}${THE_MAIL_SYSTEM}`,
    origin: "[built-in]",
  },
  delay: {
    charset: "us-ascii",
    from: "Mail Delivery System <MAILER-DAEMON>",
    subject: "Delayed Mail (still being retried)",
    postmasterSubject: "Postmaster Warning: Delayed Mail",
    text: `This is the mail system at host $myhostname.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

Your message could not be delivered for more than $delay_warning_time_hours hour(s).
It will be retried until it is $maximal_queue_lifetime_days day(s) old.

${ASSISTANCE}${THE_MAIL_SYSTEM}`,
    origin: "[built-in]",
  },
  success: {
    charset: "us-ascii",
    from: "Mail Delivery System <MAILER-DAEMON>",
    subject: "Successful Mail Delivery Report",
    postmasterSubject: "Successful Mail Delivery Report",
    text: `This is the mail system at host $myhostname.

Your message was successfully delivered to the destination(s)
listed below. If the message was delivered to mailbox you will
receive no further notifications. Otherwise you may still receive
notifications of mail delivery errors from other systems.

${THE_MAIL_SYSTEM}`,
    origin: "[built-in]",
  },
  verify: {
    charset: "us-ascii",
    from: "Mail Delivery System <MAILER-DAEMON>",
    subject: "Mail Delivery Status Report",
    postmasterSubject: "Mail Delivery Status Report",
    text: `This is the mail system at host $myhostname.

Enclosed is the mail delivery report that you requested.

${THE_MAIL_SYSTEM}`,
    origin: "[built-in]",
  },
};

const FILE_NAMES: Record<string, TemplateName> = {
  failure_template: "failure",
  delay_template: "delay",
  success_template: "success",
  verify_template: "verify",
};

export class TemplateError extends Error {}

/**
 * Parses a bounce template file: `name = <<EOF` ... a line `EOF`, for the
 * names failure_template, delay_template, success_template, verify_template.
 * Outside a template, empty lines and `#` comments are ignored. Each template
 * starts with optional headers (Charset:, From:, Subject:, Postmaster-Subject:),
 * then an empty line, then the text.
 */
export function parseTemplateFile(text: string, file: string): Partial<Record<TemplateName, BounceTemplate>> {
  const out: Partial<Record<TemplateName, BounceTemplate>> = {};
  const lines = text.split("\n");
  if (lines.at(-1) === "") lines.pop();
  const fail = (line: number, message: string): never => {
    throw new TemplateError(`${file}, line ${line}: ${message}`);
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(#.*)?$/.test(line)) continue;
    const m = /^\s*([a-z_]+)\s*=\s*<<\s*(\S+)\s*$/.exec(line);
    if (!m) fail(i + 1, `expected "name = <<EOF": "${line.slice(0, 60)}"`);
    const name = FILE_NAMES[m![1]!];
    if (!name) fail(i + 1, `unknown template name "${m![1]}"`);
    const end = m![2]!;
    if (/["']/.test(end)) fail(i + 1, `the end word "${end}" cannot be quoted`);
    const start = i + 1;
    let stop = start;
    while (stop < lines.length && lines[stop] !== end) stop++;
    if (stop >= lines.length) fail(i + 1, `no line "${end}" ends template "${m![1]}"`);
    out[name!] = parseTemplateBody(lines.slice(start, stop), BUILT_IN[name!], file, start + 1);
    i = stop;
  }
  return out;
}

function parseTemplateBody(body: string[], base: BounceTemplate, file: string, firstLine: number): BounceTemplate {
  const t: BounceTemplate = { ...base, origin: file };
  let i = 0;
  for (; i < body.length; i++) {
    const h = /^([A-Za-z-]+):[ \t]*(.*)$/.exec(body[i]!);
    if (!h) break;
    const value = h[2]!.trimEnd();
    if (!/^[\x20-\x7e]*$/.test(value)) throw new TemplateError(`${file}, line ${firstLine + i}: template headers must be printable ASCII`);
    switch (h[1]!.toLowerCase()) {
      case "charset":
        t.charset = value;
        break;
      case "from":
        t.from = value;
        break;
      case "subject":
        t.subject = value;
        break;
      case "postmaster-subject":
        t.postmasterSubject = value;
        break;
      default:
        throw new TemplateError(`${file}, line ${firstLine + i}: unknown template header "${h[1]}"`);
    }
  }
  if (i < body.length && body[i] === "") i++;
  const text = body.slice(i);
  t.text = text.length ? text.join("\n") + "\n" : "";
  return t;
}

/** The template for `name`: bounce_template_file's when it defines one, else the built-in one. */
export function loadTemplate(config: Config, name: TemplateName): BounceTemplate {
  const file = config.str("bounce_template_file");
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new TemplateError(`Cannot read bounce_template_file "${file}": ${(err as Error).message}`);
    }
    const found = parseTemplateFile(text, file)[name];
    if (found) return found;
  }
  return BUILT_IN[name];
}

export function builtInTemplate(name: TemplateName): BounceTemplate {
  return BUILT_IN[name];
}

const UNITS: Record<string, number> = { seconds: 1, minutes: 60, hours: 3600, days: 86400, weeks: 604800 };
const TIME_NAME = /^(delay_warning_time|maximal_queue_lifetime)_(seconds|minutes|hours|days|weeks)$/;

/**
 * Expands template text: `$$`, `$name`, `${name}` and the conditional forms
 * refer to parameters; `delay_warning_time_UNIT` and
 * `maximal_queue_lifetime_UNIT` (UNIT: seconds, minutes, hours, days, weeks)
 * are those times in whole units. `warn` hears of a time that rounds down to
 * zero, in Postfix's words.
 */
export function expandTemplateText(config: Config, t: BounceTemplate, kind: TemplateName, warn: (text: string) => void): string {
  const expander = new Expander((name) => {
    const m = TIME_NAME.exec(name);
    if (!m) return config.raw(name);
    const value = Math.floor(config.time(m[1]!) / UNITS[m[2]!]!);
    if (value === 0) {
      warn(`${t.origin}: zero result in ${kind} template conversion of parameter "${name}"`);
      warn(`please reduce time unit "${m[2]}" of "${name}" in ${kind} template`);
      warn("for instructions see the bounce(5) manual");
    }
    return String(value);
  });
  try {
    return expander.expand(t.text);
  } catch (err) {
    if (err instanceof ExpansionError) throw new TemplateError(`${t.origin}: ${kind} template: ${err.message}`);
    throw err;
  }
}

/**
 * Postfix-shaped logging: `Mmm dd hh:mm:ss HOST tag[pid]: severity: text`.
 *
 * One process-wide logger. Destinations: a file opened once with O_APPEND
 * (lines from many processes interleave whole), syslog through a unix
 * datagram socket, and for commands also stderr as `program: severity: text`.
 * Before configureLog() runs, everything goes to stderr.
 *
 * Runs in every role and command and trusts nothing in `text`: every line
 * goes through printable() once, here, so no caller can put a control
 * character (ESC, NUL, ...) into the log. Newlines become spaces (one record a
 * line), every other non-printable character "?" as in Postfix's msg_output;
 * non-ASCII text passes when smtputf8_enable is on (Postfix's util_utf8_enable).
 */
import { closeSync, openSync, constants as fsc } from "node:fs";
import { writeFully } from "./durable-file.ts";
import { hostname } from "./os-lazy.ts";
import { printable } from "./printable.ts";

export type Severity = "info" | "warning" | "error" | "fatal" | "panic";

/** syslog(3) severities for each grade. */
const SYSLOG_SEVERITY: Record<Severity, number> = { info: 6, warning: 4, error: 3, fatal: 2, panic: 0 };

export interface SyslogSender {
  send(datagram: string): boolean;
  close(): void;
}

export interface LogOptions {
  /** `syslog_name/role`, e.g. `postfix/pickup`. */
  tag: string;
  /** Host name printed in file lines; defaults to the short host name. */
  host?: string;
  /** Append lines to this file (a path, /dev/stdout, /dev/stderr). */
  file?: string;
  /** Send lines to syslog through this sender, with this facility number. */
  syslog?: { sender: SyslogSender; facility: number };
  /** Also print `program: severity: text` on stderr (commands do; daemons don't). */
  stderrProgram?: string;
  /** Non-ASCII text is printable (smtputf8_enable); default on. */
  utf8?: boolean;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The classic syslog timestamp, `Nov  1 06:05:09`, in local time. */
export function syslogTimestamp(d: Date): string {
  const p2 = (n: number) => String(n).padStart(2, "0");
  return `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, " ")} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
}

/** The second the cached stamp is for, and the stamp (see nowTimestamp). */
let stampSecond = Number.NaN;
let stampZone: string | undefined;
let stamp = "";

/**
 * syslogTimestamp of now, computed once a second: a line's five local-time conversions cost
 * more than the rest of writing it (issue 16; daemons write several lines per message). The
 * stamp has whole seconds only; a zone's offset changes only on a second's boundary, and a
 * change of TZ makes a new stamp.
 */
export function nowTimestamp(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  const zone = process.env.TZ;
  if (second !== stampSecond || zone !== stampZone) {
    stamp = syslogTimestamp(new Date(second * 1000));
    stampSecond = second;
    stampZone = zone;
  }
  return stamp;
}

/** One printable line: newlines become a space, every other non-printable character "?". */
export function logText(text: string, utf8 = true): string {
  return printable(text.replace(/[\r\n]+/g, " "), utf8);
}

class Logger {
  #tag = "postern";
  /** Asked of the system only when a file line is written without a host from the configuration. */
  #host: string | undefined;
  #fileFd: number | undefined;
  #syslog: LogOptions["syslog"];
  #stderrProgram: string | undefined = "postern";
  #utf8 = true;

  configure(opts: LogOptions): void {
    this.close();
    this.#tag = opts.tag;
    if (opts.host) this.#host = opts.host;
    this.#stderrProgram = opts.stderrProgram;
    this.#syslog = opts.syslog;
    this.#utf8 = opts.utf8 ?? true;
    if (opts.file) {
      if (opts.file === "/dev/stdout") this.#fileFd = 1;
      else if (opts.file === "/dev/stderr") this.#fileFd = 2;
      else this.#fileFd = openSync(opts.file, fsc.O_WRONLY | fsc.O_APPEND | fsc.O_CREAT, 0o644);
    }
  }

  get tag(): string {
    return this.#tag;
  }

  close(): void {
    if (this.#fileFd !== undefined && this.#fileFd > 2) closeSync(this.#fileFd);
    this.#fileFd = undefined;
    this.#syslog?.sender.close();
    this.#syslog = undefined;
  }

  write(severity: Severity, message: string, tag = this.#tag): void {
    const text = (severity === "info" ? "" : `${severity}: `) + logText(message, this.#utf8);
    if (this.#stderrProgram !== undefined) {
      try {
        writeFully(2, `${this.#stderrProgram}: ${text}\n`);
      } catch {
        // stderr closed: nothing better to do
      }
    }
    const record = `${logText(tag, this.#utf8)}[${process.pid}]: ${text}`;
    if (this.#fileFd !== undefined && !(this.#fileFd === 2 && this.#stderrProgram !== undefined)) {
      try {
        this.#host ??= hostname().split(".")[0] || "localhost";
        writeFully(this.#fileFd, `${nowTimestamp()} ${this.#host} ${record}\n`);
      } catch {
        // a full disk must not take the caller down with it
      }
    }
    if (this.#syslog) {
      const pri = this.#syslog.facility * 8 + SYSLOG_SEVERITY[severity];
      this.#syslog.sender.send(`<${pri}>${nowTimestamp()} ${record}`);
    }
  }

  info(message: string): void {
    this.write("info", message);
  }
  warn(message: string): void {
    this.write("warning", message);
  }
  error(message: string): void {
    this.write("error", message);
  }
  fatal(message: string): void {
    this.write("fatal", message);
  }
  panic(message: string): void {
    this.write("panic", message);
  }
}

export const log = new Logger();

/**
 * sendmail's command line, parsed as Postfix's sendmail parses it: POSIX
 * getopt with Postfix's option string, plus the words getopt cannot handle
 * (`-q` alone, `-XV`, and the deprecated `-V xy` / `-Vxy` VERP forms), then
 * the checks for options that do not go together. Every option keeps its
 * Postfix meaning; the ones Postfix ignores are accepted and ignored.
 *
 * Input is the user's argument vector (untrusted, but it only ever selects
 * what the user may do anyway). Usage errors throw ExitError(EX_USAGE) with
 * Postfix's wording; warnings go to the log and stderr.
 */
import { getopt, GetoptError } from "../../util/getopt.ts";
import { writeStderr } from "../../util/stdio.ts";
import { log } from "../../util/log.ts";
import { ExitError, EX_USAGE } from "../../util/sysexits.ts";
import type { NotifyKeyword } from "../../global/queue/format.ts";
import { validEnvid } from "../../global/message/dsn-params.ts";

/** Postfix 3.7's sendmail option string. */
export const SENDMAIL_OPTIONS = "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx";

export type SendmailMode = "enqueue" | "mailq" | "newaliases" | "daemon" | "smtp" | "flush" | "ignore";

export interface SendmailRequest {
  mode: SendmailMode;
  /** -C: the configuration directory (or file). */
  configDir?: string;
  /** -t: recipients from the message headers too. */
  extract: boolean;
  /** Without -i / -oi a line with a single dot ends the message. */
  dotEnds: boolean;
  /** -f / -r as given (parsed as an address later). */
  sender?: string;
  /** -F. */
  fullName?: string;
  /** -N: DSN NOTIFY for every recipient. */
  notify?: NotifyKeyword[];
  /** -V: DSN ENVID. */
  envid?: string;
  /** -R: DSN RET. */
  ret?: "FULL" | "HDRS";
  /** -B: body type. */
  encoding?: "7BIT" | "8BITMIME";
  /** -XV / -XVxy: VERP delimiters; "" means default_verp_delimiters. */
  verp?: string;
  /** -bv: verify the recipients, mail a report instead of delivering. */
  verify: boolean;
  /** -v given once: mail a report of the first delivery attempt. */
  record: boolean;
  /** -G: gateway submission (rewrite in the remote context). */
  rewriteContext: "local" | "remote";
  /** -qRsite, -qIid. */
  flushSite?: string;
  flushId?: string;
  /** -q<interval>: accepted and ignored (sendmail exits 0 unless in daemon mode). */
  queueInterval?: string;
  /** -oA: an alias database for -bi. */
  aliasDatabase?: string;
  /** The recipient words after the options. */
  operands: string[];
}

export interface OptionContext {
  /** verp_delimiter_filter: the characters -XVxy may use. */
  verpFilter: string;
}

/** getopt's complaint on stderr first, as with Postfix's glibc getopt, then the usage error. */
function usage(detail: string): never {
  try {
    writeStderr(`sendmail: ${detail}\n`);
  } catch {}
  throw new ExitError(EX_USAGE, "usage: sendmail [options]");
}

/** One option word (and perhaps its argument in the next word), by the shared getopt; throws GetoptError. */
function parseWord(word: string, next: string | undefined): { options: Array<[string, string | undefined]>; consumed: number } {
  try {
    return { options: getopt([word], SENDMAIL_OPTIONS).options, consumed: 1 };
  } catch (err) {
    if (!(err instanceof GetoptError) || next === undefined || !err.message.startsWith("option requires an argument")) throw err;
    return { options: getopt([word, next], SENDMAIL_OPTIONS).options, consumed: 2 };
  }
}

type Visit = (letter: string, arg: string | undefined) => void;

/**
 * Walks the option words as Postfix's main loop does and returns the
 * operands. `special` receives the words getopt cannot parse: "q" for a
 * lone -q and "XV" for -XV.
 */
export function walkOptions(args: readonly string[], visit: Visit, special: (what: "q" | "XV") => void, warn: (text: string) => void): string[] {
  let i = 0;
  while (i < args.length) {
    let word = args[i]!;
    if (word === "-q") {
      special("q");
      i++;
      continue;
    }
    if (word === "-V" && args[i + 1]?.length === 2) {
      warn("option -V is deprecated with Postfix 2.3; specify -XV instead");
      word = "-XV";
    } else if (word.startsWith("-V") && word.length === 4) {
      warn(`option ${word} is deprecated with Postfix 2.3; specify -X${word.slice(1)} instead`);
      word = `-X${word.slice(1)}`;
    }
    if (word === "-XV") {
      special("XV");
      i++;
      continue;
    }
    if (word === "--") {
      i++;
      break;
    }
    if (word.length < 2 || !word.startsWith("-")) break;
    const { options, consumed } = parseWord(word, args[i + 1]);
    for (const [letter, arg] of options) visit(letter, arg);
    i += consumed;
  }
  return args.slice(i);
}

/** -C only, so the right configuration is read before the options that depend on it. */
export function prescanConfigDir(args: readonly string[]): string | undefined {
  let dir: string | undefined;
  try {
    walkOptions(args, (l, a) => l === "C" && (dir = a), () => {}, () => {});
  } catch {
    // reported by the real parse
  }
  return dir;
}

const NOTIFY_WORDS: Record<string, NotifyKeyword> = { never: "NEVER", success: "SUCCESS", failure: "FAILURE", delay: "DELAY" };

/** Postfix's dsn_notify_mask: a comma or blank separated list; NEVER alone. Undefined when invalid. */
export function parseNotify(text: string, warn: (t: string) => void): NotifyKeyword[] | undefined {
  const out: NotifyKeyword[] = [];
  for (const word of text.split(/[\s,]+/).filter(Boolean)) {
    const k = NOTIFY_WORDS[word.toLowerCase()];
    if (!k) {
      warn(`unknown DSN NOTIFY command value "${word}" in "${text}"`);
      return undefined;
    }
    if (!out.includes(k)) out.push(k);
  }
  if (!out.length || (out.includes("NEVER") && out.length > 1)) return undefined;
  return out;
}

export function parseSendmailArgs(args: readonly string[], invokedAs: string, ctx: OptionContext): SendmailRequest {
  const warn = (t: string) => log.warn(t);
  const req: SendmailRequest = {
    mode: invokedAs === "mailq" ? "mailq" : invokedAs === "newaliases" ? "newaliases" : "enqueue",
    extract: false,
    dotEnds: true,
    verify: false,
    record: false,
    rewriteContext: "local",
    operands: [],
  };
  let verbose = 0;
  const fatal = (text: string): never => {
    throw new ExitError(EX_USAGE, text);
  };
  const visit: Visit = (letter, arg = "") => {
    switch (letter) {
      case "B":
        if (arg === "8BITMIME" || arg === "7BIT") req.encoding = arg;
        else fatal("-B option needs 8BITMIME or 7BIT");
        break;
      case "C":
        req.configDir = arg;
        break;
      case "F":
        req.fullName = arg;
        break;
      case "G":
        req.rewriteContext = "remote";
        break;
      case "I":
        req.mode = "newaliases";
        break;
      case "N": {
        const notify = parseNotify(arg, warn);
        if (notify) req.notify = notify;
        else warn("bad -N option value -- ignored");
        break;
      }
      case "R": {
        const ret = arg.toUpperCase();
        if (ret === "FULL" || ret === "HDRS") req.ret = ret;
        else warn("bad -R option value -- ignored");
        break;
      }
      case "V":
        if (arg.length > 100) warn("too long -V option value -- ignored");
        else if (!validEnvid(arg)) warn("bad syntax in -V option value -- ignored");
        else req.envid = arg;
        break;
      case "X":
        if (arg[0] !== "V") fatal(`unsupported: -X${arg[0] ?? ""}`);
        {
          const delimiters = arg.slice(1);
          if (delimiters.length !== 2 || ![...delimiters].every((c) => ctx.verpFilter.includes(c))) fatal(`-V requires two characters from ${ctx.verpFilter}`);
          req.verp = delimiters;
        }
        break;
      case "b":
        switch (arg[0]) {
          case "d":
          case "l":
            if (req.mode === "flush") warn("ignoring -q option in daemon mode");
            req.mode = "daemon";
            break;
          case "h":
          case "H":
            req.mode = "ignore";
            break;
          case "i":
            req.mode = "newaliases";
            break;
          case "m":
            req.mode = "enqueue";
            break;
          case "p":
            req.mode = "mailq";
            break;
          case "s":
            req.mode = "smtp";
            break;
          case "v":
            req.verify = true;
            break;
          default:
            fatal(`unsupported: -b${arg[0] ?? ""}`);
        }
        break;
      case "f":
      case "r":
        req.sender = arg;
        break;
      case "i":
        req.dotEnds = false;
        break;
      case "n":
        fatal("-n option not supported");
        break;
      case "o":
        if (arg[0] === "A") {
          if (arg.length === 1) fatal("-oA requires pathname");
          req.aliasDatabase = arg.slice(1);
        } else if (arg[0] === "i") req.dotEnds = false;
        // -o7 -o8 -om -oem -odb -odi -oQ... and the rest: ignored, as Postfix does
        break;
      case "q":
        if (/^\d/.test(arg)) req.queueInterval = arg;
        else if (arg[0] === "R") req.flushSite = arg.slice(1);
        else if (arg[0] === "I") req.flushId = arg.slice(1);
        else fatal(`-q${arg[0] ?? ""} is not implemented`);
        break;
      case "t":
        req.extract = true;
        break;
      case "v":
        verbose++;
        break;
      default:
        // -A -L -O -U -c -e -h -m -p -x: accepted and ignored, as Postfix does
        break;
    }
  };
  const special = (what: "q" | "XV") => {
    if (what === "XV") req.verp = "";
    else if (req.mode === "daemon") warn("ignoring -q option in daemon mode");
    else req.mode = "flush";
  };
  try {
    req.operands = walkOptions(args, visit, special, warn);
  } catch (err) {
    if (err instanceof GetoptError) usage(err.message);
    throw err;
  }

  // -qR site and -qI id (Postfix wants -qRsite): take the site or ID from the next word
  for (const key of ["flushSite", "flushId"] as const) {
    if (req[key] !== "") continue;
    const next = req.operands.shift();
    if (next === undefined || next === "") fatal(key === "flushSite" ? "specify: -qRsitename" : "specify: -qIqueueid");
    req[key] = next;
  }

  if (req.extract && req.mode !== "enqueue") fatal("-t can be used only in delivery mode");
  if (req.flushSite !== undefined && req.mode !== "enqueue") fatal("-qR can be used only in delivery mode");
  if (req.flushId !== undefined && req.mode !== "enqueue") fatal("-qI can be used only in delivery mode");
  if (req.verify) {
    if (req.extract) fatal("-t option cannot be used with -bv");
    if (req.notify) fatal("-N option cannot be used with -bv");
    if (req.ret) fatal("-R option cannot be used with -bv");
    if (verbose === 1) fatal("-v option cannot be used with -bv");
  }
  // one -v asks for a delivery report; more than one is verbose logging (ignored)
  if (verbose === 1 && req.mode === "enqueue") req.record = true;
  return req;
}

/** sendmail's option parsing: Postfix's getopt behaviour, modes, DSN options, conflicts and their messages. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseNotify, parseSendmailArgs, prescanConfigDir } from "../../../../src/cmd/sendmail/options.ts";
import { ExitError } from "../../../../src/util/sysexits.ts";
import { log } from "../../../../src/util/log.ts";

// warnings go to a log file the tests read, not to the terminal
const dir = mkdtempSync(join(tmpdir(), "postern-smopt-"));
const logFile = join(dir, "log");
beforeAll(() => log.configure({ tag: "postfix/sendmail", file: logFile }));
afterAll(() => {
  log.configure({ tag: "postern", stderrProgram: "postern" });
  rmSync(dir, { recursive: true, force: true });
});
function warningsOf(fn: () => void): string[] {
  writeFileSync(logFile, "");
  fn();
  return readFileSync(logFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => l.replace(/^.*?\]: /, ""));
}

const ctx = { verpFilter: "-=+" };
const parse = (args: string[], invokedAs = "sendmail") => parseSendmailArgs(args, invokedAs, ctx);

function usageError(args: string[]): string {
  try {
    parse(args);
  } catch (err) {
    expect(err).toBeInstanceOf(ExitError);
    expect((err as ExitError).exitCode).toBe(64);
    return (err as Error).message;
  }
  throw new Error(`no error for ${JSON.stringify(args)}`);
}

describe("recipients and option words", () => {
  test("defaults: delivery mode, the dot ends input, local rewriting", () => {
    expect(parse(["bob"])).toMatchObject({ mode: "enqueue", extract: false, dotEnds: true, verify: false, record: false, rewriteContext: "local", operands: ["bob"] });
  });

  test("-- ends the options: every later word is a recipient", () => {
    expect(parse(["-i", "--", "-t", "-fx"]).operands).toEqual(["-t", "-fx"]);
    expect(parse(["-i", "--", "-t"]).extract).toBe(false);
  });

  test("the first recipient ends the options (no GNU permutation)", () => {
    const r = parse(["bob", "-t"]);
    expect(r.extract).toBe(false);
    expect(r.operands).toEqual(["bob", "-t"]);
  });

  test("-f glued or apart, -r, and the null sender", () => {
    expect(parse(["-fuser@x", "bob"]).sender).toBe("user@x");
    expect(parse(["-f", "user@x", "bob"]).sender).toBe("user@x");
    expect(parse(["-r", "other", "bob"]).sender).toBe("other");
    expect(parse(["-f", "", "bob"]).sender).toBe("");
    expect(parse(["-f<>", "bob"]).sender).toBe("<>");
  });

  test("bundled flags, and a bundle ending in an option that takes the next word", () => {
    const r = parse(["-tif", "sender", "bob"]);
    expect(r).toMatchObject({ extract: true, dotEnds: false, sender: "sender", operands: ["bob"] });
  });

  test("-F with a full name; -oi; -i", () => {
    expect(parse(["-F", "A B", "bob"]).fullName).toBe("A B");
    expect(parse(["-oi", "bob"]).dotEnds).toBe(false);
    expect(parse(["-i", "bob"]).dotEnds).toBe(false);
  });

  test("-C is seen before anything else", () => {
    expect(prescanConfigDir(["-t", "-C", "/etc/x", "bob"])).toBe("/etc/x");
    expect(prescanConfigDir(["-C/etc/y", "-z"])).toBe("/etc/y");
    expect(prescanConfigDir(["bob", "-C", "/etc/x"])).toBeUndefined();
  });

  test("options Postfix accepts and ignores", () => {
    const r = parse(["-oA/etc/aliases", "-oem", "-odb", "-odi", "-oQ/x", "-om", "-o7", "-o8", "-L", "label", "-O", "a=b", "-h", "3", "-m", "-U", "-Ac", "-Am", "-c", "-x", "-e", "x", "-p", "x", "bob"]);
    expect(r).toMatchObject({ mode: "enqueue", dotEnds: true, operands: ["bob"] });
  });
});

describe("modes", () => {
  test("-bm -bp -bs -bi -I -bd -bl -bh -bH", () => {
    expect(parse(["-bp"]).mode).toBe("mailq");
    expect(parse(["-bp", "-bm", "bob"]).mode).toBe("enqueue");
    expect(parse(["-bs"]).mode).toBe("smtp");
    expect(parse(["-bi"]).mode).toBe("newaliases");
    expect(parse(["-I"]).mode).toBe("newaliases");
    expect(parse(["-bd"]).mode).toBe("daemon");
    expect(parse(["-bl"]).mode).toBe("daemon");
    expect(parse(["-bh"]).mode).toBe("ignore");
    expect(parse(["-bH"]).mode).toBe("ignore");
  });

  test("the invoked name picks the default mode", () => {
    expect(parse([], "mailq").mode).toBe("mailq");
    expect(parse([], "newaliases").mode).toBe("newaliases");
  });

  test("-q alone flushes; -q<interval> is noted; -qR and -qI glued or apart", () => {
    expect(parse(["-q"]).mode).toBe("flush");
    expect(parse(["-q30m"])).toMatchObject({ mode: "enqueue", queueInterval: "30m" });
    expect(parse(["-qRexample.com"]).flushSite).toBe("example.com");
    expect(parse(["-qR", "example.com"])).toMatchObject({ flushSite: "example.com", operands: [] });
    expect(parse(["-qIABC123"]).flushId).toBe("ABC123");
    expect(parse(["-qI", "ABC123"]).flushId).toBe("ABC123");
  });

  test("-bv sets verify; one -v asks for a report, two are verbose logging", () => {
    expect(parse(["-bv", "bob"])).toMatchObject({ verify: true, mode: "enqueue" });
    expect(parse(["-v", "bob"]).record).toBe(true);
    expect(parse(["-v", "-v", "bob"]).record).toBe(false);
  });
});

describe("DSN and body options", () => {
  test("-N never and -N success,delay,failure", () => {
    expect(parse(["-N", "never", "bob"]).notify).toEqual(["NEVER"]);
    expect(parse(["-N", "success,delay,failure", "bob"]).notify).toEqual(["SUCCESS", "DELAY", "FAILURE"]);
    expect(parse(["-NSUCCESS", "bob"]).notify).toEqual(["SUCCESS"]);
  });

  test("parseNotify refuses unknown words and NEVER with others", () => {
    const warnings: string[] = [];
    expect(parseNotify("bogus", (w) => warnings.push(w))).toBeUndefined();
    expect(warnings).toEqual(['unknown DSN NOTIFY command value "bogus" in "bogus"']);
    expect(parseNotify("never,success", () => {})).toBeUndefined();
    expect(parseNotify("", () => {})).toBeUndefined();
  });

  test("a bad -N, -R or -V is ignored with Postfix's warnings", () => {
    expect(warningsOf(() => expect(parse(["-N", "bogus", "bob"]).notify).toBeUndefined())).toEqual([
      'warning: unknown DSN NOTIFY command value "bogus" in "bogus"',
      "warning: bad -N option value -- ignored",
    ]);
    expect(warningsOf(() => expect(parse(["-R", "bogus", "bob"]).ret).toBeUndefined())).toEqual(["warning: bad -R option value -- ignored"]);
    expect(warningsOf(() => expect(parse(["-V", "x".repeat(101), "bob"]).envid).toBeUndefined())).toEqual(["warning: too long -V option value -- ignored"]);
    expect(warningsOf(() => expect(parse(["-V", "bad\u0001id", "bob"]).envid).toBeUndefined())).toEqual(["warning: bad syntax in -V option value -- ignored"]);
    // Postfix's all_isprint_tab: an empty value is bad syntax, a TAB is fine
    expect(warningsOf(() => expect(parse(["-V", "", "bob"]).envid).toBeUndefined())).toEqual(["warning: bad syntax in -V option value -- ignored"]);
    expect(parse(["-V", "a\tb", "bob"]).envid).toBe("a\tb");
  });

  test("-R hdrs|full, -V envid, -B 7BIT|8BITMIME", () => {
    expect(parse(["-R", "hdrs", "bob"]).ret).toBe("HDRS");
    expect(parse(["-R", "FULL", "bob"]).ret).toBe("FULL");
    expect(parse(["-V", "envid-123", "bob"]).envid).toBe("envid-123");
    expect(parse(["-B", "8BITMIME", "bob"]).encoding).toBe("8BITMIME");
    expect(parse(["-B7BIT", "bob"]).encoding).toBe("7BIT");
  });

  test("-XV with the default delimiters or two of verp_delimiter_filter; the deprecated -V forms", () => {
    expect(parse(["-XV", "bob"]).verp).toBe("");
    expect(parse(["-XV+=", "bob"]).verp).toBe("+=");
    expect(parse(["-V-=", "bob"]).verp).toBe("-=");
    // Postfix turns "-V xy" into -XV and leaves xy as a recipient
    const w = warningsOf(() => expect(parse(["-V", "ab", "bob"])).toMatchObject({ verp: "", operands: ["ab", "bob"] }));
    expect(w).toEqual(["warning: option -V is deprecated with Postfix 2.3; specify -XV instead"]);
    expect(parse(["-G", "bob"]).rewriteContext).toBe("remote");
  });
});

describe("usage errors: exit 64 with Postfix's messages", () => {
  const cases: Array<[string[], string]> = [
    [["-z", "bob"], "usage: sendmail [options]"],
    [["-f"], "usage: sendmail [options]"],
    [["-bz"], "unsupported: -bz"],
    [["-Xz"], "unsupported: -Xz"],
    [["-XVab", "bob"], "-V requires two characters from -=+"],
    [["-qX"], "-qX is not implemented"],
    [["-qR"], "specify: -qRsitename"],
    [["-qI"], "specify: -qIqueueid"],
    [["-n", "bob"], "-n option not supported"],
    [["-B", "foo", "bob"], "-B option needs 8BITMIME or 7BIT"],
    [["-oA"], "-oA requires pathname"],
    [["-t", "-bp"], "-t can be used only in delivery mode"],
    [["-q", "-t"], "-t can be used only in delivery mode"],
    [["-bp", "-qRsite"], "-qR can be used only in delivery mode"],
    [["-t", "-bv", "bob"], "-t option cannot be used with -bv"],
    [["-bv", "-N", "never", "bob"], "-N option cannot be used with -bv"],
    [["-bv", "-R", "hdrs", "bob"], "-R option cannot be used with -bv"],
    [["-bv", "-v", "bob"], "-v option cannot be used with -bv"],
  ];
  for (const [args, message] of cases) test(args.join(" "), () => expect(usageError(args)).toBe(message));
});

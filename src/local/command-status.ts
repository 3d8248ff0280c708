/**
 * What a delivery command's end means, as Postfix's local(8) and pipe(8)
 * judge it: exit 0 delivered; output that starts with an RFC 3463 status
 * ("4.7.1 text") takes precedence over the exit status; sysexits(3) codes
 * map through Postfix's table (EX_TEMPFAIL and EX_OSERR defer, the others
 * bounce with their enhanced status); other exits bounce; a signal defers;
 * the time limit bounces.
 *
 * Runs in the local delivery agent. The command output it quotes is
 * untrusted: it is cut to 4096 bytes and made printable first.
 */

export interface SysExitDetail {
  dsn: string;
  text: string;
}

/** Postfix's sys_exits table: sysexits(3) code -> enhanced status and text. */
export const SYS_EXITS: ReadonlyMap<number, SysExitDetail> = new Map([
  [64, { dsn: "5.3.0", text: "command line usage error" }],
  [65, { dsn: "5.6.0", text: "data format error" }],
  [66, { dsn: "5.3.0", text: "cannot open input" }],
  [67, { dsn: "5.1.1", text: "user unknown" }],
  [68, { dsn: "5.1.2", text: "host name unknown" }],
  [69, { dsn: "5.3.0", text: "service unavailable" }],
  [70, { dsn: "5.3.0", text: "internal software error" }],
  [71, { dsn: "4.3.0", text: "system resource problem" }],
  [72, { dsn: "5.3.0", text: "critical OS file missing" }],
  [73, { dsn: "5.2.0", text: "can't create user output file" }],
  [74, { dsn: "5.3.0", text: "input/output error" }],
  [75, { dsn: "4.3.0", text: "temporary failure" }],
  [76, { dsn: "5.5.0", text: "remote error in protocol" }],
  [77, { dsn: "5.7.0", text: "permission denied" }],
  [78, { dsn: "5.3.5", text: "local configuration error" }],
]);

/** The table entry for `code`, or Postfix's stand-in for codes outside sysexits(3). */
export function sysExitDetail(code: number): SysExitDetail {
  return SYS_EXITS.get(code) ?? { dsn: "5.3.0", text: `unknown mail system error ${code}` };
}

/** Output kept for reports, as Postfix keeps it: at most this many bytes. */
export const OUTPUT_LIMIT = 4096;

/** Tabs and newlines become spaces, other unprintable bytes underscores (Postfix's translit + printable). */
export function printableOutput(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes.subarray(0, OUTPUT_LIMIT)) {
    if (b === 9 || b === 10) out += " ";
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += "_";
  }
  return out;
}

/**
 * An enhanced status code at the start of `text` ("5.1.1 no such user"): the
 * class 2, 4 or 5, then two numbers of one to three digits, then white space
 * or the end. Returns the code and the text after it.
 */
export function parseDsnPrefix(text: string): { dsn: string; text: string } | undefined {
  const m = /^([245]\.\d{1,3}\.\d{1,3})(?=\s|$)\s*/.exec(text);
  if (!m) return undefined;
  return { dsn: m[1]!, text: text.slice(m[0].length) };
}

export type CommandEnd =
  | { kind: "exit"; code: number }
  | { kind: "signal"; signal: number }
  | { kind: "timeout" }
  /** The command could not be started or fed (fork, exec, or a write error other than EPIPE). */
  | { kind: "failed"; error: string };

export interface CommandVerdict {
  status: "sent" | "deferred" | "bounced";
  dsn: string;
  reason: string;
}

/** Judges how a command ended. `output` is already printable (printableOutput). */
export function judgeCommand(command: string, end: CommandEnd, output: string): CommandVerdict {
  const withOutput = output ? `. Command output: ${output}` : "";
  const byClass = (dsn: string): CommandVerdict["status"] => (dsn.startsWith("4") ? "deferred" : "bounced");
  switch (end.kind) {
    case "timeout":
      return { status: "bounced", dsn: "5.3.0", reason: `Command time limit exceeded: "${command}"${withOutput}` };
    case "signal":
      return { status: "deferred", dsn: "4.3.0", reason: `Command died with signal ${end.signal}: "${command}"${withOutput}` };
    case "failed":
      return { status: "bounced", dsn: "5.3.0", reason: `Command failed: ${end.error}: "${command}"` };
    case "exit": {
      if (end.code === 0) return { status: "sent", dsn: "2.0.0", reason: `delivered to command: ${command}` };
      const given = parseDsnPrefix(output);
      if (given) {
        // a success class from a failing command is no success: Postfix bounces it with 5.0.0
        const dsn = given.dsn.startsWith("2") ? "5.0.0" : given.dsn;
        return { status: byClass(dsn), dsn, reason: given.text };
      }
      const detail = sysExitDetail(end.code);
      if (SYS_EXITS.has(end.code)) return { status: byClass(detail.dsn), dsn: detail.dsn, reason: detail.text + withOutput };
      return { status: "bounced", dsn: detail.dsn, reason: `Command died with status ${end.code}: "${command}"${withOutput}` };
    }
  }
}

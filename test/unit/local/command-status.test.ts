import { describe, expect, test } from "bun:test";
import { judgeCommand, parseDsnPrefix, printableOutput, sysExitDetail } from "../../../src/local/command-status.ts";

describe("sysexits mapping (Postfix's sys_exits table)", () => {
  const cases: [number, string, string, string][] = [
    [64, "bounced", "5.3.0", "command line usage error"],
    [65, "bounced", "5.6.0", "data format error"],
    [67, "bounced", "5.1.1", "user unknown"],
    [68, "bounced", "5.1.2", "host name unknown"],
    [69, "bounced", "5.3.0", "service unavailable"],
    [71, "deferred", "4.3.0", "system resource problem"],
    [73, "bounced", "5.2.0", "can't create user output file"],
    [75, "deferred", "4.3.0", "temporary failure"],
    [76, "bounced", "5.5.0", "remote error in protocol"],
    [77, "bounced", "5.7.0", "permission denied"],
    [78, "bounced", "5.3.5", "local configuration error"],
  ];
  for (const [code, status, dsn, text] of cases) {
    test(`exit ${code} is ${status} ${dsn}`, () => {
      expect(judgeCommand("prog", { kind: "exit", code }, "")).toEqual({ status: status as "bounced", dsn, reason: text });
    });
  }

  test("output is appended after the sysexits text", () => {
    expect(judgeCommand("prog", { kind: "exit", code: 75 }, "try later ")).toEqual({
      status: "deferred",
      dsn: "4.3.0",
      reason: "temporary failure. Command output: try later ",
    });
  });

  test("a status outside sysexits bounces with the command named", () => {
    expect(judgeCommand("/bin/sh -c 'echo hello; exit 1'", { kind: "exit", code: 1 }, "hello ")).toEqual({
      status: "bounced",
      dsn: "5.3.0",
      reason: `Command died with status 1: "/bin/sh -c 'echo hello; exit 1'". Command output: hello `,
    });
    expect(sysExitDetail(200).text).toBe("unknown mail system error 200");
  });

  test("exit 0 is delivered, a signal defers, the time limit bounces", () => {
    expect(judgeCommand("cmd x", { kind: "exit", code: 0 }, "noise")).toEqual({ status: "sent", dsn: "2.0.0", reason: "delivered to command: cmd x" });
    expect(judgeCommand("/tmp/k.sh", { kind: "signal", signal: 9 }, "dying ")).toEqual({
      status: "deferred",
      dsn: "4.3.0",
      reason: `Command died with signal 9: "/tmp/k.sh". Command output: dying `,
    });
    expect(judgeCommand("/bin/sleep 60", { kind: "timeout" }, "")).toEqual({ status: "bounced", dsn: "5.3.0", reason: `Command time limit exceeded: "/bin/sleep 60"` });
  });
});

describe("D.S.N text from command output", () => {
  test("parses a leading enhanced status code", () => {
    expect(parseDsnPrefix("4.7.1 go away ")).toEqual({ dsn: "4.7.1", text: "go away " });
    expect(parseDsnPrefix("5.1.1")).toEqual({ dsn: "5.1.1", text: "" });
    expect(parseDsnPrefix("5.100.200\tx")).toEqual({ dsn: "5.100.200", text: "x" });
  });

  test("rejects what is not a status code", () => {
    for (const t of ["3.1.1 no", "5.1 no", "5.1.1x", "x 5.1.1", "5.1234.1 y", ""]) expect(parseDsnPrefix(t)).toBeUndefined();
  });

  test("takes precedence over the exit status", () => {
    expect(judgeCommand("c", { kind: "exit", code: 1 }, "4.7.1 go away ")).toEqual({ status: "deferred", dsn: "4.7.1", reason: "go away " });
    expect(judgeCommand("c", { kind: "exit", code: 75 }, "5.2.2 mailbox full")).toEqual({ status: "bounced", dsn: "5.2.2", reason: "mailbox full" });
  });
});

test("command output is made printable and cut at 4096 bytes", () => {
  expect(printableOutput(Buffer.from([0x61, 9, 0x62, 10, 0x63, 1, 0x64, 0xff, 0x65]))).toBe("a b c_d_e");
  expect(printableOutput(Buffer.alloc(5000, 0x61)).length).toBe(4096);
});

import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { log, nowTimestamp, syslogTimestamp, type SyslogSender } from "../../../src/util/log.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const dir = tempDir("postern-log-unit-");
afterAll(() => {
  log.configure({ tag: "postern", stderrProgram: "postern" });
  removeDir(dir);
});

describe("syslogTimestamp", () => {
  test("Mmm dd hh:mm:ss in local time, the day padded with a space", () => {
    expect(syslogTimestamp(new Date(2026, 10, 1, 6, 5, 9))).toBe("Nov  1 06:05:09");
    expect(syslogTimestamp(new Date(2026, 0, 31, 23, 59, 0))).toBe("Jan 31 23:59:00");
  });
});

describe("logger", () => {
  test("file lines: timestamp, host, tag[pid], severity prefix; text made one line", () => {
    const file = join(dir, "maillog");
    log.configure({ tag: "postfix/test", host: "mx1", file });
    log.info("plain");
    log.warn("look out");
    log.error("broken");
    log.fatal("dying");
    log.panic("very bad");
    log.write("info", "two\nlines\r\nhere");
    log.close();
    const lines = readFileSync(file, "utf8").split("\n").filter(Boolean);
    const texts = lines.map((l) => {
      const m = /^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d mx1 postfix\/test\[(\d+)\]: (.*)$/.exec(l);
      expect(m).not.toBeNull();
      expect(Number(m![1])).toBe(process.pid);
      return m![2];
    });
    expect(texts).toEqual(["plain", "warning: look out", "error: broken", "fatal: dying", "panic: very bad", "two lines here"]);
  });

  test("every non-printable character becomes \"?\" (Postfix's printable()); UTF-8 passes unless disabled", () => {
    const file = join(dir, "maillog-printable");
    log.configure({ tag: "postfix/test", host: "mx1", file });
    log.warn("SASL X\x1b[31mY authentication failed: nul\0 del\x7f tab\t bell\x07 c1\u009b lone\ud800 bad\ufffd");
    log.info("from=<jürgen@例え.test> 😀");
    log.configure({ tag: "postfix/test", host: "mx1", file, utf8: false });
    log.info("from=<jürgen@example.test>");
    log.close();
    const text = readFileSync(file, "utf8");
    expect(text).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f\ufffd]/);
    const lines = text.split("\n").filter(Boolean).map((l) => l.replace(/^.*?\]: /, ""));
    expect(lines).toEqual([
      "warning: SASL X?[31mY authentication failed: nul? del? tab? bell? c1? lone? bad?",
      "from=<jürgen@例え.test> 😀",
      "from=<j?rgen@example.test>",
    ]);
  });

  test("syslog datagrams: <PRI> with facility*8 + severity, no host", () => {
    const sent: string[] = [];
    let closed = false;
    const sender: SyslogSender = { send: (d) => {
        sent.push(d);
        return true;
      }, close: () => void (closed = true) };
    log.configure({ tag: "postfix/test", syslog: { sender, facility: 2 } });
    log.info("i");
    log.warn("w");
    log.error("e");
    log.fatal("f");
    log.panic("p");
    log.write("info", "other tag", "custom/tag");
    log.close();
    expect(closed).toBe(true);
    const pid = process.pid;
    const ts = "[A-Z][a-z]{2} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d";
    const expected = [
      [22, `postfix/test[${pid}]: i`],
      [20, `postfix/test[${pid}]: warning: w`],
      [19, `postfix/test[${pid}]: error: e`],
      [18, `postfix/test[${pid}]: fatal: f`],
      [16, `postfix/test[${pid}]: panic: p`],
      [22, `custom/tag[${pid}]: other tag`],
    ] as const;
    expect(sent).toHaveLength(expected.length);
    sent.forEach((d, i) => {
      const [pri, rest] = expected[i]!;
      expect(d).toMatch(new RegExp(`^<${pri}>${ts} ${rest.replace(/[[\]/]/g, "\\$&")}$`));
    });
  });
});

describe("nowTimestamp (the stamp of now, computed once a second)", () => {
  test("the same as syslogTimestamp for every instant, across second boundaries and a change of TZ", () => {
    const base = Date.UTC(2027, 0, 7, 5, 4, 9);
    for (const t of [base, base + 1, base + 999, base + 1000, base + 999, base + 61_000, base + 86_400_000, base]) {
      expect(nowTimestamp(t)).toBe(syslogTimestamp(new Date(t)));
    }
    const zone = process.env.TZ;
    try {
      process.env.TZ = "America/New_York";
      expect(nowTimestamp(base)).toBe(syslogTimestamp(new Date(base)));
      expect(nowTimestamp(base)).toBe("Jan  7 00:04:09");
    } finally {
      process.env.TZ = zone;
    }
    expect(nowTimestamp(base)).toBe(syslogTimestamp(new Date(base)));
  });
});

import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { builtInTemplate, expandTemplateText, loadTemplate, parseTemplateFile, TemplateError, type TemplateName } from "../../../src/bounce/templates.ts";
import { buildNotices } from "../../../src/bounce/notices.ts";
import { wrapLine } from "../../../src/bounce/line-wrap.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";
import { configMaker } from "../../helpers/config.ts";
import { header, parseMime } from "./mime-parse.ts";

const root = tempDir("postern-bounce-templates-");
afterAll(() => removeDir(root));

const configFrom = configMaker(root, 'myhostname = "mx.example.test"\n');

const POSTCONF = "/usr/sbin/postconf";
const NAMES: TemplateName[] = ["failure", "delay", "success", "verify"];

/** `NAME = <<EOF ... EOF` blocks of postconf -b / -t output. */
function heredocs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/^(\w+) = <<EOF\n([\s\S]*?)^EOF$/gm)) out[m[1]!] = m[2]!;
  return out;
}

describe("the built-in templates are Postfix's", () => {
  const postfixConf = join(root, "postfix");
  mkdirSync(postfixConf);
  writeFileSync(join(postfixConf, "main.cf"), "myhostname = mx.example.test\n");
  const run = (flag: string) => Bun.spawnSync([POSTCONF, "-c", postfixConf, flag], { stdout: "pipe", stderr: "pipe" }).stdout.toString();

  test.skipIf(!existsSync(POSTCONF))("postconf -t prints the same headers and text", () => {
    const theirs = heredocs(run("-t"));
    for (const name of NAMES) {
      const t = builtInTemplate(name);
      const lines = [`Charset: ${t.charset}`, `From: ${t.from}`, `Subject: ${t.subject}`];
      if (name === "failure" || name === "delay") lines.push(`Postmaster-Subject: ${t.postmasterSubject}`);
      expect(theirs[`${name}_template`]).toBe(`${lines.join("\n")}\n\n${t.text}`);
    }
  });

  test.skipIf(!existsSync(POSTCONF))("postconf -b expands them to the same text", () => {
    const theirs = heredocs(run("-b"));
    const config = configFrom();
    for (const name of NAMES) expect(theirs[`expanded_${name}_text`]).toBe(expandTemplateText(config, builtInTemplate(name), name, () => {}));
  });
});

describe("bounce_template_file", () => {
  const file = join(root, "bounce.cf");
  writeFileSync(
    file,
    `# site templates

failure_template = <<EOF
Charset: utf-8
From: Postmeister <MAILER-DAEMON>
Subject: Unzustellbar
postmaster-subject: Kopie: Unzustellbar

Hallo von $myhostname, es kostet $$5.
Wartezeit: \${delay_warning_time_minutes} Minuten, Lebensdauer $maximal_queue_lifetime_weeks Woche(n).
EOF

   # a comment between templates
success_template = <<END
Subject: Delivered
END
`,
  );

  test("parses headers, text and the end word; templates it does not define stay built in", () => {
    const t = parseTemplateFile(readFileSync(file, "utf8"), file);
    expect(Object.keys(t).sort()).toEqual(["failure", "success"]);
    expect(t.failure).toMatchObject({ charset: "utf-8", from: "Postmeister <MAILER-DAEMON>", subject: "Unzustellbar", postmasterSubject: "Kopie: Unzustellbar" });
    expect(t.failure!.text.startsWith("Hallo von $myhostname")).toBe(true);
    expect(t.success!.subject).toBe("Delivered");
    expect(t.success!.text).toBe("");
    const config = configFrom(`bounce_template_file = "${file}"\n`);
    expect(loadTemplate(config, "delay")).toBe(builtInTemplate("delay"));
  });

  test("expansion: parameters, $$, and the time names in whole units", () => {
    const config = configFrom(`bounce_template_file = "${file}"\ndelay_warning_time = "2h"\nmaximal_queue_lifetime = "14d"\n`);
    expect(expandTemplateText(config, loadTemplate(config, "failure"), "failure", () => {})).toBe(
      "Hallo von mx.example.test, es kostet $5.\nWartezeit: 120 Minuten, Lebensdauer 2 Woche(n).\n",
    );
  });

  test("a report made from it: subject, From qualified, charset, text", () => {
    const config = configFrom(`bounce_template_file = "${file}"\nmyorigin = "example.test"\n`);
    const original = { arrivalTime: 0, sender: "a@example.org", attributes: {}, recipients: [{ address: "b@mx.example.test" }], content: Buffer.from("Subject: x\n\nbody\n") };
    const n = buildNotices("failure", { config, queueId: "ABC", original, entries: [{ recipient: "b@mx.example.test", status: "5.1.1", action: "failed", time: 0, reason: "nope" }], now: new Date(0) }).notices[0]!;
    const mime = parseMime(n.content("DEF"));
    expect(header(mime, "Subject")).toBe("Unzustellbar");
    expect(header(mime, "From")).toBe("Postmeister <MAILER-DAEMON@example.test>");
    expect(mime.parts![0]!.params.charset).toBe("utf-8");
    expect(mime.parts![0]!.body!.startsWith("Hallo von mx.example.test, es kostet $5.\n")).toBe(true);
  });

  test("errors name the file and line", () => {
    const bad = (text: string) => {
      try {
        parseTemplateFile(text, "/etc/postern/bounce.cf");
      } catch (err) {
        expect(err).toBeInstanceOf(TemplateError);
        return (err as Error).message;
      }
      throw new Error("no error");
    };
    expect(bad("\nbogus_template = <<EOF\nx\nEOF\n")).toBe('/etc/postern/bounce.cf, line 2: unknown template name "bogus_template"');
    expect(bad("failure_template = <<EOF\ntext\n")).toBe('/etc/postern/bounce.cf, line 1: no line "EOF" ends template "failure_template"');
    expect(bad("failure_template = <<EOF\nX-Header: y\n\ntext\nEOF\n")).toBe('/etc/postern/bounce.cf, line 2: unknown template header "X-Header"');
    expect(bad("failure_template = <<'EOF'\nEOF\n")).toBe(`/etc/postern/bounce.cf, line 1: the end word "'EOF'" cannot be quoted`);
    expect(bad("some text\n")).toBe('/etc/postern/bounce.cf, line 1: expected "name = <<EOF": "some text"');
  });

  test("a missing file is an error that names it", () => {
    const config = configFrom(`bounce_template_file = "${join(root, "nope.cf")}"\n`);
    expect(() => loadTemplate(config, "failure")).toThrow(`Cannot read bounce_template_file "${join(root, "nope.cf")}"`);
  });
});

describe("line wrapping", () => {
  test("lines of at most 79 characters, continuations indented by four", () => {
    const words = Array.from({ length: 30 }, (_, i) => `word${i}`).join(" ");
    const lines = wrapLine(`<someone@example.org>: ${words}`);
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(79);
    for (const l of lines.slice(1)) expect(l.startsWith("    ")).toBe(true);
    expect(lines.map((l) => l.trim()).join(" ")).toBe(`<someone@example.org>: ${words}`);
  });

  test("exactly 79 fits, 80 breaks", () => {
    expect(wrapLine(`${"a".repeat(70)} ${"b".repeat(8)}`)).toEqual([`${"a".repeat(70)} ${"b".repeat(8)}`]);
    expect(wrapLine(`${"a".repeat(70)} ${"b".repeat(9)}`)).toEqual(["a".repeat(70), `    ${"b".repeat(9)}`]);
  });

  test("a word longer than a line stays whole, and spaces at a break are dropped", () => {
    expect(wrapLine(`x: ${"y".repeat(90)} z`)).toEqual(["x:", `    ${"y".repeat(90)}`, "    z"]);
    expect(wrapLine(`${"a".repeat(78)}   b`)).toEqual(["a".repeat(78), "    b"]);
  });
});

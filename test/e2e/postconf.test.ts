/** postconf through its command link: showing and editing postern.toml as Postfix's postconf does. */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { configDir, removeDir, run, tempDir } from "../helpers/run.ts";
import { editCases } from "../helpers/golden.ts";

const cleanup: string[] = [];
afterAll(() => cleanup.forEach(removeDir));
function conf(text: string): string {
  const dir = configDir(text);
  cleanup.push(dir);
  return dir;
}
/** An empty directory that holds no postern.toml: every parameter has its default. */
function noFile(): string {
  const dir = tempDir("postern-nofile-");
  cleanup.push(dir);
  return dir;
}

const SAMPLE = [
  "# sample",
  'myhostname = "mail.example.com"',
  "message_size_limit = 20000000",
  'mydestination = ["$myhostname", "localhost.$mydomain"]',
  'smtpd_banner = "$myhostname ESMTP $mail_name (test)"',
  'home_mailbox = ""',
  "",
  "[services.smtp]",
  'listen = "127.0.0.1:2525"',
  "",
].join("\n");

describe("postconf: showing parameters", () => {
  test("no arguments: every parameter, sorted, as name = value; empty values as 'name ='", async () => {
    const dir = noFile();
    const r = await run("postconf", ["-c", dir]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.length).toBeGreaterThan(50);
    const names = lines.map((l) => l.split(" =")[0]!);
    expect(names).toEqual([...names].sort());
    expect(new Set(names).size).toBe(names.length);
    for (const l of lines) expect(l).toMatch(/^[A-Za-z0-9_]+ =( \S.*)?$/);
    expect(lines).toContain("relayhost =");
    expect(lines).toContain("message_size_limit = 10240000");
    expect(lines).toContain("myorigin = $myhostname");
    expect(lines).toContain(`config_directory = ${dir}`);
  });

  test("named parameters print in the order asked, unexpanded", async () => {
    const dir = conf(SAMPLE);
    const r = await run("postconf", ["-c", dir, "smtpd_banner", "myhostname", "relayhost", "mydestination"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(
      "smtpd_banner = $myhostname ESMTP $mail_name (test)\nmyhostname = mail.example.com\nrelayhost =\nmydestination = $myhostname, localhost.$mydomain\n",
    );
  });

  test("-n: only what the file sets, sorted", async () => {
    const r = await run("postconf", ["-n", "-c", conf(SAMPLE)]);
    expect(r.stdout).toBe(
      [
        "home_mailbox =",
        "message_size_limit = 20000000",
        "mydestination = $myhostname, localhost.$mydomain",
        "myhostname = mail.example.com",
        "smtpd_banner = $myhostname ESMTP $mail_name (test)",
        "",
      ].join("\n"),
    );
    const named = await run("postconf", ["-n", "-c", conf(SAMPLE), "myhostname", "relayhost"]);
    expect(named.stdout).toBe("myhostname = mail.example.com\n");
  });

  test("-d: the built-in defaults, whatever the file says", async () => {
    const dir = conf(SAMPLE);
    const r = await run("postconf", ["-d", "-c", dir, "myhostname", "message_size_limit", "mydomain", "mydestination", "config_directory"]);
    const host = (await run("postconf", ["-h", "-c", noFile(), "myhostname"])).stdout.trim();
    expect(r.stdout).toBe(
      [
        `myhostname = ${host}`,
        "message_size_limit = 10240000",
        `mydomain = ${host.slice(host.indexOf(".") + 1)}`,
        "mydestination = $myhostname, localhost.$mydomain, localhost",
        "config_directory = /etc/postern",
        "",
      ].join("\n"),
    );
  });

  test("-d with -x expands against defaults only", async () => {
    const r = await run("postconf", ["-dx", "-c", conf(SAMPLE), "myorigin"]);
    const host = (await run("postconf", ["-h", "-c", noFile(), "myhostname"])).stdout.trim();
    expect(r.stdout).toBe(`myorigin = ${host}\n`);
  });

  test("-h prints values only, -H names only", async () => {
    const dir = conf(SAMPLE);
    expect((await run("postconf", ["-h", "-c", dir, "myhostname", "relayhost", "message_size_limit"])).stdout).toBe("mail.example.com\n\n20000000\n");
    expect((await run("postconf", ["-H", "-c", dir, "myhostname", "relayhost"])).stdout).toBe("myhostname\nrelayhost\n");
    const all = await run("postconf", ["-H", "-c", dir]);
    expect(all.stdout).toContain("\nmyhostname\n");
    expect(all.stdout).not.toContain("=");
  });

  test("-h and -H together are refused", async () => {
    const r = await run("postconf", ["-hH", "mail_name"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("specify one of -h and -H");
  });

  test("-x expands $name, recursively, with the file's values", async () => {
    const dir = conf(SAMPLE);
    const r = await run("postconf", ["-x", "-c", dir, "smtpd_banner", "mydestination", "myorigin", "mydomain"]);
    expect(r.stdout).toBe(
      [
        "smtpd_banner = mail.example.com ESMTP postern (test)",
        "mydestination = mail.example.com, localhost.example.com",
        "myorigin = mail.example.com",
        "mydomain = example.com",
        "",
      ].join("\n"),
    );
  });

  test("-x warns about names nobody defines, once each, and expands them to nothing", async () => {
    const dir = conf('smtpd_banner = "$myhostname $nosuch_name ${nosuch_name} ${other_unknown?x}y"\nmyhostname = "h.example"\n');
    const r = await run("postconf", ["-x", "-c", dir, "smtpd_banner"]);
    expect(r.stdout).toBe("smtpd_banner = h.example y\n");
    expect(r.stderr).toBe(
      `postconf: warning: ${dir}/postern.toml: undefined parameter: nosuch_name\npostconf: warning: ${dir}/postern.toml: undefined parameter: other_unknown\n`,
    );
  });

  test("-x leaves parameters that local delivery expands (forward_path, mailbox_command) alone", async () => {
    const dir = conf('mailbox_command = "/usr/bin/procmail -a \\"$EXTENSION\\""\n');
    const r = await run("postconf", ["-x", "-c", dir, "mailbox_command", "forward_path"]);
    expect(r.stdout).toBe('mailbox_command = /usr/bin/procmail -a "$EXTENSION"\nforward_path = $home/.forward${recipient_delimiter}${extension}, $home/.forward\n');
    expect(r.stderr).toBe("");
  });

  test("-o name=value overrides a value for this command", async () => {
    const r = await run("postconf", ["-c", conf(SAMPLE), "-o", "myhostname=other.example", "-x", "myorigin"]);
    expect(r.stdout).toBe("myorigin = other.example\n");
    const d = await run("postconf", ["-d", "-o", "myhostname=x", "myorigin"]);
    expect(d.code).toBe(64);
    expect(d.stderr).toContain("specify one of -d and -o");
  });

  test("white space in values prints as single spaces, multi-line strings included", async () => {
    const dir = conf('smtpd_banner = """\n$myhostname   ESMTP\n\tready"""\n');
    expect((await run("postconf", ["-c", dir, "smtpd_banner"])).stdout).toBe("smtpd_banner = $myhostname ESMTP ready\n");
  });

  test("an unknown name: Postfix's warning on stderr, nothing on stdout, exit 0", async () => {
    const r = await run("postconf", ["-c", noFile(), "no_such_parameter", "mail_name"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("mail_name = postern\n");
    expect(r.stderr).toBe("postconf: warning: no_such_parameter: unknown parameter\n");
  });

  test("an unknown name set in the file is not shown, and is reported as unused", async () => {
    const dir = conf('myhostnme = "typo.example"\n');
    const r = await run("postconf", ["-c", dir, "myhostnme"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(
      `postconf: warning: myhostnme: unknown parameter\npostconf: warning: ${dir}/postern.toml: unused parameter: myhostnme=typo.example\n`,
    );
    const n = await run("postconf", ["-n", "-c", dir]);
    expect(n.stdout).toBe("");
    expect(n.stderr).toBe(`postconf: warning: ${dir}/postern.toml: unused parameter: myhostnme=typo.example\n`);
  });

  test("an unknown option exits 64 with the usage on stderr", async () => {
    const r = await run("postconf", ["-Z"]);
    expect(r.code).toBe(64);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain("postconf: invalid option -- 'Z'");
    expect(r.stderr).toContain("usage: postconf");
  });

  test("a Postfix option postern does not have exits 64", async () => {
    const r = await run("postconf", ["-m"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("-m");
  });

  test("a missing -c argument exits 64", async () => {
    const r = await run("postconf", ["-c"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain("option requires an argument -- 'c'");
  });
});

describe("postconf: where the configuration comes from", () => {
  test("the default directory is /etc/postern", async () => {
    expect((await run("postconf", ["-h", "config_directory"])).stdout).toBe("/etc/postern\n");
  });

  test("-c DIR", async () => {
    const dir = conf(SAMPLE);
    expect((await run("postconf", ["-c", dir, "-h", "config_directory", "myhostname"])).stdout).toBe(`${dir}\nmail.example.com\n`);
  });

  test("MAIL_CONFIG, and -c wins over it", async () => {
    const dir = conf(SAMPLE);
    const other = conf('myhostname = "other.example"\n');
    expect((await run("postconf", ["-h", "myhostname", "config_directory"], { env: { MAIL_CONFIG: dir } })).stdout).toBe(`mail.example.com\n${dir}\n`);
    expect((await run("postconf", ["-c", other, "-h", "myhostname"], { env: { MAIL_CONFIG: dir } })).stdout).toBe("other.example\n");
  });

  test("-c path/to/postern.toml, and a file under another name", async () => {
    const dir = conf(SAMPLE);
    expect((await run("postconf", ["-c", join(dir, "postern.toml"), "-h", "myhostname", "config_directory"])).stdout).toBe(`mail.example.com\n${dir}\n`);
    writeFileSync(join(dir, "staging.toml"), 'myhostname = "staging.example"\n');
    expect((await run("postconf", ["-c", join(dir, "staging.toml"), "-h", "myhostname"])).stdout).toBe("staging.example\n");
  });

  test("a relative -c is taken from the current directory", async () => {
    const dir = conf(SAMPLE);
    const parent = join(dir, "..");
    const base = dir.slice(parent.length + 1);
    expect((await run("postconf", ["-c", base, "-h", "myhostname"], { cwd: parent })).stdout).toBe("mail.example.com\n");
  });

  test("a missing file means defaults, and a missing directory too", async () => {
    const r = await run("postconf", ["-c", "/nonexistent/postern-dir", "-h", "message_size_limit", "config_directory"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("10240000\n/nonexistent/postern-dir\n");
  });

  test("a TOML syntax error is fatal for postconf, with the file and line, exit 78", async () => {
    const dir = conf('myhostname = "ok"\nmydomain = \n');
    const r = await run("postconf", ["-c", dir, "-h", "myhostname"]);
    expect(r.code).toBe(78);
    expect(r.stderr).toStartWith(`postconf: fatal: ${dir}/postern.toml, line 2: TOML syntax error: `);
  });

  test("a bad value does not stop commands that do not need it", async () => {
    const dir = conf('myhostname = "mail.example.com"\nmessage_size_limit = "lots"\n');
    const r = await run("postconf", ["-c", dir, "-h", "myhostname"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("mail.example.com\n");
    expect(r.stderr).toBe("");
    // postconf shows what is written, as Postfix does
    expect((await run("postconf", ["-c", dir, "message_size_limit"])).stdout).toBe("message_size_limit = lots\n");
  });
});

describe("postconf: services", () => {
  test("services.NAME.ATTR reads the file and the built-in defaults", async () => {
    const dir = conf(SAMPLE);
    const r = await run("postconf", ["-c", dir, "services.smtp.listen", "services.smtp.role", "services.submission.listen", "services.submission.enable"]);
    expect(r.stdout).toBe("services.smtp.listen = 127.0.0.1:2525\nservices.smtp.role = smtpd\nservices.submission.listen = 587\nservices.submission.enable = no\n");
    expect((await run("postconf", ["-c", noFile(), "-h", "services.smtp.listen"])).stdout).toBe("25\n");
    expect((await run("postconf", ["-d", "-c", dir, "-h", "services.smtp.listen"])).stdout).toBe("25\n");
  });

  test("an unknown service or attribute warns", async () => {
    const r = await run("postconf", ["-c", noFile(), "services.nosuch.listen", "services.smtp.nosuch"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe("postconf: warning: services.nosuch.listen: unknown service attribute\npostconf: warning: services.smtp.nosuch: unknown service attribute\n");
  });

  test("-M lists the enabled services and their overrides", async () => {
    const dir = conf(SAMPLE + '\n[services.submission]\nlisten = "127.0.0.1:5870"\nsmtpd_tls_security_level = "may"\n');
    const r = await run("postconf", ["-M", "-c", dir]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split("\n");
    expect(lines.slice(0, 4)).toEqual([
      "services.smtp.listen = 127.0.0.1:2525",
      "services.smtp.role = smtpd",
      "services.smtp.process_limit = 100",
      "services.smtp.enable = yes",
    ]);
    expect(lines).toContain("services.submission.listen = 127.0.0.1:5870");
    expect(lines).toContain("services.submission.smtpd_tls_security_level = may");
    expect(lines).toContain("services.submission.smtpd_sasl_auth_enable = yes");
    expect(lines.some((l) => l.startsWith("services.smtps."))).toBe(false);
    const one = await run("postconf", ["-M", "-c", dir, "smtps"]);
    expect(one.stdout).toContain("services.smtps.enable = no\n");
  });

  test("a pipe service shows its role, argv, user, flags and size", async () => {
    const dir = conf('[services.mylist]\nrole = "pipe"\nuser = "nobody"\nflags = "FR"\nargv = "/usr/bin/list ${recipient}"\n');
    const r = await run("postconf", ["-M", "-c", dir, "mylist"]);
    expect(r.stdout).toBe("services.mylist.role = pipe\nservices.mylist.enable = yes\nservices.mylist.argv = /usr/bin/list ${recipient}\nservices.mylist.user = nobody\nservices.mylist.flags = FR\nservices.mylist.size = 0\n");
    expect((await run("postconf", ["-c", dir, "-h", "services.mylist.user"])).stdout).toBe("nobody\n");
  });

  test("-e services.smtp.listen edits the file and reads back", async () => {
    const dir = conf('myhostname = "mail.example.com"\n');
    expect((await run("postconf", ["-c", dir, "-e", "services.smtp.listen = 127.0.0.1:2525"])).code).toBe(0);
    expect((await run("postconf", ["-c", dir, "services.smtp.listen"])).stdout).toBe("services.smtp.listen = 127.0.0.1:2525\n");
    expect(readFileSync(join(dir, "postern.toml"), "utf8")).toBe('myhostname = "mail.example.com"\n\n[services.smtp]\nlisten = "127.0.0.1:2525"\n');
    expect((await run("postconf", ["-c", dir, "-e", "services.smtp.listen = 127.0.0.1:2526 [::1]:2526"])).code).toBe(0);
    expect((await run("postconf", ["-c", dir, "-h", "services.smtp.listen"])).stdout).toBe("127.0.0.1:2526, [::1]:2526\n");
  });
});

describe("postconf: editing", () => {
  for (const c of editCases()) {
    test(`golden case ${c.name}: postconf ${c.option} through the command link`, async () => {
      const dir = conf(c.input);
      const r = await run("postconf", ["-c", dir, c.option, ...c.args]);
      expect(r.code).toBe(0);
      expect(readFileSync(join(dir, "postern.toml"), "utf8")).toBe(c.expected);
    });
  }

  test("-e 'name = value' and -e name=value both work, and the value reads back", async () => {
    const dir = conf("");
    await run("postconf", ["-c", dir, "-e", "myhostname = a.example", "relayhost=[b.example]:587"]);
    expect((await run("postconf", ["-c", dir, "-h", "myhostname", "relayhost"])).stdout).toBe("a.example\n[b.example]:587\n");
  });

  test("-e creates postern.toml in an existing directory, keeping nothing else", async () => {
    const dir = noFile();
    expect((await run("postconf", ["-c", dir, "-e", "myhostname=new.example"])).code).toBe(0);
    expect(readFileSync(join(dir, "postern.toml"), "utf8")).toBe('myhostname = "new.example"\n');
  });

  test("-e keeps the file's mode", async () => {
    const dir = conf('myhostname = "a.example"\n');
    chmodSync(join(dir, "postern.toml"), 0o640);
    await run("postconf", ["-c", dir, "-e", "myhostname=b.example"]);
    expect(statSync(join(dir, "postern.toml")).mode & 0o777).toBe(0o640);
  });

  test("-e with an unknown name warns and still writes it", async () => {
    const dir = conf("");
    const r = await run("postconf", ["-c", dir, "-e", "myhostnme=typo"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("postconf: warning: myhostnme: unknown parameter\n");
    expect(readFileSync(join(dir, "postern.toml"), "utf8")).toBe('myhostnme = "typo"\n');
  });

  test("-e without '=' exits 64 and leaves the file alone", async () => {
    const dir = conf('myhostname = "a.example"\n');
    const r = await run("postconf", ["-c", dir, "-e", "myhostname"]);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain(`missing '=' after attribute name: "myhostname"`);
    expect(readFileSync(join(dir, "postern.toml"), "utf8")).toBe('myhostname = "a.example"\n');
  });

  test("an edit that would make the file invalid is refused and the file stays", async () => {
    const text = '[services]\nsmtp = { listen = "25" }\n';
    const dir = conf(text);
    const r = await run("postconf", ["-c", dir, "-e", "services.smtp.process_limit=3"]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("the edit would make the file invalid");
    expect(readFileSync(join(dir, "postern.toml"), "utf8")).toBe(text);
  });

  test("-X and -# remove and comment out, and the value falls back to its default", async () => {
    const dir = conf('message_size_limit = 5\nrelayhost = "[x.example]"\n');
    await run("postconf", ["-c", dir, "-X", "message_size_limit"]);
    await run("postconf", ["-c", dir, "-#", "relayhost"]);
    expect(readFileSync(join(dir, "postern.toml"), "utf8")).toBe('#relayhost = "[x.example]"\n');
    expect((await run("postconf", ["-c", dir, "-h", "message_size_limit", "relayhost"])).stdout).toBe("10240000\n\n");
  });

  test("-e with -n or -d, or two edit modes at once, are refused", async () => {
    for (const args of [["-e", "-n", "a=b"], ["-d", "-e", "a=b"], ["-e", "-X", "a"], ["-X", "-#", "a"]]) {
      const r = await run("postconf", ["-c", noFile(), ...args]);
      expect(r.code).toBe(64);
    }
  });

  test("-e into a directory that does not exist exits 73 (EX_CANTCREAT)", async () => {
    const r = await run("postconf", ["-c", "/nonexistent/postern-dir", "-e", "myhostname=x"]);
    expect(r.code).toBe(73);
    expect(existsSync("/nonexistent/postern-dir")).toBe(false);
  });

  test("no temporary files are left behind", async () => {
    const dir = conf("");
    await run("postconf", ["-c", dir, "-e", "myhostname=x.example", "relayhost=y"]);
    await run("postconf", ["-c", dir, "-X", "relayhost"]);
    expect(readdirSync(dir)).toEqual(["postern.toml"]);
  });
});

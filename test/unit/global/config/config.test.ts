import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig, loadConfig } from "../../../../src/global/config/config.ts";
import { ConfigError, locateConfig, readConfigSource } from "../../../../src/global/config/source.ts";
import { defaultHostname } from "../../../../src/global/config/host-defaults.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";
import { configMaker } from "../../../helpers/config.ts";

const root = tempDir("postern-config-unit-");
afterAll(() => removeDir(root));

const configFrom = configMaker(root);

/** The ConfigError `fn` throws. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

describe("locating the configuration", () => {
  test("a directory holds postern.toml", () => {
    expect(locateConfig("/srv/mail")).toEqual({ directory: "/srv/mail", path: "/srv/mail/postern.toml" });
  });

  test("a path to the file itself is accepted, existing or not", () => {
    const dir = join(root, "located");
    mkdirSync(dir);
    writeFileSync(join(dir, "custom.conf"), "");
    expect(locateConfig(join(dir, "custom.conf"))).toEqual({ directory: dir, path: join(dir, "custom.conf") });
    expect(locateConfig("/nonexistent/postern.toml")).toEqual({ directory: "/nonexistent", path: "/nonexistent/postern.toml" });
  });

  test("MAIL_CONFIG is used without an explicit directory, and an explicit one wins", () => {
    const saved = process.env.MAIL_CONFIG;
    try {
      process.env.MAIL_CONFIG = "/from/env";
      expect(locateConfig().directory).toBe("/from/env");
      expect(locateConfig("/explicit").directory).toBe("/explicit");
      delete process.env.MAIL_CONFIG;
      expect(locateConfig().directory).toBe("/etc/postern");
    } finally {
      if (saved === undefined) delete process.env.MAIL_CONFIG;
      else process.env.MAIL_CONFIG = saved;
    }
  });

  test("a missing file is an empty configuration: every parameter has its default", () => {
    const dir = join(root, "no-file-here");
    const source = readConfigSource(dir);
    expect(source.exists).toBe(false);
    expect(source.document).toEqual({});
    const config = loadConfig(dir);
    expect(config.setNames()).toEqual([]);
    expect(config.int("message_size_limit")).toBe(10240000);
    expect(config.str("config_directory")).toBe(dir);
    expect(config.validate()).toEqual([]);
  });

  test("a TOML syntax error names the file and the line", () => {
    const dir = join(root, "syntax");
    mkdirSync(dir);
    writeFileSync(join(dir, "postern.toml"), 'myhostname = "a"\n\n# comment\nmynetworks = [\n  "x",\n  "y"\nrelayhost = 1\n');
    const err = configError(() => loadConfig(dir));
    expect(err.file).toBe(join(dir, "postern.toml"));
    expect(err.line).toBe(7);
    expect(err.message).toStartWith(`${join(dir, "postern.toml")}, line 7: TOML syntax error: `);
  });

  test("a duplicate key is a syntax error on the second line", () => {
    const err = configError(() => configFrom("a = 1\nmyhostname = 'x'\nmyhostname = 'y'\n"));
    expect(err.line).toBe(3);
  });
});

describe("values and typed getters", () => {
  const config = configFrom(
    [
      'myhostname = "mail.example.com"', // 1
      "message_size_limit = 20000000", // 2
      "smtputf8_enable = false", // 3
      'allow_percent_hack = "no"', // 4
      'maximal_queue_lifetime = "2d"', // 5
      "minimal_backoff_time = 600", // 6
      "mydestination = [", // 7
      '  "$myhostname",', // 8
      '  "localhost",', // 9
      "]", // 10
      'relayhost = "[smtp.$mydomain]:587"', // 11
      'delay_warning_time = "4"', // 12
    ].join("\n"),
  );

  test("strings, TOML numbers and booleans read through the getters", () => {
    expect(config.str("myhostname")).toBe("mail.example.com");
    expect(config.int("message_size_limit")).toBe(20000000);
    expect(config.bool("smtputf8_enable")).toBe(false);
    expect(config.bool("allow_percent_hack")).toBe(false);
    expect(config.raw("smtputf8_enable")).toBe("no");
  });

  test("time values take units, a bare number the parameter's own unit", () => {
    expect(config.time("maximal_queue_lifetime")).toBe(2 * 86400);
    expect(config.time("minimal_backoff_time")).toBe(600);
    expect(config.time("delay_warning_time")).toBe(4 * 3600); // delay_warning_time's unit is hours
    expect(config.time("maximal_backoff_time")).toBe(4000); // default "4000s"
  });

  test("arrays are lists; $name in them expands", () => {
    expect(config.raw("mydestination")).toBe("$myhostname, localhost");
    expect(config.list("mydestination")).toEqual(["mail.example.com", "localhost"]);
  });

  test("computed defaults follow the file: mydomain from myhostname", () => {
    expect(config.isSet("mydomain")).toBe(false);
    expect(config.str("mydomain")).toBe("example.com");
    expect(config.str("relayhost")).toBe("[smtp.example.com]:587");
    expect(config.str("myorigin")).toBe("mail.example.com");
  });

  test("defaults without a file: myhostname is the host's name, mydomain its domain", () => {
    const d = defaultsOnlyConfig();
    expect(d.str("myhostname")).toBe(defaultHostname());
    expect(d.str("myhostname")).toContain(".");
    expect(d.str("mydomain")).toBe(d.str("myhostname").slice(d.str("myhostname").indexOf(".") + 1));
    expect(d.str("config_directory")).toBe("/etc/postern");
  });

  test("lines of values are known, names set in the file listed sorted", () => {
    expect(config.lineOf("mydestination")).toBe(7);
    expect(config.lineOf("relayhost")).toBe(11);
    expect(config.setNames()).toEqual([...config.setNames()].sort());
    expect(config.setNames()).toContain("delay_warning_time");
  });

  test("unknown names read as the empty string", () => {
    expect(config.str("no_such_parameter")).toBe("");
    expect(config.raw("no_such_parameter")).toBeUndefined();
  });

  test("raw parameters (expanded later by local delivery) are read unexpanded", () => {
    const c = configFrom('mailbox_command = "/usr/bin/procmail -a $EXTENSION"\n');
    expect(c.str("mailbox_command")).toBe("/usr/bin/procmail -a $EXTENSION");
    expect(c.str("forward_path")).toBe("$home/.forward${recipient_delimiter}${extension}, $home/.forward");
  });

  test("withOverrides sets values on a copy and keeps earlier overrides", () => {
    const a = config.withOverrides({ compatibility_level: "0" });
    const b = a.withOverrides({ myhostname: "other.example.net" });
    expect(b.str("compatibility_level")).toBe("0");
    expect(b.str("mynetworks_style")).toBe("subnet");
    expect(b.str("mydomain")).toBe("example.net");
    expect(config.str("myhostname")).toBe("mail.example.com");
    expect(config.str("mynetworks_style")).toBe("host");
  });

  test("undefined names inside values are reported to a listener", () => {
    const c = configFrom('smtpd_banner = "$myhostname $not_a_parameter"\n');
    const heard: string[] = [];
    c.onUndefinedName((n) => heard.push(n));
    expect(c.str("smtpd_banner")).toBe(`${c.str("myhostname")} `);
    expect(heard).toEqual(["not_a_parameter"]);
  });
});

describe("bad values name the parameter, the file and the line", () => {
  const text = [
    'myhostname = "mail.example.com"', // 1
    'message_size_limit = "lots"', // 2
    "", // 3
    'smtputf8_enable = "maybe"', // 4
    'maximal_queue_lifetime = "5x"', // 5
    "header_size_limit = -1", // 6
    "line_length_limit = 1.5", // 7
    'relayhost = "$a_loop"', // 8
    "local_transport = { x = 1 }", // 9
  ].join("\n");
  const config = configFrom(text);
  const file = config.path;

  test("integer", () => {
    const err = configError(() => config.int("message_size_limit"));
    expect(err.message).toBe(`${file}, line 2: message_size_limit: invalid integer value "lots"`);
    expect(configError(() => config.int("header_size_limit")).message).toBe(`${file}, line 6: header_size_limit: invalid integer value "-1"`);
    expect(configError(() => config.int("line_length_limit")).line).toBe(7);
  });

  test("boolean", () => {
    expect(configError(() => config.bool("smtputf8_enable")).message).toBe(
      `${file}, line 4: smtputf8_enable: invalid boolean value "maybe" (use yes or no)`,
    );
  });

  test("time", () => {
    const err = configError(() => config.time("maximal_queue_lifetime"));
    expect(err.file).toBe(file);
    expect(err.line).toBe(5);
    expect(err.message).toContain('maximal_queue_lifetime: invalid time value "5x"');
  });

  test("a value that is not a string, number, boolean or array", () => {
    const problem = config.validate().find((p) => p.message.includes("local_transport"));
    expect(problem?.line).toBe(9);
  });

  test("other values still read: a command that does not need a bad value works", () => {
    expect(config.str("myhostname")).toBe("mail.example.com");
    expect(config.int("hopcount_limit")).toBe(50);
  });

  test("validate() reports every problem with its line", () => {
    const lines = config.validate().map((p) => p.line).sort((a, b) => a! - b!);
    expect(lines).toEqual([2, 4, 5, 6, 7, 9]);
  });

  test("a recursion names the parameter where it was read", () => {
    const c = configFrom('myorigin = "$mydestination"\nmydestination = "$myorigin, localhost"\n');
    const err = configError(() => c.str("myorigin"));
    expect(err.message).toBe(`${c.path}, line 1: myorigin: recursive parameter expansion: $myorigin -> $mydestination -> $myorigin`);
  });

  test("a loop through a computed default is reported, not followed forever", () => {
    const c = configFrom('myhostname = "host.$mydomain"\n');
    expect(() => c.str("mydomain")).toThrow("recursive parameter expansion");
  });

  test("a bad value given with -o names no file", () => {
    const err = configError(() => configFrom("").withOverrides({ message_size_limit: "big" }).int("message_size_limit"));
    expect(err.file).toBeUndefined();
    expect(err.message).toBe('message_size_limit: invalid integer value "big"');
  });

  test("a service override is checked as the parameter it overrides, named as written", () => {
    const c = configFrom('[services.smtp]\nlisten = "2525"\nmessage_size_limit = "huge"\n');
    const problems = c.validate();
    expect(problems.map((p) => p.message)).toEqual([`${c.path}, line 3: services.smtp.message_size_limit: invalid integer value "huge"`]);
  });

  test("unknown names in the file and in service overrides are listed", () => {
    const c = configFrom('myhostnme = "typo"\n[services.smtp]\nlisten = "25"\nsmtpd_bogus = 1\n');
    expect(c.unknownNames()).toEqual(["myhostnme", "services.smtp.smtpd_bogus"]);
    expect(c.validate()).toEqual([]);
  });
});

describe("expanded values are remembered (issue 16)", () => {
  test("a parameter is expanded once per configuration, and a view with overrides expands its own", () => {
    const config = configFrom('myhostname = "mail.example.com"\nmyorigin = "$myhostname"\n');
    let expansions = 0;
    const counted = config.withOverrides({ myhostname: "other.example.com" });
    // the undefined-name report runs on every expansion of a name nobody defines: count through it
    const probe = configFrom('relayhost = "$no_such_parameter"\n');
    probe.onUndefinedName(() => expansions++);
    expect(probe.str("relayhost")).toBe("");
    expect(probe.str("relayhost")).toBe("");
    expect(expansions).toBe(1);
    expect(config.str("myorigin")).toBe("mail.example.com");
    expect(counted.str("myorigin")).toBe("other.example.com");
    expect(config.str("myorigin")).toBe("mail.example.com");
  });

  test("a value whose expansion fails fails every time", () => {
    const config = configFrom('myorigin = "${myhostname"\n');
    expect(() => config.str("myorigin")).toThrow();
    expect(() => config.str("myorigin")).toThrow();
  });
});

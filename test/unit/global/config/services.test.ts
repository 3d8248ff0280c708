import { afterAll, describe, expect, test } from "bun:test";
import type { Config } from "../../../../src/global/config/config.ts";
import { isListenAddress, smtpdProcessPlan, type ServiceDef } from "../../../../src/global/config/services.ts";
import { removeDir, tempDir } from "../../../helpers/run.ts";
import { configMaker } from "../../../helpers/config.ts";

const root = tempDir("postern-services-unit-");
afterAll(() => removeDir(root));

const configFrom = configMaker(root);

function service(config: Config, name: string): ServiceDef {
  const svc = config.services().find((s) => s.name === name);
  if (!svc) throw new Error(`no service ${name}`);
  return svc;
}

describe("built-in services", () => {
  const config = configFrom("");

  test("smtp is enabled on port 25 of $inet_interfaces", () => {
    expect(service(config, "smtp")).toMatchObject({ role: "smtpd", listen: ["25"], enabled: true, configured: false, processLimit: undefined });
  });

  test("submission and smtps are known but disabled until their table exists", () => {
    expect(service(config, "submission")).toMatchObject({ listen: ["587"], enabled: false, configured: false });
    expect(service(config, "smtps")).toMatchObject({ listen: ["465"], enabled: false, configured: false });
    expect(service(config, "submission").overrides.get("smtpd_tls_security_level")?.text).toBe("encrypt");
    expect(service(config, "smtps").overrides.get("smtpd_tls_wrappermode")?.text).toBe("yes");
  });

  test("there are no problems and no unknown names", () => {
    expect(config.validate()).toEqual([]);
    expect(config.unknownNames()).toEqual([]);
  });
});

describe("services from the file", () => {
  const config = configFrom(
    [
      "[services.smtp]", // 1
      'listen = ["127.0.0.1:2525", "[::1]:2525"]', // 2
      "process_limit = 10", // 3
      'smtpd_banner = "$myhostname ready"', // 4
      "", // 5
      "[services.submission]", // 6
      'listen = "127.0.0.1:5870"', // 7
      'smtpd_tls_security_level = "may"', // 8
      "", // 9
      "[services.smtps]", // 10
      "enable = false", // 11
      "", // 12
      "[services.extra]", // 13
      "listen = 2526", // 14
      'role = "smtpd"', // 15
    ].join("\n"),
  );

  test("listen as a list, a process limit and a parameter override", () => {
    const smtp = service(config, "smtp");
    expect(smtp.listen).toEqual(["127.0.0.1:2525", "[::1]:2525"]);
    expect(smtp.processLimit).toBe(10);
    expect(smtp.overrides.get("smtpd_banner")).toEqual({ text: "$myhostname ready", line: 4 });
    expect(smtp.configured).toBe(true);
  });

  test("a table enables submission; its own override replaces the built-in one, the others stay", () => {
    const sub = service(config, "submission");
    expect(sub.enabled).toBe(true);
    expect(sub.listen).toEqual(["127.0.0.1:5870"]);
    expect(sub.overrides.get("smtpd_tls_security_level")?.text).toBe("may");
    expect(sub.overrides.get("smtpd_sasl_auth_enable")?.text).toBe("yes");
    expect(sub.builtinOverrides.has("smtpd_tls_security_level")).toBe(false);
    expect(sub.builtinOverrides.has("smtpd_sasl_auth_enable")).toBe(true);
  });

  test("enable = false keeps a configured service off; its built-in listen stays", () => {
    expect(service(config, "smtps")).toMatchObject({ enabled: false, configured: true, listen: ["465"] });
  });

  test("a new service: a bare port number as listen", () => {
    expect(service(config, "extra")).toMatchObject({ enabled: true, role: "smtpd", listen: ["2526"], line: 13 });
  });

  test("the whole file is valid", () => {
    expect(config.validate()).toEqual([]);
  });

  test("an override applies to the service's view of the configuration", () => {
    const smtp = service(config, "smtp");
    const view = config.withOverrides(smtp.overrides);
    expect(view.str("smtpd_banner")).toBe(`${config.str("myhostname")} ready`);
    expect(config.str("smtpd_banner")).toBe(`${config.str("myhostname")} ESMTP postern`);
  });
});

describe("bad services name the file and the line", () => {
  test("an unknown role", () => {
    const c = configFrom('[services.smtp]\nlisten = "25"\nrole = "local"\n');
    expect(c.validate().map((p) => p.message)).toEqual([`${c.path}, line 3: services.smtp.role: unknown service role "local" (known: smtpd, pipe)`]);
  });

  test("bad listen addresses", () => {
    const c = configFrom('[services.smtp]\n\nlisten = ["127.0.0.1:99999", "host name:25", "0"]\n');
    const problems = c.validate();
    expect(problems).toHaveLength(3);
    for (const p of problems) {
      expect(p.line).toBe(3);
      expect(p.message).toContain("services.smtp.listen: invalid address");
    }
    expect(problems[0]!.message).toContain('"127.0.0.1:99999"');
  });

  test("an empty listen list; a new service without listen at all names its table's line", () => {
    const c = configFrom('[services.smtp]\nlisten = []\n\n[services.other]\nprocess_limit = 2\n');
    expect(c.validate().map((p) => [p.line, p.detail])).toEqual([
      [2, "services.smtp.listen: no listen address"],
      [4, "services.other.listen: no listen address"],
    ]);
  });

  test("a bad process_limit", () => {
    for (const bad of ['"many"', "-1", "1.5"]) {
      const c = configFrom(`[services.smtp]\nlisten = "25"\nprocess_limit = ${bad}\n`);
      const problems = c.validate();
      expect(problems).toHaveLength(1);
      expect(problems[0]!.line).toBe(3);
      expect(problems[0]!.detail).toStartWith("services.smtp.process_limit: invalid integer value");
    }
  });

  test("a bad enable", () => {
    const c = configFrom('[services.submission]\nenable = "perhaps"\n');
    expect(c.validate().map((p) => [p.line, p.detail])).toEqual([[2, 'services.submission.enable: invalid boolean value "perhaps"']]);
  });

  test("services that are not tables", () => {
    const a = configFrom("services = 5\n");
    expect(a.validate().map((p) => p.line)).toEqual([1]);
    const b = configFrom("[services]\nsmtp = 5\n");
    expect(b.validate().map((p) => [p.line, p.detail])).toEqual([[2, "services.smtp: must be a table"]]);
  });

  test("a value no parameter can hold", () => {
    const c = configFrom('[services.smtp]\nlisten = "25"\nsmtpd_banner = { a = 1 }\n');
    expect(c.validate().map((p) => [p.line, p.detail])).toEqual([[3, "services.smtp.smtpd_banner: must be a string, number, boolean or array"]]);
  });
});

describe("isListenAddress", () => {
  test("accepted forms", () => {
    for (const ok of ["25", "127.0.0.1:2525", "[::1]:25", "[2001:db8::1]:587", "localhost:25", "mail.example.com:65535"]) expect(isListenAddress(ok)).toBe(true);
  });

  test("rejected forms", () => {
    for (const bad of ["", "0", "65536", "host", "127.0.0.1:", ":25", "::1:25", "[::1]", "a b:25", "127.0.0.1:25x", "123456"]) expect(isListenAddress(bad)).toBe(false);
  });
});

describe("smtpd processes and sessions for a process_limit", () => {
  test("one process per service, admitting the whole process_limit; 0 is no limit", () => {
    expect(smtpdProcessPlan(1)).toEqual({ processes: 1, sessionsPerProcess: 1 });
    expect(smtpdProcessPlan(100)).toEqual({ processes: 1, sessionsPerProcess: 100 });
    expect(smtpdProcessPlan(1000)).toEqual({ processes: 1, sessionsPerProcess: 1000 });
    expect(smtpdProcessPlan(0)).toEqual({ processes: 1, sessionsPerProcess: 0 });
  });
});

describe("pipe services", () => {
  test("role = \"pipe\" with argv, user, flags and size: no listen address, the attributes parsed, mylist_destination_recipient_limit known", () => {
    const c = configFrom('mylist_destination_recipient_limit = 1\n[services.mylist]\nrole = "pipe"\nflags = "FR"\nuser = "nobody"\nsize = 1000\nargv = "/usr/bin/list -f ${sender} ${recipient}"\n');
    expect(c.validate()).toEqual([]);
    expect(c.unknownNames()).toEqual([]);
    expect(service(c, "mylist")).toMatchObject({ role: "pipe", listen: [], enabled: true, pipe: { argv: ["/usr/bin/list", "-f", "${sender}", "${recipient}"], user: "nobody", flags: "FR", size: 1000, nullSender: "MAILER-DAEMON", eol: "\n" } });
  });

  test("a pipe service as root, without argv, or a pipe attribute on an smtpd service is refused", () => {
    const root = configFrom('[services.bad]\nrole = "pipe"\nuser = "root"\nargv = "/bin/x"\n');
    expect(root.validate().map((p) => p.detail)).toEqual(["services.bad: user= command-line attribute specifies root privileges (root); name another user"]);
    const noArgv = configFrom('[services.bad]\nrole = "pipe"\nuser = "nobody"\n');
    expect(noArgv.validate().map((p) => p.detail)).toEqual(["services.bad: missing argv command"]);
    const smtpd = configFrom('[services.smtp]\nlisten = "2525"\nargv = "/bin/x"\n');
    expect(smtpd.validate().map((p) => p.detail)).toEqual(['services.smtp.argv: only a pipe service (role = "pipe") takes argv']);
    for (const name of ["smtp", "local", "virtual", "relay"]) {
      const shadow = configFrom(`[services.${name}]\nrole = "pipe"\nuser = "nobody"\nargv = "/bin/x"\n`);
      expect(shadow.validate().map((p) => p.detail)).toEqual([`services.${name}.role: "${name}" is a built-in transport or service of postern; give the pipe service another name`]);
    }
    const later = configFrom('[services.p]\nrole = "pipe"\nuser = "nobody"\nargv = "/bin/x"\nrecipient_delimiter = "+"\nprocess_limit = 3\n');
    expect(later.validate().map((p) => p.detail)).toEqual([
      "services.p.recipient_delimiter: a pipe service takes no parameter overrides in postern yet; set the parameter globally",
      "services.p.process_limit: set p_process_limit instead (the queue manager's limit for this transport)",
    ]);
  });

  test("a user= that names no user or group of this machine is refused, as pipe(8) refuses to start", () => {
    const user = configFrom('[services.bad]\nrole = "pipe"\nuser = "no-such-user-here"\nargv = "/bin/x"\n');
    expect(user.validate().map((p) => [p.line, p.detail])).toEqual([[1, 'services.bad.user = "no-such-user-here": unknown username: no-such-user-here; name an existing user other than root']]);
    const group = configFrom('[services.bad]\nrole = "pipe"\nuser = "nobody:no-such-group-here"\nargv = "/bin/x"\n');
    expect(group.validate().map((p) => p.detail)).toEqual(['services.bad.user = "nobody:no-such-group-here": unknown group: no-such-group-here; name an existing user other than root']);
    // a disabled service is not checked
    const off = configFrom('[services.bad]\nrole = "pipe"\nenable = false\nuser = "no-such-user-here"\nargv = "/bin/x"\n');
    expect(off.validate()).toEqual([]);
  });

  test("NAME_time_limit is read for a pipe service: known, checked as a time of at least 1s, not refused for Postfix's stock names", () => {
    const ok = configFrom('mylist_time_limit = "30s"\n[services.mylist]\nrole = "pipe"\nuser = "nobody"\nargv = "/bin/x"\n');
    expect(ok.validate()).toEqual([]);
    expect(ok.unknownNames()).toEqual([]);
    // mailman_time_limit is a Postfix parameter (stock master.cf); with a pipe service mailman it is acted on
    const stock = configFrom('mailman_time_limit = "60s"\n[services.mailman]\nrole = "pipe"\nuser = "nobody"\nargv = "/bin/x"\n');
    expect(stock.validate()).toEqual([]);
    const bad = configFrom('mylist_time_limit = "soon"\n[services.mylist]\nrole = "pipe"\nuser = "nobody"\nargv = "/bin/x"\n');
    expect(bad.validate().map((p) => p.detail)).toEqual(['mylist_time_limit: invalid time value "soon" (a number with an optional unit s, m, h, d or w)']);
    const zero = configFrom('mylist_time_limit = "0"\n[services.mylist]\nrole = "pipe"\nuser = "nobody"\nargv = "/bin/x"\n');
    expect(zero.validate().map((p) => p.detail)).toEqual(['mylist_time_limit = "0": the time limit must be at least 1s']);
  });
});

/**
 * Small things a Postfix user expects (issue 11, part 4): `postern -c DIR
 * COMMAND`, postconf pointed at Postfix's files, and postconf -M / -P
 * showing an imported master.cf. (The DATA size reply and the table stat
 * per lookup are tested in test/e2e/smtpd/smtpd.test.ts and
 * test/unit/global/tables/hash-table.test.ts.)
 */
import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { configDir, removeDir, run, tempDir } from "../helpers/run.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));
function keep(d: string): string {
  dirs.push(d);
  return d;
}

describe("postern -c DIR COMMAND", () => {
  test("the global option reaches the command as its own -c would", async () => {
    const dir = keep(configDir('myhostname = "global.example.test"\n'));
    const global = await run("postern", ["-c", dir, "postconf", "-h", "myhostname"]);
    const own = await run("postern", ["postconf", "-c", dir, "-h", "myhostname"]);
    expect(global.stdout).toBe("global.example.test\n");
    expect(global.stdout).toBe(own.stdout);
    expect((await run("postern", [`-c${dir}`, "postconf", "-h", "myhostname"])).stdout).toBe("global.example.test\n");
  });

  test("for the control commands and the daemon's check too", async () => {
    const dir = keep(configDir('error_notice_recipient = "admin@example.com"\n'));
    const r = await run("postern", ["-c", dir, "check"]);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`${dir}/postern.toml, line 1: error_notice_recipient`);
  });

  test("-c without a directory is a usage error", async () => {
    expect((await run("postern", ["-c"])).code).toBe(64);
  });
});

describe("postconf pointed at Postfix's configuration", () => {
  test("a directory with main.cf and no postern.toml, or main.cf itself: says to run postern import", async () => {
    const pf = keep(tempDir("postern-postfix-"));
    writeFileSync(join(pf, "main.cf"), "myhostname = mail.example.test\n");
    const dir = await run("postconf", ["-c", pf, "-n"]);
    expect(dir.code).toBe(78);
    expect(dir.stderr).toBe(`postconf: fatal: ${pf}/postern.toml: no postern.toml here, but Postfix's main.cf: postern's configuration file is postern.toml; convert Postfix's main.cf and master.cf with "postern import ${pf}"\n`);
    const file = await run("postconf", ["-c", join(pf, "main.cf")]);
    expect(file.code).toBe(78);
    expect(file.stderr).toContain(`${pf}/main.cf: this is Postfix's main.cf: postern's configuration file is postern.toml`);
    expect(file.stderr).not.toContain("TOML syntax error");
  });
});

describe("postconf shows an imported configuration", () => {
  test("-n the main.cf settings, -M the services, -P their overrides", async () => {
    const pf = keep(tempDir("postern-postfix-"));
    writeFileSync(join(pf, "main.cf"), "biff = no\nmyhostname = mail.example.test\n");
    writeFileSync(join(pf, "master.cf"), "smtp inet n - y - - smtpd\nsubmission inet n - y - - smtpd\n  -o syslog_name=postfix/$service_name\n  -o smtpd_tls_security_level=encrypt\n  -o smtpd_sasl_auth_enable=yes\n");
    const conf = keep(tempDir("postern-conf-"));
    expect((await run("postern", ["import", "-c", conf, pf])).code).toBe(0);
    const n = await run("postconf", ["-c", conf, "-n"]);
    expect(n.stdout).toBe("biff = no\nmyhostname = mail.example.test\n");
    expect(n.stderr).toBe("");
    const m = await run("postconf", ["-c", conf, "-M"]);
    expect(m.stdout).toContain("services.submission.listen = 587\n");
    const p = await run("postconf", ["-c", conf, "-P"]);
    expect(p.stdout).toContain("submission/inet/syslog_name = postfix/submission\nsubmission/inet/smtpd_tls_security_level = encrypt\nsubmission/inet/smtpd_sasl_auth_enable = yes\n");
    const one = await run("postconf", ["-c", conf, "-P", "submission/inet/syslog_name"]);
    expect(one.stdout).toBe("submission/inet/syslog_name = postfix/submission\n");
  });
});

/**
 * postern's postconf against Debian's Postfix 3.7 postconf, side by side:
 * both read a configuration that sets nothing (an empty main.cf and
 * master.cf for Postfix, no postern.toml for postern), and their -d, -h and
 * -x answers must agree wherever postern means to keep Postfix's default.
 * The differences postern intends are listed below, each with its reason;
 * docs/postconf-vs-postfix.md records the findings.
 *
 * Without /usr/sbin/postconf the comparison is skipped, except in CI
 * (CI is set), where .ci/run installs postfix and a missing one is a failure.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cleanEnv, removeDir, run, tempDir } from "../helpers/run.ts";

const POSTFIX_POSTCONF = "/usr/sbin/postconf";
const havePostfix = existsSync(POSTFIX_POSTCONF);
if (!havePostfix && !process.env.CI) {
  console.warn(`postconf-vs-postfix: ${POSTFIX_POSTCONF} is missing; skipping the comparison (apt-get install postfix, or run .ci/run)`);
}

/** The parameters issue 2 names for the comparison: each must be compared, not excused. */
const NAMED = [
  "myorigin", "mydestination", "mydomain", "myhostname", "mynetworks_style", "mynetworks", "relay_domains", "relayhost",
  "inet_interfaces", "inet_protocols", "default_privs", "mail_spool_directory", "home_mailbox", "mailbox_command",
  "recipient_delimiter", "message_size_limit", "syslog_name", "syslog_facility", "maillog_file", "line_length_limit",
  "header_size_limit", "maximal_queue_lifetime", "minimal_backoff_time", "smtpd_banner", "alias_database",
  "append_dot_mydomain", "smtputf8_enable", "forward_path",
];

/**
 * Where postern's default differs from Postfix's on purpose. `d`: the
 * unexpanded default differs; `x`: only the expanded value differs (because
 * another default it refers to does).
 */
const INTENDED: Record<string, { d: boolean; why: string }> = {
  config_directory: { d: true, why: "postern's own /etc/postern (postern.toml), so both can be installed side by side" },
  queue_directory: { d: true, why: "postern's own /var/spool/postern: the queue file format is postern's" },
  data_directory: { d: true, why: "postern's own /var/lib/postern" },
  daemon_directory: { d: true, why: "one executable: there are no daemon programs to find" },
  mail_owner: { d: true, why: "a postern system user, not Postfix's" },
  mail_name: { d: true, why: "the software's name in the greeting and Received: headers" },
  mail_version: { d: true, why: "postern's version" },
  compatibility_level: { d: true, why: "postern starts at 3.7's safe defaults; Postfix's built-in level is 0 (Debian's main.cf sets 3.6)" },
  alias_maps: { d: true, why: "no NIS: hash:/etc/aliases only (Postfix adds nis:mail.aliases)" },
  local_recipient_maps: { d: true, why: "no proxymap process: unix:passwd.byname is read directly (Postfix: proxy:unix:passwd.byname)" },
  // computed from compatibility_level:
  mynetworks_style: { d: false, why: "host at compatibility_level >= 2 (postern 3.7), subnet below (Postfix 0)" },
  mynetworks: { d: true, why: "computed (not a $name text) from mynetworks_style: host addresses instead of subnets" },
  relay_domains: { d: false, why: "empty at compatibility_level >= 2, $mydestination below" },
  append_dot_mydomain: { d: false, why: "no at compatibility_level >= 1" },
  smtputf8_enable: { d: false, why: "yes at compatibility_level >= 1" },
  // refers to mail_name:
  smtpd_banner: { d: false, why: "$mail_name is postern" },
  milter_macro_v: { d: false, why: "$mail_name $mail_version: postern and its version" },
  // the SMTP server (issue 5):
  smtpd_forbid_bare_newline: { d: true, why: "Postfix 3.9's default, normalize: only <CR><LF>.<CR><LF> ends DATA (SMTP smuggling)" },
  smtpd_forbid_unauth_pipelining: { d: true, why: "Postfix 3.9's default, yes: clients that pipeline where RFC 2920 forbids it are disconnected" },
  smtpd_sasl_type: { d: true, why: "postern has no Cyrus SASL: the built-in backend (argon2/bcrypt users table) is the default" },
  smtpd_tls_protocols: { d: true, why: "modern default: TLS 1.2 and later" },
  smtpd_tls_mandatory_protocols: { d: true, why: "modern default: TLS 1.2 and later" },
  smtpd_relay_restrictions: { d: false, why: "computed from compatibility_level: the relay restrictions at >= 1, empty below" },
  fast_flush_domains: { d: false, why: "refers to relay_domains" },
  smtpd_client_event_limit_exceptions: { d: false, why: "refers to mynetworks" },
  smtpd_forbid_bare_newline_exclusions: { d: false, why: "refers to mynetworks" },
};

const cleanup: string[] = [];
afterAll(() => cleanup.forEach(removeDir));

let postfixDir: string | undefined;
/** Postfix's configuration directory: an empty main.cf and master.cf. */
function postfixConfig(): string {
  if (postfixDir) return postfixDir;
  postfixDir = tempDir("postfix-conf-");
  cleanup.push(postfixDir);
  // Postfix waits (about 2 s) before reading a main.cf modified within the last
  // second, in case an editor is still writing it: date the files an hour back.
  const past = new Date(Date.now() - 3600_000);
  for (const file of ["main.cf", "master.cf"]) {
    writeFileSync(join(postfixDir, file), "");
    utimesSync(join(postfixDir, file), past, past);
  }
  return postfixDir;
}

let posternDir: string | undefined;
/** postern's: a directory without postern.toml. */
function posternConfig(): string {
  if (posternDir) return posternDir;
  posternDir = tempDir("postern-empty-");
  cleanup.push(posternDir);
  return posternDir;
}

async function postfix(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const proc = Bun.spawn([POSTFIX_POSTCONF, ...args], { env: cleanEnv(), stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** name -> value from `name = value` lines. */
function parseLines(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n").filter(Boolean)) {
    const m = /^(\S+) =(?: (.*))?$/.exec(line);
    if (!m) throw new Error(`not a "name = value" line: ${line}`);
    out.set(m[1]!, m[2] ?? "");
  }
  return out;
}

/** Runs both with the same arguments for `names`; returns their answers by name. */
async function both(flags: string[], names: string[]) {
  const pf = await postfix(["-c", postfixConfig(), ...flags, ...names]);
  const pt = await run("postconf", ["-c", posternConfig(), ...flags, ...names]);
  expect(pf.code).toBe(0);
  expect(pt.code).toBe(0);
  return { postfix: pf, postern: pt };
}

describe.skipIf(!havePostfix && !process.env.CI)("postconf compared with Debian's Postfix 3.7", () => {
  test("Debian's postconf is installed (CI installs postfix)", async () => {
    expect(havePostfix).toBe(true);
    const v = await postfix(["-d", "mail_version"]);
    expect(v.stdout).toMatch(/^mail_version = 3\.7\./);
  });

  // the parameters postern shares with Postfix: those Postfix's postconf -d knows
  let shared: string[] = [];
  beforeAll(async () => {
    if (!havePostfix) return;
    // postern's parameter names, from the binary under test
    const names = (await run("postconf", ["-H", "-c", posternConfig()])).stdout.split("\n").filter(Boolean);
    const pf = await postfix(["-c", postfixConfig(), "-d", ...names]);
    shared = [...parseLines(pf.stdout).keys()].sort();
  });

  test("the shared parameters include every one the issue names and every intended difference", () => {
    expect(shared.length).toBeGreaterThanOrEqual(20);
    for (const name of NAMED) expect(shared).toContain(name);
    for (const name of Object.keys(INTENDED)) expect(shared).toContain(name);
  });

  test("the intended differences really differ (the list is not stale)", async () => {
    const names = Object.keys(INTENDED);
    const d = await both(["-d"], names);
    const x = await both(["-x"], names);
    const [pfD, ptD, pfX, ptX] = [d.postfix, d.postern, x.postfix, x.postern].map((r) => parseLines(r.stdout));
    for (const name of names) {
      expect({ name, differs: pfX!.get(name) !== ptX!.get(name) }).toEqual({ name, differs: true });
      expect({ name, unexpandedDiffers: pfD!.get(name) !== ptD!.get(name) }).toEqual({ name, unexpandedDiffers: INTENDED[name]!.d });
    }
  });

  for (const [flags, label] of [[["-d"], "-d (defaults)"], [[], "no flag (the file's values)"], [["-x"], "-x (expanded)"], [["-dx"], "-dx"]] as const) {
    test(`${label}: every shared parameter outside the intended differences prints the same line`, async () => {
      expect(shared.length).toBeGreaterThan(0);
      const expands = flags.some((f) => f.includes("x"));
      const names = shared.filter((n) => !INTENDED[n] || (!expands && !INTENDED[n].d));
      const r = await both([...flags], names);
      expect(r.postern.stderr).toBe("");
      const pf = r.postfix.stdout.split("\n");
      const pt = r.postern.stdout.split("\n");
      expect(pt).toEqual(pf);
    });
  }

  test("-h: the named parameters' values, one a line, in the order asked", async () => {
    const names = NAMED.filter((n) => !INTENDED[n]);
    expect(names.length).toBeGreaterThanOrEqual(20);
    const r = await both(["-h"], names);
    expect(r.postern.stdout).toBe(r.postfix.stdout);
    expect(r.postern.stdout.split("\n").length).toBe(names.length + 1);
  });

  test("-hx: expanded values, including the computed myhostname, mydomain and mydestination", async () => {
    const names = NAMED.filter((n) => !INTENDED[n]);
    const r = await both(["-hx"], names);
    expect(r.postern.stdout).toBe(r.postfix.stdout);
  });

  test("with the same compatibility_level, the level-dependent defaults agree", async () => {
    for (const level of ["0", "1", "2", "3.6", "3.7"]) {
      const names = ["mynetworks_style", "mynetworks", "relay_domains", "append_dot_mydomain", "smtputf8_enable", "compatibility_level"];
      const r = await both(["-o", `compatibility_level=${level}`, "-x"], names);
      expect(r.postern.stdout).toBe(r.postfix.stdout);
    }
  });

  test("smtpd_banner differs only by mail_name", async () => {
    const r = await both(["-hx"], ["smtpd_banner"]);
    expect(r.postern.stdout.replace(/ postern$/m, " Postfix")).toBe(r.postfix.stdout);
    const same = await both(["-o", "mail_name=Postfix", "-hx"], ["smtpd_banner"]);
    expect(same.postern.stdout).toBe(same.postfix.stdout);
  });

  test("a value set with -o expands the same way in both", async () => {
    const r = await both(["-o", "myhostname=mx1.example.org", "-x"], ["myhostname", "mydomain", "myorigin", "mydestination"]);
    expect(r.postern.stdout).toBe(r.postfix.stdout);
    expect(r.postern.stdout).toContain("mydestination = mx1.example.org, localhost.example.org, localhost\n");
  });

  test("unknown names: the same warning text, exit 0", async () => {
    const r = await both([], ["no_such_parameter_xyz"]);
    expect(r.postern.stdout).toBe(r.postfix.stdout);
    expect(r.postern.stderr).toBe("postconf: warning: no_such_parameter_xyz: unknown parameter\n");
    expect(r.postfix.stderr).toBe(`${POSTFIX_POSTCONF}: warning: no_such_parameter_xyz: unknown parameter\n`);
  });

  test("an unknown option: both refuse with getopt's message", async () => {
    const pf = await postfix(["-Z"]);
    const pt = await run("postconf", ["-Z"]);
    expect(pf.code).not.toBe(0);
    expect(pt.code).toBe(64);
    expect(pf.stderr).toContain("invalid option -- 'Z'");
    expect(pt.stderr).toContain("invalid option -- 'Z'");
  });
});

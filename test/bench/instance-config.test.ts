/**
 * The benchmark harness's config generators (bench/lib): the private
 * Postfix's main.cf and master.cf are accepted by Debian's postconf without
 * a warning and say what the harness relies on (private queue, loopback
 * only, no DNS, Maildir delivery, smtpd on a high port), and the private
 * postern's postern.toml is accepted by postern's own postconf. These run
 * no benchmark and assert no time.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { postfixMainCf, postfixMasterCf } from "../../bench/lib/postfix.ts";
import { posternKnowsParameter, posternToml } from "../../bench/lib/postern.ts";
import { DIST, removeDir, run, tempDir } from "../helpers/run.ts";

const POSTCONF = "/usr/sbin/postconf";
const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

const postconf = (args: string[]) => {
  const r = Bun.spawnSync([POSTCONF, ...args], { stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/sbin:/usr/bin:/bin", LANG: "C" } });
  return { code: r.exitCode, stdout: r.stdout.toString(), stderr: r.stderr.toString() };
};

describe.skipIf(!existsSync(POSTCONF))("private Postfix instance", () => {
  const dir = tempDir("postern-bench-conf-");
  dirs.push(dir);
  const options = { queueDirectory: join(dir, "queue"), dataDirectory: join(dir, "data"), myhostname: "bench.localdomain", homeMailbox: "Maildir.postfix/", smtpPort: 42525 };
  writeFileSync(join(dir, "main.cf"), postfixMainCf(options));
  writeFileSync(join(dir, "master.cf"), postfixMasterCf(options));

  test("postconf -n accepts main.cf without a warning and keeps every setting", () => {
    const r = postconf(["-c", dir, "-n"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const settings = Object.fromEntries(r.stdout.trim().split("\n").map((l) => l.split(" = ") as [string, string]));
    expect(settings.queue_directory).toBe(options.queueDirectory);
    expect(settings.data_directory).toBe(options.dataDirectory);
    expect(settings.inet_interfaces).toBe("loopback-only");
    expect(settings.disable_dns_lookups).toBe("yes");
    expect(settings.home_mailbox).toBe("Maildir.postfix/");
    expect(settings.mydestination).toContain("localhost");
  });

  test("postconf -M reads master.cf: smtpd only on 127.0.0.1, no chroot", () => {
    const r = postconf(["-c", dir, "-M"]);
    expect(r.stderr).toBe("");
    const services = r.stdout.trim().split("\n").map((l) => l.split(/\s+/));
    const inet = services.filter((s) => s[1] === "inet");
    expect(inet.map((s) => s[0])).toEqual(["127.0.0.1:42525"]);
    expect(services.every((s) => s[4] === "n")).toBe(true);
    expect(services.map((s) => s[0])).toContain("pickup");
  });
});

describe("private postern instance", () => {
  test("postern's postconf -n accepts postern.toml without a warning", async () => {
    const dir = tempDir("postern-bench-conf-");
    dirs.push(dir);
    const text = posternToml(
      { queueDirectory: join(dir, "queue"), dataDirectory: join(dir, "data"), mailOwner: "nobody", myhostname: "bench.localdomain", homeMailbox: "Maildir.postern/", smtpPort: 42526, maillogFile: join(dir, "maillog") },
      (name) => posternKnowsParameter(DIST, name),
    );
    writeFileSync(join(dir, "postern.toml"), text);
    const r = await run("postconf", ["-c", dir, "-n"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`queue_directory = ${join(dir, "queue")}`);
    expect(r.stdout).toContain("home_mailbox = Maildir.postern/");
  });
});

describe("relay scenario", () => {
  test("both instances get a bracketed relayhost on 127.0.0.1 that their postconf reads back", async () => {
    const { scenario } = await import("../../bench/scenarios/relay.ts");
    const params = scenario.parameters!({ runs: 1, warmup: 0, tmpdir: "/tmp", keep: false, asRoot: false, extra: {} });
    const relayhosts: [string, string] = [params.postfix!.relayhost!, params.postern!.relayhost!];
    for (const r of relayhosts) expect(r).toMatch(/^\[127\.0\.0\.1\]:\d+$/);
    expect(relayhosts[0]).not.toBe(relayhosts[1]);

    const dir = tempDir("postern-bench-conf-");
    dirs.push(dir);
    const text = posternToml(
      { queueDirectory: join(dir, "queue"), dataDirectory: join(dir, "data"), mailOwner: "nobody", myhostname: "bench.localdomain", homeMailbox: "Maildir.postern/", smtpPort: 42526, maillogFile: join(dir, "maillog"), extra: params.postern },
      (name) => posternKnowsParameter(DIST, name),
    );
    writeFileSync(join(dir, "postern.toml"), text);
    const pn = await run("postconf", ["-c", dir, "-h", "relayhost"]);
    expect(pn.stderr).toBe("");
    expect(pn.stdout.trim()).toBe(relayhosts[1]);

    if (existsSync(POSTCONF)) {
      const pfDir = tempDir("postern-bench-conf-");
      dirs.push(pfDir);
      const options = { queueDirectory: join(pfDir, "queue"), dataDirectory: join(pfDir, "data"), myhostname: "bench.localdomain", homeMailbox: "Maildir.postfix/", smtpPort: 42525, extra: params.postfix };
      writeFileSync(join(pfDir, "main.cf"), postfixMainCf(options));
      writeFileSync(join(pfDir, "master.cf"), postfixMasterCf(options));
      const pf = postconf(["-c", pfDir, "-h", "relayhost"]);
      expect(pf.stderr).toBe("");
      expect(pf.stdout.trim()).toBe(relayhosts[0]);
    }
  });
});

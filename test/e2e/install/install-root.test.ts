/**
 * `postern install --root DIR` and `postern uninstall --root DIR`, driven
 * through dist/postern into temporary roots: every file, mode, owner and
 * link, the systemd unit, the manifest; a second run changes nothing;
 * uninstall puts the root back as it was; another MTA's sendmail is refused
 * without --replace and restored after it; --dry-run changes nothing.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, lstatSync, mkdirSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseToml } from "smol-toml";
import { QUEUE_DIRECTORIES } from "../../../src/global/queue/names.ts";
import { symlinkNames } from "../../../src/roles.ts";
import { sameContent } from "../../../src/cmd/install/plan.ts";
import { getpwnam } from "../../../src/util/passwd.ts";
import { bin, removeDir, run, tempDir } from "../../helpers/run.ts";
import { added, snapshot } from "./snapshot.ts";

const isRoot = process.getuid?.() === 0;
const roots: string[] = [];
afterAll(() => {
  for (const r of roots) removeDir(r);
});

function newRoot(): string {
  const r = tempDir("postern-install-root-");
  roots.push(r);
  return r;
}

const install = (root: string, ...args: string[]) => run("postern", ["install", "--root", root, ...args]);
const uninstall = (root: string, ...args: string[]) => run("postern", ["uninstall", "--root", root, ...args]);

const mode = (path: string) => lstatSync(path).mode & 0o7777;
const owner = (path: string) => {
  const st = lstatSync(path);
  return `${st.uid}:${st.gid}`;
};

interface Entry {
  kind: string;
  path?: string;
  name?: string;
  part: string;
  target?: string;
  backup?: string;
  simulated?: boolean;
  command?: string;
}
const manifestOf = (root: string): Entry[] => JSON.parse(readFileSync(join(root, "etc/postern/install-manifest.json"), "utf8")).entries;

const linkDir = (name: string) => (name === "mailq" || name === "newaliases" ? "usr/bin" : "usr/sbin");

describe("postern install --root", () => {
  test("installs every file with its mode, owner and link, records each in the manifest, and a second run changes nothing", async () => {
    const root = newRoot();
    // a root that already has some of the tree, and a passwd file that knows mail_owner
    mkdirSync(join(root, "usr/sbin"), { recursive: true, mode: 0o755 });
    mkdirSync(join(root, "etc"), { mode: 0o755 });
    writeFileSync(join(root, "etc/passwd"), "root:x:0:0:root:/root:/bin/bash\npostern:x:4321:4322::/var/spool/postern:/usr/sbin/nologin\n");
    writeFileSync(join(root, "etc/group"), "root:x:0:\npostern:x:4322:\n");
    const before = snapshot(root);

    const r = await install(root);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("link /usr/sbin/sendmail -> /usr/sbin/postern");

    // the executable and its links
    const exe = join(root, "usr/sbin/postern");
    expect(mode(exe)).toBe(0o755);
    expect(owner(exe)).toBe(isRoot ? "0:0" : owner(bin()));
    expect(sameContent(exe, bin())).toBe(true);
    for (const name of symlinkNames()) {
      const link = join(root, linkDir(name), name);
      expect(lstatSync(link).isSymbolicLink()).toBe(true);
      expect(readlinkSync(link)).toBe("/usr/sbin/postern");
    }
    expect(symlinkNames()).toEqual(expect.arrayContaining(["sendmail", "mailq", "newaliases", "postfix", "postqueue"]));

    // the configuration: commented, parses, and sets nothing for the default prefix
    const toml = readFileSync(join(root, "etc/postern/postern.toml"), "utf8");
    expect(mode(join(root, "etc/postern/postern.toml"))).toBe(0o644);
    expect(mode(join(root, "etc/postern"))).toBe(0o755);
    expect(toml).toContain("#myhostname = ");
    expect(toml).toMatch(/^# .*\n#mydestination = "\$myhostname, localhost\.\$mydomain, localhost"$/m);
    expect(parseToml(toml)).toEqual({});

    // the queue: Postfix's modes, mail_owner's ids from the root's passwd file, the top directory root's
    const queue = join(root, "var/spool/postern");
    expect(mode(queue)).toBe(0o755);
    for (const { name, mode: m, owner: by } of QUEUE_DIRECTORIES) {
      expect(`${name} ${mode(join(queue, name)).toString(8)}`).toBe(`${name} ${m.toString(8)}`);
      if (isRoot) expect(`${name} ${owner(join(queue, name))}`).toBe(`${name} ${by === "root" ? "0:0" : "4321:4322"}`);
    }
    expect(mode(join(root, "var/lib/postern"))).toBe(0o700);
    if (isRoot) expect(owner(join(root, "var/lib/postern"))).toBe("4321:4322");

    // the aliases and their index
    expect(readFileSync(join(root, "etc/aliases"), "utf8")).toMatch(/^postmaster: root$/m);
    expect(mode(join(root, "etc/aliases"))).toBe(0o644);
    expect(existsSync(join(root, "etc/aliases.sqlite"))).toBe(true);

    // the unit
    const unit = readFileSync(join(root, "etc/systemd/system/postern.service"), "utf8");
    for (const line of [
      "Type=simple",
      "ExecStart=/usr/sbin/postern start-fg -c /etc/postern",
      "ExecReload=/bin/kill -HUP $MAINPID",
      "Restart=on-failure",
      "RestartPreventExitStatus=64 78",
      "KillMode=mixed",
      "ProtectSystem=full",
      "ReadWritePaths=-/var/spool/postern -/var/lib/postern",
      "PrivateTmp=yes",
      "WantedBy=multi-user.target",
    ]) {
      expect(unit.split("\n")).toContain(line);
    }
    expect(unit).not.toMatch(/^NoNewPrivileges/m);
    expect(unit).toMatch(/^# - No NoNewPrivileges: /m);
    // no maillog_file: no logrotate snippet
    expect(existsSync(join(root, "etc/logrotate.d"))).toBe(false);

    // the manifest: root's alone, and it names exactly what install added
    const manifestPath = join(root, "etc/postern/install-manifest.json");
    expect(mode(manifestPath)).toBe(0o600);
    const entries = manifestOf(root);
    const recorded = entries.filter((e) => e.path).map((e) => e.path!);
    const after = snapshot(root);
    expect(added(before, after)).toEqual([...recorded, "/etc/postern/install-manifest.json"].sort());
    // mail_owner was in the root's passwd file: nothing to create, nothing recorded
    expect(entries.filter((e) => e.kind === "user" || e.kind === "group")).toEqual([]);
    expect(entries.find((e) => e.path === "/usr/sbin/sendmail")).toEqual({ kind: "link", path: "/usr/sbin/sendmail", target: "/usr/sbin/postern", part: "program" });
    expect(entries.find((e) => e.path === "/usr/sbin")).toBeUndefined();

    // a second run: nothing to do, nothing touched (mtimes included)
    const again = await install(root);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(`postern install: nothing to change under ${root}: everything is in place\n`);
    expect(snapshot(root)).toEqual(after);

    // uninstall keeps the configuration and the queue, purge removes them; the root is as before
    const u = await uninstall(root);
    expect(u.code).toBe(0);
    expect(existsSync(join(root, "usr/sbin/postern"))).toBe(false);
    expect(existsSync(join(root, "usr/sbin/sendmail"))).toBe(false);
    expect(existsSync(join(root, "etc/systemd"))).toBe(false);
    expect(existsSync(join(root, "usr/sbin"))).toBe(true);
    expect(existsSync(join(root, "etc/postern/postern.toml"))).toBe(true);
    expect(existsSync(join(queue, "maildrop"))).toBe(true);
    expect(u.stdout).toContain("--purge removes them too");
    const p = await uninstall(root, "--purge");
    expect(p.code).toBe(0);
    expect(snapshot(root)).toEqual(before);
    // and a third uninstall has nothing left to do
    const none = await uninstall(root);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain("nothing to remove");
  });

  test("a mail_owner missing from the root is recorded for the target system, not created here; maillog_file brings a logrotate snippet", async () => {
    const root = newRoot();
    const name = `pin${process.pid.toString(36)}`;
    const r = await install(root, `mail_owner=${name}`, "maillog_file=/var/log/postern.log");
    expect(r.code).toBe(0);
    expect(getpwnam(name)).toBeUndefined();
    const entries = manifestOf(root);
    const user = entries.find((e) => e.kind === "user");
    expect(user).toMatchObject({ kind: "user", name, part: "queue", simulated: true });
    expect(user!.command).toMatch(new RegExp(`^(adduser --system --group --home /var/spool/postern|useradd --system --user-group --home-dir /var/spool/postern) .*--shell /usr/sbin/nologin .*${name}$`));
    expect(entries.find((e) => e.kind === "group")).toMatchObject({ name, simulated: true });
    const toml = parseToml(readFileSync(join(root, "etc/postern/postern.toml"), "utf8"));
    expect(toml).toEqual({ mail_owner: name, maillog_file: "/var/log/postern.log" });
    const rotate = readFileSync(join(root, "etc/logrotate.d/postern"), "utf8");
    expect(rotate).toContain('"/var/log/postern.log" {');
    expect(rotate).toContain("\tcopytruncate\n");
    // no owner known: the queue stays the invoker's, with Postfix's modes
    expect(mode(join(root, "var/spool/postern/maildrop"))).toBe(0o3733);

    const after = snapshot(root);
    const again = await install(root, `mail_owner=${name}`, "maillog_file=/var/log/postern.log");
    expect(again.stdout).toContain("nothing to change");
    expect(snapshot(root)).toEqual(after);
    // a queue directory whose mode went wrong is repaired by the next run, which records nothing new
    const manifestBefore = readFileSync(join(root, "etc/postern/install-manifest.json"), "utf8");
    chmodSync(join(root, "var/spool/postern/maildrop"), 0o755);
    const repair = await install(root, `mail_owner=${name}`, "maillog_file=/var/log/postern.log");
    expect(repair.stdout).toContain("repair owners and modes in /var/spool/postern");
    expect(mode(join(root, "var/spool/postern/maildrop"))).toBe(0o3733);
    expect(readFileSync(join(root, "etc/postern/install-manifest.json"), "utf8")).toBe(manifestBefore);
    // the same parameter with another value than the file's is refused: postconf -e edits the file
    const other = await install(root, "mail_owner=someone");
    expect(other.code).toBe(64);
    expect(other.stderr).toContain("postconf -c /etc/postern -e 'mail_owner = someone'");

    expect((await uninstall(root, "--purge")).code).toBe(0);
    expect(snapshot(root).size).toBe(1);
  });

  test("another MTA's sendmail is refused without --replace, moved aside with it, and restored by uninstall", async () => {
    const root = newRoot();
    mkdirSync(join(root, "usr/sbin"), { recursive: true, mode: 0o755 });
    mkdirSync(join(root, "usr/bin"), { recursive: true, mode: 0o755 });
    writeFileSync(join(root, "usr/sbin/sendmail"), "#!/bin/sh\necho another MTA\n");
    chmodSync(join(root, "usr/sbin/sendmail"), 0o755);
    symlinkSync("../sbin/sendmail", join(root, "usr/bin/mailq"));
    const before = snapshot(root);

    const refused = await install(root);
    expect(refused.code).toBe(73);
    expect(refused.stderr).toContain(`${root}/usr/sbin/sendmail exists and is not postern's link; run with --replace`);
    expect(refused.stderr).toContain(`${root}/usr/bin/mailq exists and is not postern's link`);
    expect(refused.stdout).toBe("");
    expect(snapshot(root)).toEqual(before);

    const replaced = await install(root, "--replace");
    expect(replaced.code).toBe(0);
    expect(readlinkSync(join(root, "usr/sbin/sendmail"))).toBe("/usr/sbin/postern");
    expect(readFileSync(join(root, "usr/sbin/sendmail.postern-backup"), "utf8")).toBe("#!/bin/sh\necho another MTA\n");
    expect(readlinkSync(join(root, "usr/bin/mailq.postern-backup"))).toBe("../sbin/sendmail");
    expect(manifestOf(root).find((e) => e.path === "/usr/sbin/sendmail")).toEqual({
      kind: "link",
      path: "/usr/sbin/sendmail",
      target: "/usr/sbin/postern",
      part: "program",
      backup: "/usr/sbin/sendmail.postern-backup",
    });
    // --replace once is enough: a second run finds everything in place
    expect((await install(root)).stdout).toContain("nothing to change");

    const u = await uninstall(root);
    expect(u.code).toBe(0);
    expect(u.stdout).toContain("restore /usr/sbin/sendmail from /usr/sbin/sendmail.postern-backup");
    expect(readFileSync(join(root, "usr/sbin/sendmail"), "utf8")).toBe("#!/bin/sh\necho another MTA\n");
    expect(mode(join(root, "usr/sbin/sendmail"))).toBe(0o755);
    expect(readlinkSync(join(root, "usr/bin/mailq"))).toBe("../sbin/sendmail");
    expect((await uninstall(root, "--purge")).code).toBe(0);
    expect(snapshot(root)).toEqual(before);
  });

  test("--dry-run prints the actions and changes nothing, for install and uninstall", async () => {
    const root = newRoot();
    const empty = snapshot(root);
    const dry = await install(root, "--dry-run");
    expect(dry.code).toBe(0);
    expect(dry.stdout).toContain("would link /usr/sbin/sendmail -> /usr/sbin/postern\n");
    expect(dry.stdout).toContain("would write file /etc/postern/postern.toml (mode 0644)\n");
    expect(dry.stdout).toContain("--dry-run: nothing was changed");
    expect(snapshot(root)).toEqual(empty);

    expect((await install(root)).code).toBe(0);
    const installed = snapshot(root);
    const dryUninstall = await uninstall(root, "--purge", "--dry-run");
    expect(dryUninstall.code).toBe(0);
    expect(dryUninstall.stdout).toContain("would remove the link /usr/sbin/sendmail\n");
    expect(snapshot(root)).toEqual(installed);
    expect((await uninstall(root, "--purge")).code).toBe(0);
    expect(snapshot(root)).toEqual(empty);
  });

  test("a merged /usr: root's links to directories are followed, and --prefix / puts the links through them", async () => {
    const root = newRoot();
    for (const d of ["usr/sbin", "usr/bin"]) mkdirSync(join(root, d), { recursive: true, mode: 0o755 });
    symlinkSync("usr/sbin", join(root, "sbin"));
    symlinkSync("usr/bin", join(root, "bin"));
    const before = snapshot(root);
    const r = await install(root, "--prefix", "/", "-c", "/etc/postern");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readlinkSync(join(root, "usr/sbin/sendmail"))).toBe("/sbin/postern");
    expect(lstatSync(join(root, "usr/sbin/postern")).isFile()).toBe(true);
    expect(readFileSync(join(root, "etc/postern/postern.toml"), "utf8")).toContain('queue_directory = "/var/spool/postern"');
    expect((await install(root, "--prefix", "/", "-c", "/etc/postern")).stdout).toContain("nothing to change");
    expect((await uninstall(root, "--prefix", "/", "-c", "/etc/postern", "--purge")).code).toBe(0);
    expect(snapshot(root)).toEqual(before);
  });

  test("a directory on the way that another user could change stops the install before any change", async () => {
    const root = newRoot();
    mkdirSync(join(root, "usr"), { mode: 0o755 });
    chmodSync(join(root, "usr"), 0o777);
    const before = snapshot(root);
    const r = await install(root);
    expect(r.code).toBe(73);
    expect(r.stderr).toContain(`${root}/usr is writable by everyone: install does not write below a directory another user controls`);
    expect(snapshot(root)).toEqual(before);
    chmodSync(join(root, "usr"), 0o1777);
    expect((await install(root, "--dry-run")).code).toBe(0);
  });

  test("uninstall trusts only a manifest that nobody but root can write", async () => {
    const root = newRoot();
    expect((await install(root)).code).toBe(0);
    const installed = snapshot(root);
    const manifest = join(root, "etc/postern/install-manifest.json");
    chmodSync(manifest, 0o666);
    const r = await uninstall(root);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain("is writable by group or others: not trusted");
    chmodSync(manifest, 0o600);
    chmodSync(join(root, "etc/postern"), 0o777);
    const d = await uninstall(root);
    expect(d.code).toBe(78);
    expect(d.stderr).toContain("is writable by a user other than root");
    chmodSync(join(root, "etc/postern"), 0o755);
    expect(snapshot(root)).toEqual(installed);
    expect((await uninstall(root, "--purge")).code).toBe(0);
  });

  test("exit codes: 64 for bad usage, 78 for a configuration install cannot use", async () => {
    const root = newRoot();
    expect((await run("postern", ["install", "--prefix", "relative/dir"])).code).toBe(64);
    expect((await install(root, "no_such_parameter=1")).code).toBe(64);
    expect((await install(root, "--purge")).code).toBe(64);
    expect((await uninstall(root, "--replace")).code).toBe(64);
    mkdirSync(join(root, "etc/postern"), { recursive: true });
    writeFileSync(join(root, "etc/postern/postern.toml"), 'message_size_limit = "lots"\n');
    const bad = await install(root);
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain("message_size_limit");
    expect(existsSync(join(root, "usr"))).toBe(false);
  });

  test.skipIf(!isRoot || !existsSync("/usr/bin/setpriv"))("exit code 77: a real install or uninstall by another user than root", async () => {
    for (const command of ["install", "uninstall"]) {
      const proc = Bun.spawnSync(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", bin(), command], { stdout: "pipe", stderr: "pipe", env: { PATH: "/usr/bin:/bin" } });
      expect(`${command} ${proc.exitCode}`).toBe(`${command} 77`);
      expect(proc.stderr.toString()).toContain(`postern ${command} must run as root`);
    }
  });
});

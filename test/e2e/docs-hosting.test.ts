/**
 * docs/virtual.md ("Hosting mail for other domains") promises that every
 * complete postern.toml on the page passes `postern check` as it stands:
 * each ```toml block whose first line is "# postern.toml: ..." is written
 * to a configuration directory of its own (with a private queue directory
 * in front) and checked. Warnings about the table files the examples name
 * (they do not exist here) are allowed; errors are not.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { configDir, removeDir, ROOT, run, tempDir } from "../helpers/run.ts";
import { ensureMailOwner, isRoot } from "../helpers/mail-system.ts";

ensureMailOwner();

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

/**
 * The pipe services' users the page names (vmail, list, ...): postern check refuses a user this machine
 * lacks, so as root the test makes the missing ones (system users without a home) and removes them after;
 * otherwise the examples are checked with the current user in their place.
 */
const made: string[] = [];
function pipeUsers(toml: string): string[] {
  return [...toml.matchAll(/^user\s*=\s*"([a-z_][a-z0-9_-]*)"/gm)].map((m) => m[1]!);
}
function exists(name: string): boolean {
  return Bun.spawnSync(["getent", "passwd", name]).exitCode === 0;
}
beforeAll(() => {
  if (!isRoot) return;
  for (const name of new Set(examples().flatMap(([, toml]) => pipeUsers(toml)))) {
    if (exists(name)) continue;
    const r = Bun.spawnSync(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]);
    if (r.exitCode !== 0) throw new Error(`useradd ${name}: ${r.stderr.toString()}`);
    made.push(name);
  }
});
afterAll(() => {
  for (const name of made) Bun.spawnSync(["userdel", name]);
});

/** The complete examples of the page: [title, toml text]. */
function examples(): Array<[string, string]> {
  const page = readFileSync(join(ROOT, "docs", "virtual.md"), "utf8");
  const out: Array<[string, string]> = [];
  for (const m of page.matchAll(/```toml\n([\s\S]*?)```/g)) {
    const body = m[1]!;
    const title = /^# postern\.toml: (.+)\n/.exec(body)?.[1];
    if (title) out.push([title, body]);
  }
  return out;
}

describe("docs/virtual.md: every complete example passes postern check", () => {
  const all = examples();

  test("the page has an example for each of Postfix's VIRTUAL_README cases, and the others the page promises", () => {
    const titles = all.map(([t]) => t).join("\n");
    for (const topic of ["shared domains, UNIX system accounts", "separate domains, UNIX system accounts", "separate domains, non-UNIX accounts", "non-postern mailbox store (Dovecot over LMTP)", "mail forwarding domains", "mailing list", "autoreplies", "catch-all", "in a database"]) {
      expect(titles).toContain(topic);
    }
  });

  test.each(all)("%s", async (_title, toml) => {
    const queue = tempDir("postern-docs-queue-");
    dirs.push(queue);
    // keys before the example's own (and before any [services.NAME] table it opens)
    const head = `queue_directory = "${join(queue, "spool")}"\n${isRoot ? "" : `mail_owner = "${process.env.USER}"\n`}`;
    const text = isRoot ? toml : toml.replace(/^(user\s*=\s*)"[^"]*"/gm, `$1"${userInfo().username}"`);
    const dir = configDir(head + text);
    dirs.push(dir);
    const r = await run("postern", ["check", "-c", dir]);
    expect(r.stderr.split("\n").filter((l) => l.includes("error:"))).toEqual([]);
    expect(r.code).toBe(0);
  });
});

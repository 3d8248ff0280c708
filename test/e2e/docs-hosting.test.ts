/**
 * docs/virtual.md ("Hosting mail for other domains") promises that every
 * complete postern.toml on the page passes `postern check` as it stands:
 * each ```toml block whose first line is "# postern.toml: ..." is written
 * to a configuration directory of its own (with a private queue directory
 * in front) and checked. Warnings about the table files the examples name
 * (they do not exist here) are allowed; errors are not.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { configDir, removeDir, ROOT, run, tempDir } from "../helpers/run.ts";
import { ensureMailOwner, isRoot } from "../helpers/mail-system.ts";

ensureMailOwner();

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

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
    const dir = configDir(head + toml);
    dirs.push(dir);
    const r = await run("postern", ["check", "-c", dir]);
    expect(r.stderr.split("\n").filter((l) => l.includes("error:"))).toEqual([]);
    expect(r.code).toBe(0);
  });
});

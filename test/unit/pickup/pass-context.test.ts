/**
 * pickup's per-configuration context (src/pickup/pickup.ts): a reload brings a new Config, whose
 * context opens its own tables; the context it replaces closes the tables it opened (its files and
 * connections), but only once no pass uses it any more, and never one the new context shares.
 *
 * A table is closed when openTable() no longer hands out the same object (closing drops it from the
 * process-wide cache) and its lookups are refused. Runs pickupOnce() in the test process on private
 * queue directories.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { defaultsOnlyConfig, type Config } from "../../../src/global/config/config.ts";
import { encodeQueueFile } from "../../../src/global/queue/format.ts";
import { closeAllTables, openTable } from "../../../src/global/tables/open-table.ts";
import type { Table } from "../../../src/global/tables/table.ts";
import { retireConfig } from "../../../src/global/config/generation.ts";
import { pickupOnce } from "../../../src/pickup/pickup.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const root = tempDir("postern-pickup-context-");
afterAll(() => {
  closeAllTables();
  removeDir(root);
});

let n = 0;
/** A texthash table file; its spec. */
function table(text: string): string {
  const path = join(root, `t${n++}`);
  writeFileSync(path, text);
  return `texthash:${path}`;
}

/** A queue directory with the subdirectories a pass touches. */
function queue(): string {
  const dir = join(root, `q${n++}`);
  for (const sub of ["maildrop", "incoming", "corrupt", "pid", "public"]) mkdirSync(join(dir, sub), { recursive: true });
  return dir;
}

const config = (queueDir: string, o: Record<string, string>): Config => defaultsOnlyConfig().withOverrides({ queue_directory: queueDir, myhostname: "mx.example.com", mydomain: "example.com", ...o });

/** A submission in maildrop/ that pickup must screen as a user's (mode 0644: not the queue owner's own file). */
function submit(queueDir: string, name: string): void {
  const path = join(queueDir, "maildrop", name);
  writeFileSync(path, encodeQueueFile({ arrivalTime: 0, sender: "u@example.com", recipients: [{ address: "r@example.com" }], attributes: {}, content: Buffer.from("Subject: x\n\nhi\n") }));
  chmodSync(path, 0o644);
}

/**
 * The cached table for `spec`, seen through a configuration retired at once: openTable() without
 * one would keep the table open for good, and this one holds nothing afterwards.
 */
function peek(spec: string): Table {
  const probe = defaultsOnlyConfig();
  const t = openTable(spec, probe);
  retireConfig(probe);
  return t;
}

const isOpen = (spec: string, t: Table) => peek(spec) === t;

describe("a reload's new context", () => {
  test("closes the tables of the context it replaces: settings and header_checks", async () => {
    const q = queue();
    const canonical = table("a b\n");
    const checks = table("/^Subject:/ WARN seen\n");
    const first = config(q, { canonical_maps: canonical, header_checks: checks });
    submit(q, "0000A1");
    expect((await pickupOnce(first)).queued).toBe(1);
    const oldCanonical = peek(canonical);
    const oldChecks = peek(checks);
    // the same configuration again: the same context, its tables stay open
    await pickupOnce(first);
    expect(isOpen(canonical, oldCanonical)).toBe(true);
    expect(isOpen(checks, oldChecks)).toBe(true);

    const other = table("c d\n");
    await pickupOnce(config(q, { canonical_maps: other }));
    await expect(oldCanonical.lookup("a")).rejects.toThrow("table is closed");
    await expect(oldChecks.lookup("Subject: x")).rejects.toThrow("table is closed");
    expect(await peek(other).lookup("c")).toBe("d");
  });

  test("keeps a table both configurations name open", async () => {
    const q = queue();
    const canonical = table("a b\n");
    await pickupOnce(config(q, { canonical_maps: canonical }));
    const t = peek(canonical);
    await pickupOnce(config(q, { canonical_maps: canonical, syslog_name: "other" }));
    expect(isOpen(canonical, t)).toBe(true);
    expect(await t.lookup("a")).toBe("b");
  });

  test("closes the tables a pass opened outside the context: mydestination's", async () => {
    const q = queue();
    const canonical = table("a b\n");
    const domains = table("example.com ok\n");
    submit(q, "0000C1");
    expect((await pickupOnce(config(q, { canonical_maps: canonical, mydestination: domains }))).queued).toBe(1);
    const t = peek(domains);
    expect(await t.lookup("example.com")).toBe("ok");
    await pickupOnce(config(q, { canonical_maps: canonical, mydestination: table("example.net ok\n") }));
    await expect(t.lookup("example.com")).rejects.toThrow("table is closed");
  });

  test("a pass in progress keeps its context's tables until it ends", async () => {
    const q1 = queue();
    const canonical = table("a b\n");
    submit(q1, "0000B1");
    const running = pickupOnce(config(q1, { canonical_maps: canonical }));
    // the first pass waits on the submitter's rights check; a reload's pass starts meanwhile
    const t = peek(canonical);
    const next = pickupOnce(config(queue(), { canonical_maps: table("c d\n") }));
    expect(isOpen(canonical, t)).toBe(true);
    await running;
    expect(isOpen(canonical, t)).toBe(false);
    await expect(t.lookup("a")).rejects.toThrow("table is closed");
    await next;
  });
});

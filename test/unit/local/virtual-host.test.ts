/**
 * The local service's writer for the virtual agent (src/local/virtual-host.ts),
 * with the in-process performer (the invoking user's rights): a Maildir gets
 * its folders and the headers virtual(8) adds, an mbox file gets the From_
 * line and quoting, and the mbox writer's refusals (a symbolic link, a path
 * outside virtual_mailbox_base) come back as temporary failures. As root the
 * same jobs go to a worker that became the mapped uid (test/e2e/daemon/virtual.test.ts).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { lchownSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createVirtualHost } from "../../../src/local/virtual-host.ts";
import { InProcessPerformer } from "../../../src/local/worker/performer.ts";
import type { VirtualWrite } from "../../../src/virtual/agent.ts";
import { readVirtualSettings } from "../../../src/virtual/settings.ts";
import { configIn } from "../../helpers/config.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const root = tempDir("postern-virtual-host-");
afterAll(() => removeDir(root));
const base = join(root, "vhosts");
mkdirSync(join(base, "example.net"), { recursive: true });
const config = configIn(root, `virtual_mailbox_base = "${base}"\nmyhostname = "mx.example.org"\n`);
const settings = readVirtualSettings(config);
const host = createVirtualHost(config, new InProcessPerformer());
const uid = process.getuid?.() ?? 0;
const gid = process.getgid?.() ?? 0;
const content = Buffer.from("Subject: hi\n\nFrom the start\nbody\n");

function write(kind: "maildir" | "mbox", path: string): Promise<unknown> {
  const w: VirtualWrite = { kind, path, within: base, uid, gid, sender: "sender@example.org", originalTo: "alice@example.net", deliveredTo: "alice@example.net" };
  return host.write(w, settings, content);
}

describe("createVirtualHost", () => {
  test("a Maildir is created with its folders, and the message carries Return-Path:, X-Original-To:, Delivered-To:", async () => {
    const dir = join(base, "example.net", "alice") + "/";
    expect(await write("maildir", dir)).toEqual({ ok: true });
    expect(readdirSync(dir).sort()).toEqual(["cur", "new", "tmp"]);
    const [name] = readdirSync(join(dir, "new"));
    expect(name).toMatch(/\.mx\.example\.org$/);
    expect(readFileSync(join(dir, "new", name!), "utf8")).toBe(
      "Return-Path: <sender@example.org>\nX-Original-To: alice@example.net\nDelivered-To: alice@example.net\nSubject: hi\n\nFrom the start\nbody\n",
    );
  });

  test("an mbox file gets the From_ line, >From quoting and the blank line", async () => {
    const path = join(base, "example.net", "bob");
    expect(await write("mbox", path)).toEqual({ ok: true });
    const text = readFileSync(path, "utf8");
    expect(text).toMatch(/^From sender@example\.org {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\nReturn-Path: <sender@example\.org>\nX-Original-To: alice@example\.net\nDelivered-To: alice@example\.net\nSubject: hi\n\n>From the start\nbody\n\n$/);
  });

  test("a symbolic link at the mbox path, or a path outside the base, is a temporary failure and nothing is written", async () => {
    const target = join(root, "target");
    writeFileSync(target, "");
    symlinkSync(target, join(base, "example.net", "eve"));
    // the writer follows a link only when root owns it (safe_open's rule); the virtual mailbox owner never is root
    if (uid === 0) lchownSync(join(base, "example.net", "eve"), 65534, 65534);
    expect(await write("mbox", join(base, "example.net", "eve"))).toMatchObject({ ok: false, dsn: "4.2.0", text: "file is a symbolic link" });
    expect(await write("mbox", join(root, "outside"))).toMatchObject({ ok: false, dsn: "4.3.0" });
    expect(await write("maildir", join(root, "outside") + "/")).toMatchObject({ ok: false, dsn: "4.3.0" });
    expect(readFileSync(target, "utf8")).toBe("");
  });

  test("unprivileged mode: the mailbox is the invoking user's, so a mapped uid of someone else does not defer it", async () => {
    const unprivileged = createVirtualHost(config, new InProcessPerformer(), false);
    const path = join(base, "example.net", "carol");
    const w: VirtualWrite = { kind: "mbox", path, within: base, uid: uid + 5000, gid, sender: "", originalTo: "carol@example.net", deliveredTo: "carol@example.net" };
    expect(await unprivileged.write(w, settings, content)).toEqual({ ok: true });
    expect(await unprivileged.write(w, settings, content)).toEqual({ ok: true });
    expect(readFileSync(path, "utf8").match(/^From MAILER-DAEMON /gm)).toHaveLength(2);
  });

  test("virtual_mailbox_lock: a dotlock held by someone else defers only when dotlock is one of the locks", async () => {
    const path = join(base, "example.net", "locked");
    writeFileSync(`${path}.lock`, "");
    const w: VirtualWrite = { kind: "mbox", path, within: base, uid, gid, sender: "", originalTo: "x@example.net", deliveredTo: "x@example.net" };
    const timing = 'deliver_lock_attempts = 1\ndeliver_lock_delay = "1s"\n';
    const dot = configIn(root, `${timing}virtual_mailbox_lock = "dotlock"\n`);
    const r = await createVirtualHost(dot, new InProcessPerformer()).write(w, readVirtualSettings(dot), content);
    expect(r).toMatchObject({ ok: false, dsn: "4.2.0" });
    const fcntl = configIn(root, `${timing}virtual_mailbox_lock = "fcntl"\n`);
    expect(await createVirtualHost(fcntl, new InProcessPerformer()).write(w, readVirtualSettings(fcntl), content)).toEqual({ ok: true });
  });

  test("virtual_mailbox_limit: a write that would pass it fails permanently (5.2.2 File too large)", async () => {
    const small = configIn(root, "message_size_limit = 100\nvirtual_mailbox_limit = 400\n");
    const s = readVirtualSettings(small);
    const h = createVirtualHost(small, new InProcessPerformer());
    const path = join(base, "example.net", "full");
    const w: VirtualWrite = { kind: "mbox", path, within: base, uid, gid, sender: "", originalTo: "x@example.net", deliveredTo: "x@example.net" };
    expect(await h.write(w, s, content)).toEqual({ ok: true });
    expect(await h.write(w, s, content)).toEqual({ ok: true });
    expect(await h.write(w, s, content)).toMatchObject({ ok: false, dsn: "5.2.2", text: expect.stringContaining("File too large") });
    const big = Buffer.from(`Subject: big\n\n${"x".repeat(500)}\n`);
    expect(await h.write({ ...w, kind: "maildir", path: join(base, "example.net", "fullmd") + "/" }, s, big)).toMatchObject({ ok: false, dsn: "5.2.2" });
  });

  test("a Maildir that cannot be created defers (4.2.0), unlike local(8)'s 5.2.0", async () => {
    writeFileSync(join(base, "example.net", "file"), "");
    expect(await write("maildir", join(base, "example.net", "file", "sub") + "/")).toMatchObject({ ok: false, dsn: "4.2.0" });
  });
});

/**
 * The queue manager's limits through the running system, as root (issue 9
 * item 11): one local user with ten user+N addresses and a .forward command
 * that waits, and default_process_limit = 4. The user's addresses share one
 * local queue (local_destination_concurrency_limit = 2), and each transport
 * has its own process limit, so an outbound message is relayed at once
 * while the local deliveries are still running. Before, each address was a
 * queue of its own and all transports shared default_process_limit: four
 * waiting commands held every slot and nothing went out.
 *
 * The relay is a fake SMTP server on 127.0.0.1; the commands end when the
 * test creates their release file (or at command_time_limit).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { chownSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { FakeSmtpServer } from "../../helpers/smtp-server.ts";
import { ensureMailOwner, HOST, isRoot, MailSystem, message, TestUsers, waitFor } from "../../helpers/mail-system.ts";

const users = new TestUsers("psc");
let sys: MailSystem | undefined;
let server: FakeSmtpServer | undefined;

afterAll(async () => {
  await sys?.cleanup();
  server?.stop();
  users.removeAll();
});

/** The .forward commands running now: the shells whose command line names `release`. */
function waitingCommands(release: string): number {
  let n = 0;
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0");
      if (argv[0] === "/bin/sh" && argv.some((a) => a.includes(release))) n++;
    } catch {}
  }
  return n;
}

describe.skipIf(!isRoot)("scheduling limits", () => {
  test("ten user+N local deliveries run two at a time and do not keep an outbound message from going out", async () => {
    ensureMailOwner();
    server = FakeSmtpServer.start();
    sys = new MailSystem({
      relayhost: `[127.0.0.1]:${server.port}`,
      recipient_delimiter: "+",
      default_process_limit: 4,
      command_time_limit: "120s",
    });
    const user = users.add("u", join(sys.dir, "home"));
    const release = join(sys.dir, "release");
    const forward = join(user.home, ".forward");
    // polls for the release file; command_time_limit bounds it if the test dies
    writeFileSync(forward, `"|while [ ! -e ${release} ]; do sleep 0.05; done"\n`);
    chownSync(forward, user.uid, user.gid);
    await sys.start();
    try {
      await sys.send(Array.from({ length: 10 }, (_, n) => `${user.name}+${n}@${HOST}`), message("slowlocal"));
      await waitFor("two waiting commands", () => waitingCommands(release) >= 2);

      await sys.send(["far@remote.example"], message("outbound"));
      await waitFor("the outbound message at the relay", () => server!.messages.length === 1);
      expect(server.messages[0]!.recipients).toEqual(["far@remote.example"]);
      // one user's deliveries: two at a time, whatever the extension
      expect(waitingCommands(release)).toBe(2);
    } finally {
      writeFileSync(release, "");
    }
    await waitFor("ten local deliveries", () => (sys!.log().match(/status=sent \(delivered to command: while /g)?.length ?? 0) === 10, 60_000);
    await sys.waitForEmptyQueue();
  }, 90_000);
});

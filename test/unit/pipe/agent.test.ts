/**
 * The pipe agent's decisions, with a host that records runs instead of
 * making them: the envelope lines and quoting each flag asks for, the user
 * (root refused), D and O with several recipients deferred, size= bounced,
 * a Delivered-To: loop bounced, an unknown macro deferred. Runs as any
 * user; the queue file is a real one in a temporary queue.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { parsePipeService } from "../../../src/global/config/services.ts";
import { commitQueueFileSync } from "../../../src/global/queue/commit.ts";
import { encodeQueueFile } from "../../../src/global/queue/format.ts";
import type { DeliveryRequest } from "../../../src/global/delivery/types.ts";
import { deliveredToAddresses, envelopePrefix, formatDelivery, quoteLocalPart } from "../../../src/local/message-copy.ts";
import { withEol } from "../../../src/local/worker/command-run.ts";
import { createPipeAgent, pipeIdentity, type PipeRun } from "../../../src/pipe/agent.ts";
import { configIn } from "../../helpers/config.ts";
import { removeDir, tempDir } from "../../helpers/run.ts";

const root = tempDir("postern-pipe-agent-");
afterAll(() => removeDir(root));
const queueDirectory = join(root, "queue");
mkdirSync(join(queueDirectory, "active"), { recursive: true });

async function deliver(attrs: Record<string, string>, recipients: string[], content = "Subject: hi\n\nbody\n", sender = "owner@example.org", opts: { output?: string; nexthop?: string; params?: string } = {}) {
  const config = configIn(root, `queue_directory = "${queueDirectory}"\nrecipient_delimiter = "+"\n${opts.params ?? ""}`);
  const parsed = parsePipeService(new Map(Object.entries({ argv: "/usr/bin/list ${recipient}", user: "nobody", ...attrs })));
  if (typeof parsed === "string") throw new Error(parsed);
  const runs: PipeRun[] = [];
  const agent = createPipeAgent(config, "mylist", parsed, {
    queueDirectory,
    host: {
      async run(r) {
        runs.push(r);
        return { status: "sent", dsn: "2.0.0", reason: "delivered to command: /usr/bin/list", output: opts.output ?? "" };
      },
      deliveredTo: deliveredToAddresses,
      prefix: (l) => envelopePrefix(l),
      quoteLocal: quoteLocalPart,
      async close() {},
    },
  });
  const bytes = encodeQueueFile({ arrivalTime: 0, sender, recipients: recipients.map((address) => ({ address })), attributes: {}, content: Buffer.from(content) });
  const id = commitQueueFileSync(join(queueDirectory, "active"), () => bytes);
  const request: DeliveryRequest = {
    queueId: id,
    queueFile: join(queueDirectory, "active", id),
    sender,
    arrivalTime: 0,
    transport: "mylist",
    nexthop: opts.nexthop ?? "lists.example.net",
    recipients: recipients.map((address, index) => ({ index, address, original: `orig-${address}` })),
    attributes: {},
  };
  const results = await agent.deliver(request);
  await agent.close();
  return { results, runs };
}

describe("pipe agent", () => {
  test("flags F, R, O, D give the envelope lines; . and > ask the runner to quote; the argv is expanded; relay= is the service name", async () => {
    const { results, runs } = await deliver({ flags: "FRDO.>" }, ["list@lists.example.net"]);
    expect(results).toEqual([{ index: 0, relay: "mylist", status: "sent", dsn: "2.0.0", reason: "delivered via mylist service", action: "relayed" }]);
    expect(runs).toHaveLength(1);
    const r = runs[0]!;
    expect(r.argv).toEqual(["/usr/bin/list", "list@lists.example.net"]);
    expect(r.prefix).toMatch(/^From owner@example\.org {2}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}\nReturn-Path: <owner@example\.org>\nX-Original-To: orig-list@lists\.example\.net\nDelivered-To: list@lists\.example\.net\n$/);
    expect([r.quote, r.dot, r.blank, r.eol]).toEqual([true, true, false, "\n"]);
    expect(r.identity.uid).not.toBe(0);
    expect(r.cwd).toBe("/");
  });

  test("X makes a success a final delivery (action delivered); the command's output is quoted in the success text, as pipe(8)", async () => {
    const { results } = await deliver({ flags: "X" }, ["list@lists.example.net"], undefined, undefined, { output: "queued as 42 " });
    expect(results[0]).toMatchObject({ status: "sent", reason: "delivered via mylist service (queued as 42)", action: "delivered" });
  });

  test("h folds the domains and the next hop, u the local parts, q quotes local parts; null_sender= and directory= are used", async () => {
    const argv = "/usr/bin/list ${sender} ${nexthop} ${recipient} ${user} ${domain} ${original_recipient}";
    const h = await deliver({ argv, flags: "h" }, ["List.Me@Lists.Example.NET"], undefined, undefined, { nexthop: "Lists.Example.NET" });
    expect(h.runs[0]!.argv).toEqual(["/usr/bin/list", "owner@example.org", "lists.example.net", "List.Me@lists.example.net", "List.Me", "lists.example.net", "orig-List.Me@lists.example.net"]);
    const u = await deliver({ argv, flags: "u" }, ["List.Me@Lists.Example.NET"], undefined, undefined, { nexthop: "Lists.Example.NET" });
    expect(u.runs[0]!.argv).toEqual(["/usr/bin/list", "owner@example.org", "Lists.Example.NET", "list.me@Lists.Example.NET", "list.me", "Lists.Example.NET", "orig-list.me@Lists.Example.NET"]);
    const q = await deliver({ argv: "/usr/bin/list ${sender} ${recipient} ${mailbox}", flags: "q", null_sender: "" }, ["a b@x.example"], undefined, "odd user@example.org");
    expect(q.runs[0]!.argv).toEqual(["/usr/bin/list", '"odd user"@example.org', '"a b"@x.example', "a b"]);
    const nul = await deliver({ argv: "/usr/bin/list -f ${sender}", null_sender: "", directory: "/srv/lists" }, ["a@x.example"], undefined, "");
    expect(nul.runs[0]!.argv).toEqual(["/usr/bin/list", "-f", ""]);
    expect(nul.runs[0]!.cwd).toBe("/srv/lists");
  });

  test("no flags: no envelope lines, no quoting", async () => {
    const { runs } = await deliver({}, ["list@lists.example.net"]);
    expect([runs[0]!.prefix, runs[0]!.quote, runs[0]!.dot]).toEqual(["", false, false]);
  });

  test("several recipients share one run; with D or O that is a configuration error (4.3.5), as Postfix's pipe", async () => {
    const ok = await deliver({}, ["a@lists.example.net", "b@lists.example.net"]);
    expect(ok.runs.map((r) => r.argv)).toEqual([["/usr/bin/list", "a@lists.example.net", "b@lists.example.net"]]);
    for (const flags of ["D", "O"]) {
      const { results, runs } = await deliver({ flags }, ["a@lists.example.net", "b@lists.example.net"]);
      expect(runs).toHaveLength(0);
      expect(results.map((r) => [r.status, r.dsn, r.reason])).toEqual([
        ["deferred", "4.3.5", "mail system configuration error"],
        ["deferred", "4.3.5", "mail system configuration error"],
      ]);
    }
  });

  test("size= bounces a larger message with 5.2.3; D bounces a Delivered-To: loop with 5.4.6; an unknown macro defers", async () => {
    const big = await deliver({ size: "10" }, ["list@lists.example.net"]);
    expect([big.runs.length, big.results[0]!.status, big.results[0]!.dsn, big.results[0]!.reason]).toEqual([0, "bounced", "5.2.3", "message too large"]);
    const loop = await deliver({ flags: "D" }, ["list@lists.example.net"], "Delivered-To: list@lists.example.net\nSubject: x\n\nbody\n");
    expect([loop.runs.length, loop.results[0]!.status, loop.results[0]!.dsn, loop.results[0]!.reason]).toEqual([0, "bounced", "5.4.6", "mail forwarding loop for list@lists.example.net"]);
    const macro = await deliver({ argv: "/usr/bin/list ${home}" }, ["list@lists.example.net"]);
    expect([macro.runs.length, macro.results[0]!.status, macro.results[0]!.dsn]).toEqual([0, "deferred", "4.3.5"]);
  });

  test("the null sender is MAILER-DAEMON in the argv", async () => {
    const { runs } = await deliver({ argv: "/usr/bin/list ${sender}" }, ["list@lists.example.net"], "Subject: x\n\nb\n", "");
    expect(runs[0]!.argv).toEqual(["/usr/bin/list", "MAILER-DAEMON"]);
  });
});

describe("pipe time limit", () => {
  test("the command gets mylist_time_limit when it is set, else command_time_limit (pipe(8)'s transport_time_limit)", async () => {
    const own = await deliver({}, ["list@lists.example.net"], undefined, undefined, { params: 'command_time_limit = "100s"\nmylist_time_limit = "7s"\n' });
    expect(own.runs[0]!.timeLimitMs).toBe(7000);
    const dflt = await deliver({}, ["list@lists.example.net"], undefined, undefined, { params: 'command_time_limit = "100s"\n' });
    expect(dflt.runs[0]!.timeLimitMs).toBe(100_000);
    const expanded = await deliver({}, ["list@lists.example.net"], undefined, undefined, { params: 'command_time_limit = "100s"\nmylist_time_limit = "${command_time_limit}"\n' });
    expect(expanded.runs[0]!.timeLimitMs).toBe(100_000);
  });
});

describe("pipe user= and service attributes", () => {
  test("user= names a user (with its group, or another group) or uid:gid; root, uid 0 or gid 0 is refused", () => {
    expect(pipeIdentity("nobody")).toMatchObject({ user: "nobody" });
    expect(pipeIdentity("1234:5678")).toEqual({ uid: 1234, gid: 5678 });
    expect(pipeIdentity("root")).toBeUndefined();
    expect(pipeIdentity("0:5")).toBeUndefined();
    expect(pipeIdentity("5:0")).toBeUndefined();
    expect(pipeIdentity("nobody:root")).toBeUndefined();
    expect(pipeIdentity("no-such-user-here")).toBeUndefined();
  });

  test("parsePipeService: argv, user and flags are required and checked", () => {
    const p = (o: Record<string, string>) => parsePipeService(new Map(Object.entries(o)));
    expect(p({ argv: "/bin/x ${recipient}", user: "nobody", flags: "FR", size: "100" })).toEqual({ argv: ["/bin/x", "${recipient}"], user: "nobody", flags: "FR", size: 100, nullSender: "MAILER-DAEMON", eol: "\n" });
    // as master.cf writes it (a literal backslash) or as TOML unescapes it: CR LF either way
    expect(p({ argv: "uux -r ${nexthop}!rmail", user: "nobody", eol: "\\r\\n" })).toMatchObject({ argv: ["uux", "-r", "${nexthop}!rmail"], eol: "\r\n" });
    expect(p({ argv: "/bin/x", user: "nobody", eol: "\r\n" })).toMatchObject({ eol: "\r\n" });
    expect(p({ argv: "/bin/x", user: "nobody", eol: "\\101\\t\\q" })).toMatchObject({ eol: "A\tq" });
    expect(p({ argv: "/bin/x", user: "nobody", directory: "srv" })).toBe('directory: "srv" must be an absolute path');
    expect(p({ user: "nobody" })).toBe("missing argv command");
    expect(p({ argv: "/bin/x" })).toBe("missing user= command-line attribute");
    expect(p({ argv: "/bin/x", user: "root" })).toStartWith("user= command-line attribute specifies root privileges");
    expect(p({ argv: "/bin/x", user: "nobody", flags: "FZ" })).toStartWith('flags: unknown flag "Z"');
  });
});

test("flag B and eol= reach the runner", async () => {
  const { runs } = await deliver({ flags: "B", eol: "\\r\\n" }, ["list@lists.example.net"]);
  expect([runs[0]!.blank, runs[0]!.eol]).toEqual([true, "\r\n"]);
});

describe("the runner's records for eol=", () => {
  test("every line feed becomes eol; \\n leaves the bytes as they are", () => {
    expect(Buffer.from(withEol(Buffer.from("From a\nb\n\n"), "\r\n")).toString()).toBe("From a\r\nb\r\n\r\n");
    const same = Buffer.from("x\n");
    expect(withEol(same, "\n")).toBe(same);
  });
});

describe("the runner's quoting for flags . and >", () => {
  const text = (opts: { quote: boolean; dot: boolean }) => Buffer.from(formatDelivery("", Buffer.from("a\n.b\n..c\nFrom d\n>From e\nx.From f\n."), { ...opts, blank: false })).toString();
  test(". doubles a leading dot; > quotes a leading From_; both together; neither", () => {
    expect(text({ quote: false, dot: true })).toBe("a\n..b\n...c\nFrom d\n>From e\nx.From f\n..\n");
    expect(text({ quote: true, dot: false })).toBe("a\n.b\n..c\n>From d\n>From e\nx.From f\n.\n");
    expect(text({ quote: true, dot: true })).toBe("a\n..b\n...c\n>From d\n>From e\nx.From f\n..\n");
    expect(text({ quote: false, dot: false })).toBe("a\n.b\n..c\nFrom d\n>From e\nx.From f\n.\n");
  });
});

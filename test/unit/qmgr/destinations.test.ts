/**
 * The queue manager's scheduling limits (src/qmgr/destinations.ts), with
 * jobs that finish only when the test says so: per-destination concurrency,
 * the local queue named after the user without the extension, and a
 * process limit per transport, so local deliveries cannot hold the slots
 * of smtp (issue 9 item 11).
 */
import { afterAll, expect, test } from "bun:test";
import { loadConfig, type Config } from "../../../src/global/config/config.ts";
import { concurrencyLimit, DestinationQueues, processLimit, queueName, recipientLimit } from "../../../src/qmgr/destinations.ts";
import { configDir, removeDir } from "../../helpers/run.ts";

const dirs: string[] = [];
afterAll(() => dirs.forEach(removeDir));

function config(text = ""): Config {
  const dir = configDir(text);
  dirs.push(dir);
  return loadConfig(dir);
}

/** A job that counts as running until release() is called. */
function gate() {
  let started = false;
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  return {
    run: async () => {
      started = true;
      await done;
    },
    get started() {
      return started;
    },
    release,
  };
}

test("Postfix's defaults: local 2 per recipient, 1 recipient per delivery; others 20 and 50; 100 processes per transport", () => {
  const c = config();
  expect([concurrencyLimit(c, "local"), recipientLimit(c, "local")]).toEqual([2, 1]);
  expect([concurrencyLimit(c, "smtp"), recipientLimit(c, "smtp")]).toEqual([20, 50]);
  expect([processLimit(c, "local"), processLimit(c, "smtp"), processLimit(c, "relay"), processLimit(c, "other")]).toEqual([100, 100, 100, 100]);
  const d = config('default_process_limit = 7\nlocal_process_limit = 3\nfoo_process_limit = 4\nfoo_destination_concurrency_limit = 5');
  expect([processLimit(d, "local"), processLimit(d, "smtp"), processLimit(d, "foo"), concurrencyLimit(d, "foo")]).toEqual([3, 7, 4, 5]);
});

test("the local queue is the user without the extension at the next hop; other transports queue by next hop", () => {
  const c = config('recipient_delimiter = "+"');
  expect(queueName(c, "local", "Host.Example", "Alice+Lists@example.org")).toBe("alice@host.example");
  expect(queueName(c, "local", "host.example", "alice@example.org")).toBe("alice@host.example");
  expect(queueName(c, "local", "host.example", "owner-list@example.org")).toBe("owner-list@host.example");
  expect(queueName(c, "smtp", "MX.Example", "alice+x@example.org")).toBe("mx.example");
  expect(queueName(c, "error", "5.1.1 no", "alice@example.org")).toBe("5.1.1 no");
});

test("fifty user+N addresses run two at a time, and local deliveries never stop smtp from starting", async () => {
  const c = config('recipient_delimiter = "+"');
  const q = new DestinationQueues(c);
  const jobs: ReturnType<typeof gate>[] = [];
  // one local user with 50 extended addresses, each a slow command
  for (let n = 0; n < 50; n++) {
    const g = gate();
    jobs.push(g);
    q.add("local", queueName(c, "local", "localhost", `user+${n}@localhost`), g.run);
  }
  expect(q.busy("local")).toBe(2);
  // and 150 other local users: the local transport fills its own 100 slots
  for (let n = 0; n < 150; n++) {
    const g = gate();
    jobs.push(g);
    q.add("local", queueName(c, "local", "localhost", `u${n}@localhost`), g.run);
  }
  expect(q.busy("local")).toBe(100);
  // an outbound delivery still starts at once
  const out = gate();
  q.add("smtp", "mx.example", out.run);
  expect(out.started).toBe(true);
  expect(q.busy("smtp")).toBe(1);

  out.release();
  for (const g of jobs) g.release();
  for (let i = 0; i < 1000 && q.running > 0; i++) await Bun.sleep(1);
  expect(q.running).toBe(0);
  expect(jobs.every((g) => g.started)).toBe(true);
});

// issue 9 item 11: the queue manager gave up after 15 minutes on a command allowed 1000 s or more, and
// delivered it again at the next attempt
test("the queue manager waits for the local service longer than the service's own limits", async () => {
  const { localServiceTimeoutMs } = await import("../../../src/qmgr/agents.ts");
  const { localDeliveryLimits } = await import("../../../src/global/delivery/local-limits.ts");
  for (const text of ["", 'command_time_limit = "2000s"', 'command_time_limit = "5h"\ndaemon_timeout = "1h"', 'daemon_timeout = "10s"\ncommand_time_limit = "1s"']) {
    const c = config(text);
    const limits = localDeliveryLimits(c);
    const wait = localServiceTimeoutMs(c);
    expect(limits.jobMs).toBeGreaterThan(c.time("command_time_limit") * 1000);
    expect(wait).toBeGreaterThan(limits.requestMs + limits.jobMs);
    expect(wait).toBeGreaterThan(c.time("command_time_limit") * 1000);
  }
});

test("a pipe service's NAME_time_limit longer than command_time_limit lengthens the worker's and the queue manager's waits", async () => {
  const { localServiceTimeoutMs } = await import("../../../src/qmgr/agents.ts");
  const { localDeliveryLimits } = await import("../../../src/global/delivery/local-limits.ts");
  const c = config('command_time_limit = "10s"\nslow_time_limit = "3h"\n[services.slow]\nrole = "pipe"\nuser = "nobody"\nargv = "/bin/x"\n');
  expect(localDeliveryLimits(c).jobMs).toBeGreaterThan(3 * 3600 * 1000);
  expect(localServiceTimeoutMs(c)).toBeGreaterThan(localDeliveryLimits(c).requestMs + 3 * 3600 * 1000);
});

test("the virtual transport's limits: Postfix's defaults, and its own parameters accepted by the configuration check", () => {
  const d = config();
  expect([recipientLimit(d, "virtual"), concurrencyLimit(d, "virtual"), processLimit(d, "virtual")]).toEqual([50, 20, 100]);
  const c = config("virtual_destination_recipient_limit = 1\nvirtual_destination_concurrency_limit = 3\nvirtual_process_limit = 4\n");
  expect(c.validate()).toEqual([]);
  expect([recipientLimit(c, "virtual"), concurrencyLimit(c, "virtual"), processLimit(c, "virtual")]).toEqual([1, 3, 4]);
  // one recipient per delivery: the queue is the mailbox's address, as Postfix's qmgr names it
  expect(queueName(c, "virtual", "example.net", "Alice@example.net")).toBe("alice@example.net");
});

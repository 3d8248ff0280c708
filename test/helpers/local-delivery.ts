/**
 * Helpers for local delivery tests: a private queue and configuration, a
 * queue file committed with the queue API, a delivery request for it, and
 * small in-memory lookup tables.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadConfig, type Config } from "../../src/global/config/config.ts";
import type { DeliveryRequest } from "../../src/global/delivery/types.ts";
import { commitQueueFile } from "../../src/global/queue/commit.ts";
import { encodeQueueFile, type Recipient } from "../../src/global/queue/format.ts";
import type { Table, TableOwner } from "../../src/global/tables/table.ts";
import { tempDir } from "./run.ts";

export interface TestSite {
  dir: string;
  queueDirectory: string;
  config: Config;
}

/** A queue directory and a postern.toml under a new temporary directory. */
export function testSite(settings: Record<string, string | number | boolean> = {}, dir = tempDir("postern-local-")): TestSite {
  const queueDirectory = join(dir, "queue");
  for (const d of ["incoming", "active", "deferred"]) mkdirSync(join(queueDirectory, d), { recursive: true });
  const all: Record<string, string | number | boolean> = {
    queue_directory: queueDirectory,
    myhostname: "mail.example.test",
    mydestination: "mail.example.test, localhost",
    alias_maps: "",
    deliver_lock_delay: "1s",
    ...settings,
  };
  const text = Object.entries(all)
    .map(([k, v]) => `${k} = ${typeof v === "string" ? JSON.stringify(v) : String(v)}`)
    .join("\n");
  const confDir = join(dir, "etc");
  mkdirSync(confDir, { recursive: true });
  writeFileSync(join(confDir, "postern.toml"), text + "\n");
  return { dir, queueDirectory, config: loadConfig(confDir) };
}

export interface TestMessage {
  sender?: string;
  recipients: (string | Recipient)[];
  content: string;
  attributes?: Record<string, string>;
}

/** Commits a queue file into active/ and returns the request the queue manager would send. */
export async function queueMessage(site: TestSite, m: TestMessage): Promise<DeliveryRequest> {
  const recipients: Recipient[] = m.recipients.map((r) => (typeof r === "string" ? { address: r } : r));
  const arrivalTime = Date.now();
  const dir = join(site.queueDirectory, "active");
  const id = await commitQueueFile(dir, () =>
    encodeQueueFile({ arrivalTime, sender: m.sender ?? "sender@example.org", recipients, attributes: m.attributes ?? {}, content: Buffer.from(m.content) }),
  );
  return {
    queueId: id,
    queueFile: join(dir, id),
    sender: m.sender ?? "sender@example.org",
    arrivalTime,
    transport: "local",
    nexthop: "mail.example.test",
    recipients: recipients.map((r, index) => ({ index, address: r.address, ...(r.original ? { original: r.original } : {}) })),
    attributes: m.attributes ?? {},
  };
}

/** An in-memory table, keys folded to lower case like hash:. */
export function memoryTable(spec: string, entries: Record<string, string>, owner: TableOwner = { status: "trusted", uid: 0 }): Table {
  const map = new Map(Object.entries(entries).map(([k, v]) => [k.toLowerCase(), v]));
  return {
    spec,
    kind: "fixed",
    async lookup(key: string) {
      return map.get(key.toLowerCase());
    },
    owner: () => owner,
    close() {},
  };
}

/** A passwd file with the given lines (name:x:uid:gid:gecos:home:shell). */
export function passwdFile(dir: string, lines: string[]): string {
  const path = join(dir, "passwd");
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}
